"""Run evaluation items through any OpenAI-compatible `/v1/chat/completions`.

So a plain `vllm serve`, a proxy such as optillm, or sciserve's own `/v1` is measured
by the same harness, graded by the same rule (`Item.rel_tol`) and written in the same
reports. What differs is only who writes the prompt:

- sciserve's `/v1` (its `/v1/models` cards carry a `sciserve` object) gets the bare
  problem, as a user would send it: the model name's preset prompts, samples and votes
  on the server, and the `sciserve` extension of the answer carries its final answer;
- any other endpoint gets the problem inside sciserve's own direct prompt (the same
  sentence, below), and its answer is extracted from the text with the same extractor,
  so a raw engine is not graded down for not knowing the answer format.

Unset sampling fields mean greedy decoding on a plain endpoint (what sciserve's direct
strategy does); sciserve's endpoint ignores sampling fields (its strategy decides).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from contract.answers import extract_answer, is_correct, resolve_type
from contract.schemas import MAX_TIMEOUT_S
from evaluation.datasets import Item
from evaluation.runner import Row

# sciserve's direct prompts (workers/prompts.py: DIRECT_BOXED, AWL_DIRECT_CHOICE),
# repeated here because the harness only speaks HTTP; a test keeps them equal.
BOXED_PROMPT = (
    "Please answer the following question. Reason step by step, then give your final "
    "answer in \\boxed{}."
)
CHOICE_PROMPT = (
    "Please answer the following question. Your answer should end with 'the answer is A/B/C/D'."
)
PromptStyle = Literal["auto", "problem", "instructed"]


def is_openai_url(url: str) -> bool:
    """`http://host:port/v1` names an OpenAI-compatible API; a bare host is /solve."""
    return urlsplit(url).path.rstrip("/").endswith("/v1")


def instructed_prompt(item: Item) -> str:
    """The user message sciserve's direct strategy would build for this item."""
    if item.options:
        listed = "\n".join(f"{chr(ord('A') + i)}. {o}" for i, o in enumerate(item.options))
        return f"{CHOICE_PROMPT}\n\n{item.problem}\n\n{listed}"
    return f"{BOXED_PROMPT}\n\n{item.problem}"


@dataclass(frozen=True)
class ChatOptions:
    """One run's request settings: the model name and what goes with every request."""

    model: str
    max_tokens: int | None = None
    temperature: float | None = None  # None: 0 (greedy) on a plain endpoint
    stream: bool = False  # streamed: time to first token is measured too
    prompt_style: PromptStyle = "auto"
    extra_body: dict[str, Any] = field(default_factory=dict)  # e.g. a proxy's own fields
    timeout_s: float | None = None  # sciserve's per-job deadline (its `timeout_s` field)


async def is_sciserve(client: httpx.AsyncClient) -> bool:
    """Whether the endpoint is sciserve's own /v1: its model cards carry `sciserve`."""
    try:
        response = await client.get("models")
        cards = response.json().get("data", []) if response.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        return False
    return any(isinstance(card, dict) and "sciserve" in card for card in cards)


def chat_body(item: Item, options: ChatOptions, sciserve: bool) -> dict[str, Any]:
    """The request for one item."""
    bare = options.prompt_style == "problem" or (options.prompt_style == "auto" and sciserve)
    body: dict[str, Any] = {
        "model": options.model,
        "messages": [
            {"role": "user", "content": item.problem if bare else instructed_prompt(item)}
        ],
    }
    if options.max_tokens is not None:
        body["max_tokens"] = options.max_tokens
    if sciserve:
        # sciserve's own fields: the choices and the answer type pick its prompt; without
        # a deadline a slow CPU would turn an evaluation into a row of 504s.
        body["answer_type"] = item.answer_type
        if item.options:
            body["options"] = item.options
        body["timeout_s"] = options.timeout_s if options.timeout_s is not None else MAX_TIMEOUT_S
    else:
        body["temperature"] = options.temperature if options.temperature is not None else 0.0
    if options.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    body.update(options.extra_body)
    return body


@dataclass
class ChatReply:
    """What one chat completion returned, streamed or not."""

    text: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    extension: dict[str, Any] = field(default_factory=dict)  # sciserve's, when present
    ttft_s: float | None = None


