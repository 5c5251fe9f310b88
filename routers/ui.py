"""The trace pages: `/ui/jobs` (the caller's recent jobs) and `/ui/jobs/{id}` (one solve:
its stages on a timeline, each engine call's samples and answers, the vote, tool calls,
SCoRe and ART decisions, tokens and times, followed live while it runs), their JSON,
and the browser session a page and its `EventSource` sign in with (app/sessions.py).

The pages are static files of the gateway package (app/static/: one HTML shell, one
script, one stylesheet; no build step, no Node at run time). The script reads the JSON
below and the job's `GET /jobs/{id}/events` stream and renders every untrusted text
(problems, model outputs, tool results) as text, never as markup. Every response here
carries a Content-Security-Policy that allows scripts and styles from this origin only,
so no inline script ever runs. The HTML shell answers 401 (it then shows the sign-in
form) or 404 as the JSON would, so a page never shows another key's job.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from app.deps import OwnedJob, PageViewer, QueueDep, SessionsDep, SolveCaller
from app.job_pages import job_list, job_trace
from app.sessions import SESSION_COOKIE, SESSION_TTL_S
from app.solving import owned_status
from contract.errors import UnknownJobError
from contract.schemas import ErrorBody, JobList, JobTrace

router = APIRouter(prefix="/ui", tags=["trace pages"])
ERRORS = {status: {"model": ErrorBody} for status in (401, 403, 404, 429, 503)}
# A POST passes the body-size and JSON checks first (contract/body_limit, app/content_type).
SESSION_ERRORS = {status: {"model": ErrorBody} for status in (401, 403, 413, 415, 429, 503)}

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# The page's files (package data), by the name the page asks for, with their types.
STATIC = {
    "page.html": "text/html; charset=utf-8",
    "ui.js": "text/javascript; charset=utf-8",
    "ui.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}


def _file(name: str, status_code: int = 200) -> Response:
    body = resources.files("app").joinpath("static", name).read_bytes()
    return Response(body, status_code, headers=SECURITY_HEADERS, media_type=STATIC[name])


def _secured(response: Response) -> None:
    response.headers.update(SECURITY_HEADERS)


@router.get("", include_in_schema=False)
async def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/jobs")


@router.get("/jobs", include_in_schema=False)
async def jobs_page(viewer: PageViewer) -> Response:
    """The caller's recent jobs; signed out: the same page, which asks for a key (401)."""
    return _file("page.html", 200 if viewer is not None else 401)


@router.get("/jobs/{job_id}", include_in_schema=False)
async def job_page(job_id: str, viewer: PageViewer, queue: QueueDep) -> Response:
    """One job's trace page: 401 signed out (the page asks for a key), 404 for a job
    that is unknown, expired or another key's, as `GET /jobs/{id}` answers."""
    if viewer is None:
        return _file("page.html", 401)
    try:
        await owned_status(queue, job_id, viewer)
    except UnknownJobError:
        return _file("page.html", 404)
    return _file("page.html")


@router.get("/static/ui.js", include_in_schema=False)
async def script() -> Response:
    return _file("ui.js")


@router.get("/static/ui.css", include_in_schema=False)
async def stylesheet() -> Response:
    return _file("ui.css")


@router.get("/static/icon.svg", include_in_schema=False)
async def icon() -> Response:
    return _file("icon.svg")


@router.get("/api/jobs", response_model=JobList, responses=ERRORS)  # type: ignore[arg-type]
async def recent_jobs(queue: QueueDep, principal: SolveCaller, response: Response) -> JobList:
    """The caller's jobs still kept (the result TTL), newest first, at most 50: status,
    strategy, tokens and duration. Only the key's own jobs are listed."""
    _secured(response)
    return await job_list(queue, principal)


@router.get("/api/jobs/{job_id}", response_model=JobTrace, responses=ERRORS)  # type: ignore[arg-type]
async def job_trace_json(
    job: OwnedJob, queue: QueueDep, principal: SolveCaller, response: Response
) -> JobTrace:
    """One job with its events so far (the trace page's data): same scopes as
    `GET /jobs/{id}`, thoughts only with reveal_thoughts."""
    _secured(response)
    return await job_trace(queue, job, principal)


@router.post("/session", status_code=204, responses=SESSION_ERRORS)  # type: ignore[arg-type]
async def open_session(request: Request, principal: SolveCaller, sessions: SessionsDep) -> Response:
    """Sign a browser in to the trace pages: send the API key once (`Authorization:
    Bearer`, a JSON body `{}`); the answer sets an HttpOnly, SameSite=Strict session
    cookie that stands for the key on reading requests (GET) only, for 8 hours or until
    `DELETE /ui/session`. With keys off there is nothing to sign in to (no cookie)."""
    response = Response(status_code=204, headers=SECURITY_HEADERS)
    if sessions is not None and principal.key_hash is not None:
        response.set_cookie(
            SESSION_COOKIE,
            await sessions.open(principal.key_hash),
            max_age=SESSION_TTL_S,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
    return response


@router.delete("/session", status_code=204)
async def close_session(request: Request, sessions: SessionsDep) -> Response:
    """Sign the browser out: its session ends (the cookie is its own credential, so
    this needs no key) and the cookie is cleared."""
    token = request.cookies.get(SESSION_COOKIE)
    if token and sessions is not None:
        await sessions.close(token)
    response = Response(status_code=204, headers=SECURITY_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
