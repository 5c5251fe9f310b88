"""Session fixtures for the real services: one tiny model, one vLLM engine, one server.

The server runs the embedded app under uvicorn on a real port in a background thread
(`entrypoints.embedded.EmbeddedServer`); its loop owns the vLLM engine, so tests that need the
raw engine run coroutines there (`service.call`). One engine per test session:
starting vLLM costs ~20-30 s on CPU.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from contract.settings import Settings
from entrypoints.embedded import EmbeddedServer, ServiceProcesses, free_port, wait_until_up
from workers.models.tiny import TinyModel, build_tiny_model

Spawn = Callable[..., tuple[subprocess.Popen[bytes], str]]
ADMIN_KEY = "test-admin-key"
# The device the engine tests run on: `cpu` (default) or `cuda` (SCISERVE_TEST_DEVICE).
# The dtype follows it: vLLM's GPU LoRA kernels take only fp16/bf16, so CUDA runs
# bfloat16; the CPU runs float32, where greedy tokens match the reference exactly.
TEST_DEVICE = os.environ.get("SCISERVE_TEST_DEVICE", "cpu")
if TEST_DEVICE not in ("cpu", "cuda"):
    raise RuntimeError(f"SCISERVE_TEST_DEVICE must be cpu or cuda, not {TEST_DEVICE!r}.")
TEST_DTYPE = "bfloat16" if TEST_DEVICE == "cuda" else "float32"
# Several tiny-model engines share one GPU in a test run (the session's, `vllm serve`,
# a worker process): each takes a small share instead of vLLM's default 90%.
TEST_GPU_MEMORY_UTILIZATION = 0.15
# CI sets this so a broken vLLM install fails the run instead of skipping its tests; a
# CUDA run never skips them either.
REQUIRE_VLLM = os.environ.get("SCISERVE_REQUIRE_VLLM") == "1" or TEST_DEVICE == "cuda"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def tiny_settings(model: TinyModel, **overrides: Any) -> Settings:
    """Settings for the tiny model on the test device: float32 + greedy on CPU keeps
    outputs deterministic; bfloat16 on CUDA (LoRA kernels)."""
    values: dict[str, Any] = {
        "model": str(model.model_dir),
        "adapter_registry": model.registry,
        "dtype": TEST_DTYPE,
        "max_model_len": 4096,
        "kv_cache_bytes": 64 * 1024 * 1024,
        "max_loras": 4,  # 3 roles + 1 free slot: vLLM CPU LoRA slot -1 bug
        "max_lora_rank": 16,
        "default_max_tokens": 24,
        "admin_key": ADMIN_KEY,
    }
    if TEST_DEVICE == "cuda":
        values["gpu_memory_utilization"] = TEST_GPU_MEMORY_UTILIZATION
        values["enforce_eager"] = True  # start in seconds; bench/gpu.py runs CUDA graphs
    values.update(overrides)
    return Settings(**values)


Service = EmbeddedServer


def _import_vllm() -> None:
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # pragma: no cover - depends on the install
        if REQUIRE_VLLM:
            raise
        pytest.skip(f"vLLM is not importable here: {exc}")
    if TEST_DEVICE == "cuda":
        from vllm.platforms import current_platform

        if not current_platform.is_cuda_alike():
            raise RuntimeError("SCISERVE_TEST_DEVICE=cuda, but vLLM's platform is not CUDA.")


@pytest.fixture(scope="session")
def service(tiny_model: TinyModel) -> Iterator[EmbeddedServer]:
    """The embedded app with a real vLLM engine on the tiny model, over real HTTP."""
    _import_vllm()
    with EmbeddedServer(tiny_settings(tiny_model, port=free_port()), ready_timeout_s=240) as server:
        yield server


@pytest.fixture(scope="session")
def hf_reference(tiny_model: TinyModel) -> Iterator[tuple[Any, asyncio.AbstractEventLoop]]:
    """The transformers+peft reference engine with every adapter, on its own loop."""
    from adapters.registry import load_registry
    from workers.engines.hf_engine import HfEngine

    specs = load_registry(
        tiny_model.registry, served_model=str(tiny_model.model_dir), max_lora_rank=16
    )
    loop = asyncio.new_event_loop()
    engine = HfEngine(str(tiny_model.model_dir), list(specs.values()), dtype="float32")
    loop.run_until_complete(engine.start())
    yield engine, loop
    loop.run_until_complete(engine.close())
    loop.close()


REDIS_URL = os.environ.get("SCISERVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


@pytest.fixture()
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix on the real Redis (test database 9); its keys go afterwards."""
    import uuid

    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:  # CI has Redis: missing it is a failure
        raise RuntimeError(f"The tests need Redis at {REDIS_URL}: {exc}") from exc
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def tiny_pool_env(tiny_model: TinyModel, redis_prefix: str) -> dict[str, str]:
    """The environment of a gateway or worker process on the tiny model and the test's
    Redis prefix (the worker on the transformers engine, which runs on the CPU)."""
    return {
        "SCISERVE_REDIS_URL": REDIS_URL,
        "SCISERVE_REDIS_PREFIX": redis_prefix,
        "SCISERVE_MODEL": str(tiny_model.model_dir),
        "SCISERVE_ADAPTER_REGISTRY": str(tiny_model.registry),
        "SCISERVE_ENGINE": "hf",
        "SCISERVE_DTYPE": "float32",
    }


