"""The OpenAPI document says what every body-taking route can answer before its own
code runs: 400 (undecodable body), 413 (over the size limit), 415 (not JSON) and 422
(invalid fields). Added once here, so no route can forget them."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from contract.schemas import ErrorBody

BODY_ERRORS = {
    "400": "The body could not be decoded (not UTF-8 JSON, or nested too deep).",
    "413": "The body is larger than SCISERVE_MAX_BODY_BYTES.",
    "415": "The body is not JSON by its Content-Type.",
    "422": "A field is invalid; `detail` names it.",
}
ERROR_BODY = ErrorBody.model_json_schema()  # the one shape of every error body


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    if "requestBody" not in operation:
                        continue
                    responses = operation.setdefault("responses", {})
                    for status, description in BODY_ERRORS.items():
                        responses.setdefault(
                            status,
                            {
                                "description": description,
                                "content": {"application/json": {"schema": ERROR_BODY}},
                            },
                        )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
