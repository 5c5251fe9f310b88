"""The trace page in a real browser: headless Chromium (Debian's, driven through its
chromedriver) on the real embedded service, whose tiny model runs on vLLM.

Tool calls come from a real LoRA adapter loaded into that engine (tests/tool_caller.py):
on the worker's own tool prompt it calls the python tool with code that prints markup,
then answers from the result. So one job shows every part of the page: the stages on
the timeline, each sample's engine calls and answers, the vote, and tool calls with
their arguments and output; another carries `<script>`, `onerror=` and `javascript:`
payloads in its problem and in the python tool's output, and none of them may run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Service
from tests.tool_caller import call_text, train_tool_caller
from workers.models.tiny import TinyModel
from workers.prompts import policy_messages, tool_user_prompt

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ADMIN = {"X-Admin-Key": ADMIN_KEY}
# Markup that would set `window.pwned` (or open an alert) if it ever ran or rendered.
PAYLOAD = (
    "<script>window.pwned=1;alert(1)</script>"
    '<img src=x onerror="window.pwned=2;alert(2)">'
    '<a id="evil" href="javascript:window.pwned=3">click</a>'
)
CALL = call_text(f"print({json.dumps(PAYLOAD)})")
RESULT = {"stdout": PAYLOAD + "\n", "stderr": "", "status": "ok"}
VOTE_PROBLEM = "What is 6 * 7? Use the python tool."
HOSTILE_PROBLEM = f"Compute {PAYLOAD} with python."
TOOL_JOB: dict[str, Any] = {"tools": ["python"], "max_tokens": 256}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        if os.environ.get("CI"):
            raise RuntimeError("Debian's chromium and chromium-driver are missing: run "
                               "scripts/install-ops-tools.sh")  # fmt: skip
        pytest.skip("chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1600"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=DriverService(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def caller(
    service: Service, tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The tool-calling adapter, loaded as `caller` in the asker's slot (max_loras keeps
    one slot free, vLLM CPU LoRA bug), trained on the prompts the worker sends these
    jobs: the tool prompt with the served python manifest."""
    token = service.app.state.settings.tool_token.get_secret_value()
    with service.client() as client:
        manifest = client.get(
            "/tools/python/manifest", headers={"X-Sciserve-Tool-Token": token}
        ).json()
    first_turns = [
        policy_messages(tool_user_prompt(problem, None, manifest, required=True))
        for problem in (VOTE_PROBLEM, HOSTILE_PROBLEM)
    ]
    path = train_tool_caller(
        tiny_model, tmp_path_factory.mktemp("caller") / "caller", first_turns,
        call=CALL, result=RESULT,
    )  # fmt: skip
    load = {"role": "policy", "name": "caller", "path": str(path),
            "base_model": str(tiny_model.model_dir), "rank": 16}  # fmt: skip
    with service.client() as client:
        assert client.delete("/admin/adapters/asker", headers=ADMIN).status_code == 204
        loaded = client.post("/admin/adapters", json=load, headers=ADMIN)
        assert loaded.status_code == 200, loaded.text
        try:
            yield "caller"
        finally:
            client.delete("/admin/adapters/caller", headers=ADMIN)
            asker = {"role": "asker", "path": str(tiny_model.adapters["asker"]),
                     "base_model": str(tiny_model.model_dir), "rank": tiny_model.rank}  # fmt: skip
            assert client.post("/admin/adapters", json=asker, headers=ADMIN).status_code == 200


def _submit(service: Service, body: dict[str, Any]) -> str:
    with service.client() as client:
        accepted = client.post("/jobs", json=body)
        assert accepted.status_code == 202, accepted.text
        return str(accepted.json()["id"])


def _finished(service: Service, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 600
    with service.client() as client:
        while time.monotonic() < deadline:
            status = client.get(f"/jobs/{job_id}").json()
            if status["status"] in ("succeeded", "failed"):
                assert status["status"] == "succeeded", status
                return dict(status["result"])
            time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")


def _open(driver: Any, url: str, *, until: str = "ready", timeout: float = 120) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return document.body.dataset.state") == until
    )