async def _post(client: httpx.AsyncClient, body: dict[str, Any]) -> ChatReply:
    response = await client.post("chat/completions", json=body)
    if response.status_code != 200:
        raise ChatError(f"HTTP {response.status_code}: {response.text[:300]}")
    data = response.json()
    message = (data.get("choices") or [{}])[0].get("message") or {}
    return ChatReply(
        text=message.get("content") or "",
        usage=data.get("usage") or {},
        extension=data.get("sciserve") or {},
    )


async def _stream(client: httpx.AsyncClient, body: dict[str, Any], started: float) -> ChatReply:
    reply = ChatReply()
    parts: list[str] = []
    async with client.stream("POST", "chat/completions", json=body) as response:
        if response.status_code != 200:
            text = (await response.aread()).decode(errors="replace")
            raise ChatError(f"HTTP {response.status_code}: {text[:300]}")
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if chunk.get("error"):
                raise ChatError(f"stream error: {json.dumps(chunk['error'])[:300]}")
            for choice in chunk.get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    if reply.ttft_s is None:
                        reply.ttft_s = time.perf_counter() - started
                    parts.append(content)
            reply.usage = chunk.get("usage") or reply.usage
            reply.extension = chunk.get("sciserve") or reply.extension
    reply.text = "".join(parts)
    return reply


class ChatError(Exception):
    """A request the endpoint refused or broke off: the question counts as wrong."""


def score_chat(item: Item, reply: ChatReply, seconds: float, prompt: str) -> Row:
    """A row from a chat completion, graded with the dataset's rule. sciserve's final
    answer (its extension) is the one it declares; any other text is read with the same
    extractor sciserve uses on its own outputs."""
    answer_type = resolve_type(item.answer_type, item.options, item.reference)
    ext = reply.extension
    answer = (
        ext["answer"] if "answer" in ext else extract_answer(reply.text, answer_type, item.options)
    )
    initial = ext.get("initial_answer", answer)
    usage = reply.usage
    ext_usage = ext.get("usage") or {}

    def correct(value: str | None) -> bool:
        return is_correct(value, item.reference, answer_type, item.options, item.rel_tol)

    return Row(
        id=item.id,
        reference=item.reference,
        answer=answer,
        correct=correct(answer),
        initial_answer=initial,
        initial_correct=correct(initial),
        used_tools=list(ext.get("used_tools") or []),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        generated_tokens=int(usage.get("completion_tokens") or 0),  # as billed
        engine_calls=int(ext_usage.get("engine_calls") or 0),
        seconds=seconds,
        response=reply.text,
        prompt=prompt,
        ttft_s=reply.ttft_s,
    )


async def run_chat_items(
    client: httpx.AsyncClient,
    items: list[Item],
    options: ChatOptions,
    *,
    concurrency: int = 8,
    on_done: Callable[[Row], None] | None = None,
) -> list[Row]:
    """Every item through `chat/completions` of `client`'s base URL (…/v1/),
    `concurrency` at a time. A failed request is a wrong answer with its error."""
    sciserve = await is_sciserve(client)
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Item) -> Row:
        body = chat_body(item, options, sciserve)
        prompt = body["messages"][-1]["content"]
        async with gate:
            started = time.perf_counter()
            try:
                reply = await (
                    _stream(client, body, started) if options.stream else _post(client, body)
                )
                row = score_chat(item, reply, time.perf_counter() - started, prompt)
            except (httpx.HTTPError, ChatError, ValueError) as exc:
                row = Row(
                    item.id,
                    item.reference,
                    seconds=time.perf_counter() - started,
                    prompt=prompt,
                    error=f"{type(exc).__name__}: {exc}",
                )
        if on_done is not None:
            on_done(row)
        return row

    return list(await asyncio.gather(*(one(item) for item in items)))


def openai_client(
    url: str, headers: dict[str, str] | None = None, concurrency: int = 8
) -> httpx.AsyncClient:
    """A client whose relative paths (`models`, `chat/completions`) resolve under /v1/."""
    limits = httpx.Limits(max_connections=max(concurrency, 1) + 2)
    return httpx.AsyncClient(
        base_url=url.rstrip("/") + "/",
        headers=headers,
        timeout=httpx.Timeout(None, connect=10.0),
        limits=limits,
    )
