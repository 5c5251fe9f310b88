"""The trace pages' API (routers/ui.py) on a real gateway and worker over a real Redis:
jobs record the name of the key that sent them and list for that key only; a job's page,
its JSON and its event stream answer another key with a 404, as `/jobs/{id}` does; the
browser session (the cookie an `EventSource` sends) reads but never writes, and ends
with its key; thoughts reach a reader only with the scope; page responses carry the
Content-Security-Policy; `/metrics` learns nothing per job."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import httpx

from app.auth import RedisKeyStore
from jobqueue.redis_streams import connect
from tests.conftest import REDIS_URL, Spawn

VOTE = {
    "problem": "What is 6 * 7?",
    "strategy": {"tools": "never", "samples": 2, "attempts": 2, "stop": "none"},
    "max_tokens": 8,
}


def _redis(prefix: str, action: Any) -> Any:
    async def run() -> Any:
        client = connect(REDIS_URL)
        try:
            return await action(RedisKeyStore(client, prefix), client)
        finally:
            await client.aclose()

    return asyncio.run(run())


def _key(prefix: str, name: str, *scopes: str) -> dict[str, str]:
    async def create(store: RedisKeyStore, _: Any) -> str:
        return await store.create(name, list(scopes))

    return {"Authorization": f"Bearer {_redis(prefix, create)}"}


def _finished(gateway: str, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = httpx.get(f"{gateway}/jobs/{job_id}", headers=headers).json()
        if status["status"] in ("succeeded", "failed"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def _sse(url: str, **kwargs: Any) -> list[dict[str, Any]]:
    with httpx.stream("GET", url, timeout=60, **kwargs) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        events = []
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
                if events[-1]["type"] == "done":
                    return events
    raise AssertionError("the stream ended before `done`")


def test_a_jobs_page_shows_its_stages_to_its_key_and_to_no_other(
    spawn: Spawn, redis_prefix: str
) -> None:
    _, gateway = spawn("gateway")
    spawn("worker")
    alice, bob = _key(redis_prefix, "alice", "solve"), _key(redis_prefix, "bob", "solve")
    job_id = httpx.post(f"{gateway}/jobs", json=VOTE, headers=alice).json()["id"]
    result = _finished(gateway, job_id, alice)["result"]

    trace = httpx.get(f"{gateway}/ui/api/jobs/{job_id}", headers=alice)
    assert trace.status_code == 200, trace.text
    assert trace.headers["content-security-policy"].startswith("default-src 'none'")
    page = trace.json()
    assert (page["key_name"], page["strategy"], page["status"]) == ("alice", "vote", "succeeded")
    assert page["request"]["problem"] == VOTE["problem"] and page["thoughts_visible"] is False
    stages = [e for e in page["events"] if e["type"] == "stage"]
    assert [e["stage"] for e in stages] == ["generate", "selfcorrect", "select"]
    assert [e["index"] for e in stages] == [0, 1, 2]
    # Every engine call is listed with its stage: outputs, tokens, the role's adapter.
    calls = [call for e in stages for call in e["calls"]]
    assert len(calls) == result["usage"]["engine_calls"]
    assert sum(c["completion_tokens"] for c in calls) == result["usage"]["completion_tokens"]
    assert all(c["role"] == "policy" and c["outputs"] for c in calls)
    generate, selfcorrect, select = stages
    assert len(generate["detail"]["answers"]) == len(selfcorrect["detail"]["answers_after"]) == 2
    assert sum(select["detail"]["votes"].values()) <= 2 and select["detail"]["stop"]["used"] == 2
    for field in ("prompt_tokens", "completion_tokens", "engine_calls"):
        assert sum(e[field] for e in stages) == result["usage"][field]

    # The same stages on the event stream, and the job in its key's list only.
    streamed = [e for e in _sse(f"{gateway}/jobs/{job_id}/events", headers=alice)]
    assert [e["detail"] for e in streamed if e["type"] == "stage"] == [e["detail"] for e in stages]
    [listed] = httpx.get(f"{gateway}/ui/api/jobs", headers=alice).json()["jobs"]
    assert (listed["id"], listed["strategy"], listed["key_name"]) == (job_id, "vote", "alice")
    usage = result["usage"]
    assert listed["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert listed["duration_s"] == result["timings"]["total_s"]
    bobs = httpx.get(f"{gateway}/ui/api/jobs", headers=bob).json()
    assert bobs == {"viewer": "bob", "jobs": []}

    # Another key: a 404 everywhere /jobs/{id} says 404; nobody signed in: a 401 page.
    for path in (f"/jobs/{job_id}", f"/ui/api/jobs/{job_id}", f"/jobs/{job_id}/events"):
        assert httpx.get(gateway + path, headers=bob).status_code == 404, path
    html = httpx.get(f"{gateway}/ui/jobs/{job_id}", headers=bob)
    assert html.status_code == 404 and html.headers["content-type"].startswith("text/html")
    signed_out = httpx.get(f"{gateway}/ui/jobs/{job_id}")
    assert signed_out.status_code == 401 and "ui.js" in signed_out.text
    assert httpx.get(f"{gateway}/ui/api/jobs/{job_id}").status_code == 401
    own = httpx.get(f"{gateway}/ui/jobs/{job_id}", headers=alice)
    assert own.status_code == 200 and own.headers["x-content-type-options"] == "nosniff"

    # Per-job facts never become metric labels: no job id, no key name.
    metrics = httpx.get(f"{gateway}/metrics").text
    assert job_id not in metrics and "alice" not in metrics


def test_the_page_is_static_and_allows_no_inline_script(spawn: Spawn) -> None:
    _, gateway = spawn("gateway")
    page = httpx.get(f"{gateway}/ui/jobs")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    # Every script is a file of this origin: none is written into the page itself.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, flags=re.S)
    assert scripts and all(
        'src="/ui/static/' in attrs and not body.strip() for attrs, body in scripts
    )
    assert not re.search(r"<[^>]*\son\w+\s*=", page.text)  # no inline event handler
    script = httpx.get(f"{gateway}/ui/static/ui.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    assert "innerHTML" not in script.text and "insertAdjacentHTML" not in script.text
    assert "eval(" not in script.text and "document.write" not in script.text
    assert httpx.get(f"{gateway}/ui/static/ui.css").status_code == 200
    assert httpx.get(f"{gateway}/ui/static/other.js").status_code == 404


def test_a_session_cookie_reads_for_its_key_and_never_writes(
    spawn: Spawn, redis_prefix: str
) -> None:
    _, gateway = spawn("gateway")
    alice, bob = _key(redis_prefix, "alice", "solve"), _key(redis_prefix, "bob", "solve")
    job_id = httpx.post(f"{gateway}/jobs", json=VOTE, headers=alice).json()["id"]

    signed = httpx.post(f"{gateway}/ui/session", json={}, headers=alice)
    assert signed.status_code == 204
    cookie = signed.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=28800"):
        assert attribute.lower() in cookie.lower(), cookie
    token = signed.cookies["sciserve_session"]
    assert token not in json.dumps(_redis(redis_prefix, lambda _, c: c.keys("*")))  # hashed

    with httpx.Client(base_url=gateway, cookies={"sciserve_session": token}) as browser:
        assert browser.get("/ui/api/jobs").json()["viewer"] == "alice"
        assert browser.get(f"/jobs/{job_id}").status_code == 200
        assert browser.get(f"/ui/jobs/{job_id}").status_code == 200
        # EventSource sends only the cookie: the stream opens for the job's key.
        with browser.stream("GET", f"/jobs/{job_id}/events", timeout=10) as events:
            assert events.status_code == 200
            assert events.headers["content-type"].startswith("text/event-stream")
        # A cookie the browser sends on its own never submits, cancels or administers.
        assert browser.post("/jobs", json=VOTE).status_code == 401
        assert browser.delete(f"/jobs/{job_id}").status_code == 401
        assert browser.post("/ui/session", json={}).status_code == 401
        assert browser.get("/admin/adapters").status_code == 401

    with httpx.Client(base_url=gateway, cookies={"sciserve_session": "ss-forged"}) as forged:
        refused = forged.get(f"/jobs/{job_id}")
        assert refused.status_code == 401 and "session has ended" in refused.json()["detail"]
        assert forged.get(f"/ui/jobs/{job_id}").status_code == 401  # the sign-in page

    # Bob's session sees Bob's jobs only.
    bob_token = httpx.post(f"{gateway}/ui/session", json={}, headers=bob).cookies[
        "sciserve_session"
    ]
    with httpx.Client(base_url=gateway, cookies={"sciserve_session": bob_token}) as browser:
        assert browser.get(f"/jobs/{job_id}/events").status_code == 404
        assert browser.get(f"/ui/api/jobs/{job_id}").status_code == 404

    # Signing out ends the session; revoking the key ends every session of it.
    with httpx.Client(base_url=gateway, cookies={"sciserve_session": token}) as browser:
        assert browser.delete("/ui/session").status_code == 204
        assert browser.get("/ui/api/jobs").status_code == 401
    again = httpx.post(f"{gateway}/ui/session", json={}, headers=alice)
    with httpx.Client(base_url=gateway, cookies=again.cookies) as browser:
        assert browser.get("/ui/api/jobs").status_code == 200
        assert _redis(redis_prefix, lambda store, _: store.revoke("alice")) == 1
        assert browser.get("/ui/api/jobs").status_code == 401


def test_thoughts_reach_a_reader_with_the_scope_only(spawn: Spawn, redis_prefix: str) -> None:
    _, gateway = spawn("gateway")
    spawn("worker")
    carol = _key(redis_prefix, "carol", "solve", "reveal_thoughts")
    body = {
        "problem": "What is 2 + 2?",
        "strategy": {"tools": "never", "think": True},
        "max_tokens": 16,
        "reveal_thoughts": True,
    }
    job_id = httpx.post(f"{gateway}/jobs", json=body, headers=carol).json()["id"]
    assert _finished(gateway, job_id, carol)["status"] == "succeeded"

    def generate_stage() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        page = httpx.get(f"{gateway}/ui/api/jobs/{job_id}", headers=carol).json()
        [stage] = [e for e in page["events"] if e["type"] == "stage"]
        [streamed] = [
            e
            for e in _sse(f"{gateway}/jobs/{job_id}/events", headers=carol)
            if e["type"] == "stage"
        ]
        return page, stage, streamed

    page, stage, streamed = generate_stage()
    assert page["thoughts_visible"] is True
    [thought] = stage["detail"]["thoughts"]
    assert thought and streamed["detail"]["thoughts"] == [thought]
    # An engine call's outputs are what the user may see, never the thought.
    assert thought not in json.dumps(stage["calls"])

    # The key loses the scope (an operator's change): its pages and stream lose the
    # thoughts at once, as the result's trace does.
    async def drop_scope(store: RedisKeyStore, client: Any) -> None:
        for digest, raw in (await client.hgetall(store.key)).items():
            entry = json.loads(raw)
            if entry["name"] == "carol":
                entry["scopes"] = ["solve"]
                await client.hset(store.key, digest, json.dumps(entry))

    _redis(redis_prefix, drop_scope)
    page, stage, streamed = generate_stage()
    assert page["thoughts_visible"] is False and page["result"]["thoughts"] is None
    assert "thoughts" not in stage["detail"] and "thoughts" not in streamed["detail"]
    assert thought not in json.dumps(page)
