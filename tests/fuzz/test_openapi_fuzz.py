"""Schemathesis over the whole OpenAPI spec of the embedded service: generated valid
and invalid requests for every operation get no server error, and every response
matches the spec (status code documented, media type, body schema).

One check is left out on purpose: "schema-valid data is accepted". The service
refuses some schema-valid requests for reasons only known at run time (a request's
worst-case tokens above the budget, `max_tokens` past this model's context, roles
this worker lacks, an Idempotency-Key reused with another body), each with a 422
whose message says why; those refusals are tested on their own. And a body over the
size limit is refused with 413 before it is parsed, a status the negative-data check
does not list.

`CountingEngine` (tests/workers/test_loop.py) is the named engine double, so that
thousands of generated /solve calls cost no model time; the gateway, queue, worker
loop and pipeline are real.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from contract.settings import Settings
from entrypoints.embedded import EmbeddedServer, free_port
from tests.workers.test_loop import CountingEngine


@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    service = Settings(
        model="test-double",
        mount_tools=False,
        port=free_port(),
        admin_key=SecretStr("fuzz-admin"),
    )
    with EmbeddedServer(service, ready_timeout_s=60, engine=CountingEngine()) as server:
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_no_server_errors_and_responses_match_the_spec(api: Any) -> None:
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 8
    failures: dict[str, str] = {}
    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            response = case.call(headers={"X-Admin-Key": "fuzz-admin"})
            excluded = [positive_data_acceptance]
            if response.status_code == 413:  # an over-size body is refused before parsing
                excluded.append(negative_data_rejection)
            case.validate_response(response, excluded_checks=excluded)

        try:
            check()
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
            assert mode == GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # collect every operation's failure, then report all
            failures[f"{operation.label} ({mode.value})"] = str(exc)[:1500]
    assert not failures, "\n\n".join(f"{k}: {v}" for k, v in failures.items())
