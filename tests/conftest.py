"""Session fixtures for the real services: one tiny model, one vLLM engine, one server.

The server runs the embedded app under uvicorn on a real port in a background thread;
its event loop also owns the vLLM engine, so tests that need the raw engine submit
coroutines to that loop (`service.call`). One engine per test session: starting vLLM
costs ~20-30 s on CPU.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from app.config import Settings  # noqa: E402
from workers.models.tiny import TinyModel, build_tiny_model  # noqa: E402

T = TypeVar("T")
ADMIN_KEY = "test-admin-key"
# CI sets this so a broken vLLM install fails the run instead of skipping its tests.
REQUIRE_VLLM = os.environ.get("SCISERVE_REQUIRE_VLLM") == "1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def tiny_settings(model: TinyModel, **overrides: Any) -> Settings:
    """Settings for the tiny model: float32 + greedy keeps outputs deterministic."""
    values: dict[str, Any] = {
        "model": str(model.model_dir),
        "adapter_registry": model.registry,
        "dtype": "float32",
        "max_model_len": 1024,
        "kv_cache_bytes": 64 * 1024 * 1024,
        "max_loras": 4,  # 3 roles + 1 free slot: vLLM CPU LoRA slot -1 bug
        "max_lora_rank": 16,
        "default_max_tokens": 24,
        "admin_key": ADMIN_KEY,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Service:
    """A running embedded service and a handle on its loop and engine."""

    url: str
    loop: asyncio.AbstractEventLoop
    app: Any
    settings: Settings

    @property
    def engine(self) -> Any:
        return self.app.state.worker.engine

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        """Run a coroutine on the server's loop (where the engine lives)."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)


def _import_vllm() -> None:
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # pragma: no cover - depends on the install
        if REQUIRE_VLLM:
            raise
        pytest.skip(f"vLLM is not importable here: {exc}")


@pytest.fixture(scope="session")
def service(tiny_model: TinyModel) -> Iterator[Service]:
    """The embedded app with a real vLLM engine on the tiny model, over real HTTP."""
    _import_vllm()
    import uvicorn

    from app.main import create_app

    settings = tiny_settings(tiny_model, port=free_port())
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning")
    server = uvicorn.Server(config)
    loop_box: dict[str, asyncio.AbstractEventLoop] = {}

    async def serve() -> None:
        loop_box["loop"] = asyncio.get_running_loop()
        await server.serve()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{settings.port}"
    deadline = time.monotonic() + 240
    last = ""
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/readyz", timeout=5)
            last = response.text
            if response.status_code == 200:
                break
            if "failed" in last:
                raise RuntimeError(f"engine failed to start: {last}")
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    else:
        raise RuntimeError(f"service not ready within 240 s: {last}")
    yield Service(url=url, loop=loop_box["loop"], app=app, settings=settings)
    server.should_exit = True
    thread.join(timeout=60)


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


@pytest.fixture()
def tmp_registry(tmp_path: Path) -> Path:
    return tmp_path / "adapters.yaml"
