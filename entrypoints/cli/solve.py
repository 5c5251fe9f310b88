"""`sciserve solve`: the HTTP client of a running server."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer


def solve(
    problem: Annotated[str, typer.Argument(help="The problem text.")],
    url: Annotated[str, typer.Option(envvar="SCISERVE_URL", help="Server URL.")] = (
        "http://127.0.0.1:8000"
    ),
    options: Annotated[list[str] | None, typer.Option("--option", help="A choice; repeat.")] = None,
    reference: Annotated[str | None, typer.Option(help="Known answer.")] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            "-s",
            help="As in eval: direct, adaptive, think, art and field:value pairs, e.g. "
            "samples:5,attempts:2. Unset: the server's default (adaptive).",
        ),
    ] = None,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream", help="Follow the job live: stages on stderr, the answer as it is written."
        ),
    ] = False,
    open_page: Annotated[
        bool,
        typer.Option(
            "--open",
            help="Print the job's trace page URL (/ui/jobs/ID) on stderr as soon as it is "
            "queued, and open it in a browser when one is set up (BROWSER, or a desktop's).",
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 600.0,
    full: Annotated[bool, typer.Option("--json", help="Print the whole response.")] = False,
    api_key: Annotated[str | None, typer.Option(envvar="SCISERVE_API_KEY", help="API key.")] = None,
) -> None:
    """Send a problem to a running server and print the answer."""
    import httpx

    body: dict[str, object] = {"problem": problem}
    if options:
        body["options"] = options
    if reference is not None:
        body["reference"] = reference
    if strategy is not None:
        from evaluation.runner import parse_strategy

        try:
            body["strategy"] = parse_strategy(strategy).model_dump(exclude_defaults=True)
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with httpx.Client(base_url=url.rstrip("/"), timeout=timeout, headers=headers) as client:
            if stream or open_page:
                announce = _page_opener(url) if open_page else None
                result = _solve_streaming(
                    client, {**body, "stream": True} if stream else body, announce, live=stream
                )
            else:
                response = client.post("/solve", json=body)
                _exit_on_error(response)
                result = response.json()
    except httpx.HTTPError as exc:
        typer.echo(f"Could not reach {url}: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        json.dumps(result, indent=2) if full else (result["answer"] or result["answer_text"])
    )


def _exit_on_error(response: Any) -> None:
    if response.status_code >= 400:
        typer.echo(f"Error {response.status_code}: {response.json().get('detail')}", err=True)
        raise typer.Exit(1)


def _page_opener(url: str) -> Callable[[str], None]:
    """Announce a job's trace page: its URL on stderr, then a browser if one is set up
    (`webbrowser`: $BROWSER, or a desktop's default; on a bare server nothing opens).
    With API keys on, the page asks once for the key and keeps a session cookie."""

    def announce(job_id: str) -> None:
        page = f"{url.rstrip('/')}/ui/jobs/{job_id}"
        typer.echo(f"Trace page: {page}", err=True)
        import webbrowser

        webbrowser.open(page)

    return announce


def _solve_streaming(
    client: Any,
    body: dict[str, object],
    accepted_job: Callable[[str], None] | None = None,
    *,
    live: bool = True,
) -> dict[str, Any]:
    """Queue the job and follow its events; `accepted_job` hears its id first. `live`:
    each finished stage on stderr, the answer's text on stdout while the engine writes
    it (strategies with one generation). Ctrl-C cancels the job. Returns the job's
    result."""
    accepted = client.post("/jobs", json=body)
    _exit_on_error(accepted)
    job_id = accepted.json()["id"]
    if accepted_job is not None:
        accepted_job(job_id)
    streamed = False
    try:
        with client.stream("GET", f"/jobs/{job_id}/events") as events:
            _exit_on_error(events)
            for line in events.iter_lines():
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                if event.get("type") == "done":
                    break
                if not live:
                    continue
                if event.get("type") == "stage":
                    tokens = event["completion_tokens"] + event["thought_tokens"]
                    typer.echo(
                        f"[{event['stage']}] {event['duration_s']:.2f} s, {tokens} tokens, "
                        f"{event['engine_calls']} engine calls",
                        err=True,
                    )
                elif event.get("type") == "delta":
                    sys.stdout.write(event["text"])
                    sys.stdout.flush()
                    streamed = True
    except KeyboardInterrupt:
        client.delete(f"/jobs/{job_id}")
        typer.echo(f"\nCancelled job {job_id}.", err=True)
        raise typer.Exit(130) from None
    if streamed:
        sys.stdout.write("\n")
    job = client.get(f"/jobs/{job_id}").json()
    if job["status"] != "succeeded":
        typer.echo(f"Error ({job.get('error_code')}): {job.get('error')}", err=True)
        raise typer.Exit(1)
    result: dict[str, Any] = job["result"]
    return result