def _console_errors(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _all(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def test_a_finished_vote_shows_stages_votes_and_tool_calls(
    service: Service, caller: str, browser: Any, tmp_path: Path
) -> None:
    strategy = {"tools": "always", "samples": 3}
    body = {
        **TOOL_JOB,
        "problem": VOTE_PROBLEM,
        "adapters": {"policy": caller},
        "strategy": strategy,
    }
    job_id = _submit(service, body)
    result = _finished(service, job_id)
    assert result["used_tools"] == ["write_and_run_code"], "the caller adapter made no tool call"
    browser.get_log("browser")  # start from a clean console

    _open(browser, f"{service.url}/ui/jobs/{job_id}")
    assert [a.get_attribute("data-stage") for a in _all(browser, "article.stage")] == [
        "generate",
        "select",
    ]
    assert len(_all(browser, "ol.timeline li")) == 2
    votes = {row.find_element("css selector", "th").text: row for row in _all(browser, "tr.vote")}
    assert result["answer"] in votes and "winner" in votes[result["answer"]].get_attribute("class")
    tool_calls = _all(browser, "li.tool-call")
    assert tool_calls and "write_and_run_code" in tool_calls[0].text
    assert PAYLOAD in tool_calls[0].text  # arguments and output, as text
    assert _all(browser, "tr.engine-call") and _all(browser, "tr.sample")
    assert browser.find_element("id", "answer").text == result["answer"]
    stray_text = """return [...document.querySelectorAll('article.stage')].some((article) =>
        [...article.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()))"""
    assert browser.execute_script(stray_text) is False  # every part is an element
    screenshot = Path(os.environ.get("SCISERVE_SCREENSHOT_DIR", tmp_path)) / "trace-page.png"
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(int(height) + 120, 4000))  # the whole page, in one image
    browser.save_screenshot(str(screenshot))
    browser.set_window_size(1280, 1600)
    assert screenshot.stat().st_size > 10_000

    _open(browser, f"{service.url}/ui/jobs")
    [row] = _all(browser, f'tr[data-job="{job_id}"]')
    assert "vote" in row.text and "succeeded" in row.text
    assert _console_errors(browser) == []


def test_a_running_job_is_followed_live(service: Service, caller: str, browser: Any) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    # Three samples that each call the sandbox, then a SCoRe round: seconds of work.
    strategy = {"tools": "always", "samples": 3, "stop": "none", "attempts": 2}
    body = {
        **TOOL_JOB,
        "problem": VOTE_PROBLEM,
        "adapters": {"policy": caller},
        "strategy": strategy,
    }
    browser.get_log("browser")
    job_id = _submit(service, body)
    _open(browser, f"{service.url}/ui/jobs/{job_id}")
    first = browser.execute_script("return document.body.dataset.firstStatus")
    assert first in ("queued", "running"), f"the job had finished before the page opened: {first}"
    assert browser.execute_script("return document.body.dataset.followed") == "true"
    # The stream's `done` re-reads the job: the final page, without a reload by the test.
    WebDriverWait(browser, 600).until(
        lambda d: (
            d.find_element("id", "job-status").text == "succeeded"
            and d.execute_script("return document.body.dataset.live") == "closed"
            and d.execute_script("return document.body.dataset.state") == "ready"
        )
    )
    stages = [a.get_attribute("data-stage") for a in _all(browser, "article.stage")]
    assert stages == ["generate", "selfcorrect", "select"]
    assert browser.find_element("id", "answer").text == _finished(service, job_id)["answer"]
    assert _console_errors(browser) == []


def test_untrusted_text_is_shown_and_never_run(service: Service, caller: str, browser: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    strategy = {"tools": "always"}
    body = {
        **TOOL_JOB,
        "problem": HOSTILE_PROBLEM,
        "adapters": {"policy": caller},
        "strategy": strategy,
    }
    job_id = _submit(service, body)
    _finished(service, job_id)
    with service.client() as client:
        page = client.get(f"/ui/api/jobs/{job_id}").json()
    [generate] = [e for e in page["events"] if e["type"] == "stage"]
    [[call, *_]] = generate["detail"]["tool_calls"]
    assert call["result"]["stdout"] == PAYLOAD + "\n"  # the tool really printed it
    browser.get_log("browser")

    for url in (f"{service.url}/ui/jobs/{job_id}", f"{service.url}/ui/jobs"):
        _open(browser, url)
        time.sleep(0.5)  # an image's onerror would fire by now
        assert browser.execute_script("return typeof window.pwned") == "undefined", url
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018 - reading it is the check
        assert browser.execute_script("return document.scripts.length") == 1  # ui.js
        assert _all(browser, "main img") == [] and _all(browser, "#evil") == []
        assert _all(browser, 'a[href^="javascript:"]') == []
    # On the job page the payloads are there, as the text they are.
    _open(browser, f"{service.url}/ui/jobs/{job_id}")
    assert browser.find_element("id", "problem").text == HOSTILE_PROBLEM
    [tool_call] = _all(browser, "li.tool-call")
    assert PAYLOAD in tool_call.text
    assert _console_errors(browser) == []
