"""The remote engine against a real `vllm serve` (OpenAI API) subprocess on the tiny
model: its tokens equal the in-process engine's for the base model and an adapter."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace

import pytest

from adapters.registry import load_registry
from contract.errors import EngineUnavailableError
from entrypoints.embedded import free_port, wait_until_up
from tests.conftest import TEST_DEVICE, TEST_DTYPE, TEST_GPU_MEMORY_UTILIZATION, Service
from workers.engines.base import GenerationRequest, Sampling
from workers.engines.openai_engine import OpenAIEngine
from workers.models.tiny import TinyModel


@pytest.fixture(scope="module")
def vllm_server(
    tiny_model: TinyModel, service: Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(tiny_model.model_dir), "--dtype", TEST_DTYPE, "--max-model-len", "1024",
        "--kv-cache-memory-bytes", str(64 * 1024 * 1024), "--enforce-eager",
        "--enable-lora", "--max-loras", "4", "--max-lora-rank", "16",
        "--host", "127.0.0.1", "--port", str(port), "--seed", "0",
    ]  # fmt: skip
    if TEST_DEVICE == "cuda":
        command += ["--gpu-memory-utilization", str(TEST_GPU_MEMORY_UTILIZATION)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
    log = tmp_path_factory.mktemp("vllm-serve") / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log, timeout=240, path="/health")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def _requests(role: str | None) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            messages=[{"role": "user", "content": "Solve for x: 3x + 5 = 20."}],
            role=role,
            sampling=Sampling(max_tokens=20),
        )
    ]


def test_remote_engine_tokens_equal_in_process_engine(
    vllm_server: str, service: Service, tiny_model: TinyModel
) -> None:
    specs = load_registry(
        tiny_model.registry, served_model=str(tiny_model.model_dir), max_lora_rank=16
    )

    async def remote() -> list[list[int]]:
        engine = OpenAIEngine(
            vllm_server, str(tiny_model.model_dir), [specs["policy"]], max_loras=4
        )
        await engine.start()
        try:
            assert await engine.health()
            assert set(engine.adapters()) == {"policy"}
            out = []
            for role in (None, "policy"):
                [completion] = await engine.generate(_requests(role))
                assert completion.texts[0]
                out.append(completion.token_ids[0])
            # Streamed: the pieces arrive one by one and add up to the same completion.
            pieces: list[str] = []

            async def on_text(piece: str) -> None:
                pieces.append(piece)

            [request] = _requests("policy")
            [streamed] = await engine.generate([replace(request, on_text=on_text)])
            assert len(pieces) > 1
            assert "".join(pieces) == streamed.texts[0] == completion.texts[0]
            assert streamed.token_ids == completion.token_ids
            return out
        finally:
            await engine.close()

    remote_tokens = asyncio.run(remote())
    local_tokens = [
        service.call(service.engine.generate(_requests(role)))[0].token_ids[0]
        for role in (None, "policy")
    ]
    assert remote_tokens[0] != remote_tokens[1]
    if TEST_DEVICE == "cuda":  # bfloat16: the same engine, compared on a prefix
        prefix = 4
        remote_tokens = [t[:prefix] for t in remote_tokens]
        local_tokens = [t[:prefix] for t in local_tokens]
    assert remote_tokens == local_tokens


def test_remote_engine_reports_an_unreachable_server(tiny_model: TinyModel) -> None:
    async def start() -> None:
        engine = OpenAIEngine(f"http://127.0.0.1:{free_port()}", str(tiny_model.model_dir))
        try:
            assert not await engine.health()
            await engine.start()
        finally:
            await engine.close()

    with pytest.raises(EngineUnavailableError, match="unreachable"):
        asyncio.run(start())


def test_remote_engine_sends_each_requests_traceparent(tiny_model: TinyModel) -> None:
    """The engine-call span's context (`GenerationRequest.trace_headers`) goes to the
    server, which `vllm serve` continues; plain and streamed. The server is httpx's
    `MockTransport` (a named double) recording what arrives."""
    import json

    import httpx
    from transformers import AutoTokenizer

    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    seen: list[str | None] = []
    choice = {"index": 0, "text": "4", "token_ids": [5], "finish_reason": "stop"}

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("traceparent"))
        if json.loads(request.content).get("stream"):
            body = f"data: {json.dumps({'choices': [choice]})}\n\ndata: [DONE]\n\n"
            return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json={"choices": [choice]})

    async def pieces(_: str) -> None:
        return None

    async def run() -> None:
        engine = OpenAIEngine("http://remote", str(tiny_model.model_dir))
        engine._client = httpx.AsyncClient(
            base_url="http://remote", transport=httpx.MockTransport(answer)
        )
        engine._served_name = "base"
        engine._tokenizer = AutoTokenizer.from_pretrained(str(tiny_model.model_dir))
        messages = [{"role": "user", "content": "2 + 2?"}]
        traced = GenerationRequest(messages=messages, trace_headers={"traceparent": traceparent})
        await engine.generate([traced, replace(traced, on_text=pieces)])
        await engine.generate([GenerationRequest(messages=messages)])
        await engine._client.aclose()

    asyncio.run(run())
    assert seen == [traceparent, traceparent, None]