@pytest.fixture()
def spawn(tiny_model: TinyModel, redis_prefix: str, tmp_path: Path) -> Iterator[Spawn]:
    """Start `sciserve gateway|worker` processes on the tiny model; all are killed at
    the end. Keyword arguments become SCISERVE_* variables (`port` sets the port)."""
    processes = ServiceProcesses(
        tmp_path,
        {
            **tiny_pool_env(tiny_model, redis_prefix),
            "SCISERVE_DEFAULT_MAX_TOKENS": "48",
            "SCISERVE_VISIBILITY_TIMEOUT_S": "2",
            "SCISERVE_WORKER_CONCURRENCY": "4",
            "SCISERVE_RATE_LIMIT_PER_MINUTE": "1000000",
        },
    )
    yield processes.start
    processes.stop_all()


def api_key_headers(prefix: str, *scopes: str) -> dict[str, str]:
    import asyncio

    from app.auth import RedisKeyStore
    from jobqueue.redis_streams import connect

    async def create() -> str:
        client = connect(REDIS_URL)
        try:
            return await RedisKeyStore(client, prefix).create("tests", list(scopes))
        finally:
            await client.aclose()

    return {"Authorization": f"Bearer {asyncio.run(create())}"}


@pytest.fixture(scope="session")
def tool_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """All five tool servers, each its own `sciserve tool-server NAME` process."""
    from tool_servers.registry import SERVER_NAMES

    processes = ServiceProcesses(tmp_path_factory.mktemp("tool-logs"), {})
    try:
        yield {name: processes.start_tool_server(name)[1] for name in SERVER_NAMES}
    finally:
        processes.stop_all()


# --- Arize Phoenix: a real trace viewer for the OpenTelemetry tests ---
PHOENIX_VENV = Path(__file__).resolve().parents[1] / ".tools" / "phoenix-venv"
PHOENIX_START_S = 240  # its first start migrates its SQLite store: tens of seconds on 2 cores
# Runs in Phoenix's own venv: the spans of one trace, read through Phoenix's client.
_READ_SPANS = """
import json, sys
from phoenix.client import Client
url, trace_id = sys.argv[1], sys.argv[2]
spans = Client(base_url=url).spans.get_spans(
    project_identifier="default", trace_ids=[trace_id], limit=10000, timeout=30
)
print(json.dumps(spans, default=str))
"""


@dataclass
class Phoenix:
    """A running Phoenix: `url` serves its UI, REST API and OTLP over HTTP (/v1/traces)."""

    url: str

    def spans(self, trace_id: str) -> list[dict[str, Any]]:
        """Every span Phoenix holds of one trace (32 hex digits), through its client."""
        done = subprocess.run(
            [str(PHOENIX_VENV / "bin" / "python"), "-c", _READ_SPANS, self.url, trace_id],
            capture_output=True, text=True, timeout=120, env=_phoenix_env(),
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"reading spans from Phoenix failed: {done.stderr[-2000:]}")
        spans: list[dict[str, Any]] = json.loads(done.stdout)
        return spans


def _phoenix_env(**extra: str) -> dict[str, str]:
    """Phoenix's processes see none of the service's OpenTelemetry or Python settings."""
    skip = ("OTEL_", "PYTHONPATH", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    return {**env, **extra}


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    """Arize Phoenix as its own server process (`phoenix serve`, its own venv from
    scripts/install-ops-tools.sh) with embedded SQLite storage in a temporary folder;
    once per test run, given PHOENIX_START_S to come up, stopped at the end."""
    executable = PHOENIX_VENV / "bin" / "phoenix"
    if not executable.exists():
        pytest.fail(
            f"Arize Phoenix is not installed: run scripts/install-ops-tools.sh (it puts it in "
            f"{PHOENIX_VENV}); CI runs it before the tests.",
            pytrace=False,
        )
    folder = tmp_path_factory.mktemp("phoenix")
    port = free_port()
    env = _phoenix_env(
        PHOENIX_WORKING_DIR=str(folder),
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(free_port()),
        PHOENIX_TELEMETRY_ENABLED="false",
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
    )
    with (folder / "phoenix.log").open("wb") as log:
        process = subprocess.Popen(
            [str(executable), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_until_up(
            f"http://127.0.0.1:{port}", process, folder / "phoenix.log", PHOENIX_START_S, "/healthz"
        )
        yield Phoenix(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
