"""The dashboard: server-rendered pages behind sign-in with GitHub.

`/` lists the repositories the signed-in person may read on GitHub; `/repos/{owner}/{name}`
shows each base branch's queue, parallel mode's builds in flight, the recent landings and
dequeues, and charts of time to merge and queue depth. Pausing, resuming and dequeueing are
forms (a CSRF token in a hidden field) allowed by the rule of the queue's commands.

Without GITHUB_OAUTH_CLIENT_ID, _SECRET and SESSION_SECRET every page answers 503 with a
page that says so; the JSON API is unaffected. No URL here is built from the Host header:
the sign-in redirects to GITHUB_WEB_URL, everything else to a path of this site.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any, Final
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from api import actions
from api.deps import SessionDep, SettingsDep
from api.pages import charts, data
from api.pages.github import (
    NO_ACCESS,
    Access,
    GitHubSignIn,
    GitHubUnavailable,
    SignInFailed,
    TokenRejected,
)
from api.pages.session import Session, Sessions
from mergequeue import reads
from mergequeue.models import Repository
from mergequeue.queue.commands import QueueError
from mergequeue.queue.decide import DequeueReason
from mergequeue.settings import Settings
from mergequeue.tasks import TaskQueue

log = logging.getLogger("mergequeue.dashboard")

router = APIRouter(include_in_schema=False)

# GitHub names: letters, digits, `.`, `_`, `-` (as the API's paths).
_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,100}")
CSS_PATH: Final = "/static/dashboard.css"
_CSS: Final = (resources.files("api.pages") / "static" / "dashboard.css").read_bytes()

_SECURITY_HEADERS: Final = {
    # Nothing but this site's stylesheet and forms; no scripts at all.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_env = Environment(
    loader=PackageLoader("api.pages", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def waited(since: datetime | None, now: datetime) -> str:
    """`3 h 12 min`: how long ago, for people."""
    if since is None:
        return "-"
    seconds = max(0, int((now - since).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return "under a minute"


def when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def words(value: str | None) -> str:
    """`waiting_for_checks` -> `waiting for checks`."""
    return "" if value is None else value.replace("_", " ")


_env.filters.update(when=when, words=words)
_env.globals.update(css_path=CSS_PATH)


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    session: Session | None = None,
    **context: Any,
) -> HTMLResponse:
    now = datetime.now(UTC)
    html = _env.get_template(template).render(
        session=session,
        now=now,
        waited=lambda since: waited(since, now),
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)


def message(
    request: Request, status: int, title: str, text: str, session: Session | None = None
) -> HTMLResponse:
    return render(request, "message.html", status=status, session=session, title=title, text=text)


class Dashboard:
    """The sign-in client and session codec of a configured dashboard."""

    def __init__(self, settings: Settings, sign_in: GitHubSignIn) -> None:
        assert settings.SESSION_SECRET is not None
        self.sessions = Sessions(settings.SESSION_SECRET.get_secret_value())
        self.github = sign_in

    async def aclose(self) -> None:
        await self.github.aclose()


async def get_dashboard(request: Request) -> Dashboard | None:
    dashboard: Dashboard | None = getattr(request.app.state, "dashboard", None)
    return dashboard


DashboardDep = Annotated[Dashboard | None, Depends(get_dashboard)]


def _not_configured(request: Request) -> HTMLResponse:
    return message(
        request,
        503,
        "The dashboard is not set up",
        "Sign-in with GitHub is not configured on this mergequeue: set "
        "GITHUB_OAUTH_CLIENT_ID, GITHUB_OAUTH_CLIENT_SECRET and SESSION_SECRET "
        "(see the README's configuration table). The REST and GraphQL APIs work without it.",
    )


def _signed_out(request: Request, dashboard: Dashboard, note: str | None = None) -> Response:
    response = render(request, "signin.html", status=401 if note else 200, note=note)
    if note:
        dashboard.sessions.clear(request, response)
    return response


def _github_down(request: Request, session: Session | None, exc: Exception) -> HTMLResponse:
    log.warning("dashboard: GitHub unavailable: %s", exc)
    return message(
        request,
        503,
        "GitHub did not answer",
        "mergequeue could not ask GitHub what you may see. Try again in a minute.",
        session,
    )


async def _known_repository(session: SessionDep, owner: str, name: str) -> Repository | None:
    if not (_NAME.fullmatch(owner) and _NAME.fullmatch(name)):
        return None
    return await reads.find_repository(session=session, owner=owner, name=name)


async def _access(
    dashboard: Dashboard, session: Session, full_name: str, *, fresh: bool = False
) -> Access:
    found = await dashboard.github.access(
        sid=session.sid, token=session.token, full_names=[full_name], fresh=fresh
    )
    return found.get(full_name, NO_ACCESS)


# -- the stylesheet -----------------------------------------------------------------------


@router.get(CSS_PATH)
async def stylesheet() -> Response:
    return Response(
        _CSS,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


# -- sign-in ------------------------------------------------------------------------------


@router.get("/login")
async def login(request: Request, dashboard: DashboardDep) -> Response:
    if dashboard is None:
        return _not_configured(request)
    state = dashboard.sessions.new_state()
    response = RedirectResponse(
        dashboard.github.authorize_url(state),
        status_code=302,
        headers={"Cache-Control": "no-store"},
    )
    dashboard.sessions.remember_state(request, response, state)
    return response


@router.get("/oauth/callback")
async def oauth_callback(
    request: Request,
    dashboard: DashboardDep,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    if dashboard is None:
        return _not_configured(request)
    if error is not None or code is None:
        return _signed_out(request, dashboard, "GitHub did not sign you in. Try again.")
    if not dashboard.sessions.state_matches(request, state):
        # A callback this browser did not start (or started over ten minutes ago).
        return _signed_out(request, dashboard, "That sign-in link is stale. Sign in again.")
    try:
        token = await dashboard.github.exchange(code)
        login_name = await dashboard.github.login(token)
    except SignInFailed as exc:
        log.info("dashboard: sign-in refused by GitHub: %s", exc)
        return _signed_out(request, dashboard, "GitHub did not sign you in. Try again.")
    except (GitHubUnavailable, TokenRejected) as exc:
        return _github_down(request, None, exc)
    session = Session.start(login=login_name, token=token)
    response = RedirectResponse("/", status_code=303)
    dashboard.sessions.write(request, response, session)
    dashboard.sessions.end_sign_in(request, response)
    log.info("dashboard: signed in", extra={"login": login_name})
    return response


@router.post("/logout")
async def logout(request: Request, dashboard: DashboardDep) -> Response:
    if dashboard is None:
        return _not_configured(request)
    session = dashboard.sessions.read(request)
    form = await _form(request)
    if session is not None and not session.csrf_matches(form.get("csrf")):
        return message(request, 403, "Not signed out", "The form was stale. Reload and retry.")
    response = RedirectResponse("/", status_code=303)
    dashboard.sessions.clear(request, response)
    if session is not None:
        dashboard.github.forget(session.sid)
    return response


# -- pages --------------------------------------------------------------------------------


@router.get("/")
async def index(request: Request, dashboard: DashboardDep, db: SessionDep) -> Response:
    if dashboard is None:
        return _not_configured(request)
    session = dashboard.sessions.read(request)
    if session is None:
        return _signed_out(request, dashboard)
    repositories = await reads.list_repositories(session=db)
    try:
        access = await dashboard.github.access(
            sid=session.sid,
            token=session.token,
            full_names=[r.full_name for r in repositories],
        )
    except TokenRejected:
        return _signed_out(request, dashboard, "Your GitHub sign-in has expired. Sign in again.")
    except GitHubUnavailable as exc:
        return _github_down(request, session, exc)
    visible = [r for r in repositories if access[r.full_name].visible]
    rows = await data.summaries(session=db, repositories=visible)
    return render(request, "index.html", session=session, rows=rows)


@router.get("/repos/{owner}/{name}")
async def repository_page(
    request: Request, owner: str, name: str, dashboard: DashboardDep, db: SessionDep
) -> Response:
    if dashboard is None:
        return _not_configured(request)
    session = dashboard.sessions.read(request)
    if session is None:
        return _signed_out(request, dashboard)
    repository = await _known_repository(db, owner, name)
    try:
        access = (
            NO_ACCESS
            if repository is None
            else await _access(dashboard, session, repository.full_name)
        )
    except TokenRejected:
        return _signed_out(request, dashboard, "Your GitHub sign-in has expired. Sign in again.")
    except GitHubUnavailable as exc:
        return _github_down(request, session, exc)
    if repository is None or not access.visible:
        # The same answer whether it does not exist or the person may not see it.
        return message(
            request, 404, "No such repository", f"{owner}/{name} is not here for you.", session
        )
    page = await data.repository_page(session=db, repository=repository, now=datetime.now(UTC))
    return render(
        request,
        "repository.html",
        session=session,
        page=page,
        access=access,
        needed=dashboard.github.needed.value,
        time_to_merge=charts.time_to_merge(page.merges_by_day),
        depth_chart=charts.queue_depth(page.depth),
        duration_minutes=charts.duration_minutes,
        web_url=dashboard.github.web_url,
        repo_path=f"/repos/{quote(repository.owner)}/{quote(repository.name)}",
    )


# -- forms --------------------------------------------------------------------------------


async def _form(request: Request) -> dict[str, str]:
    # The gate has capped the body (4 KiB) before this runs.
    raw = await request.body()
    parsed = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=8)
    return {key: values[-1] for key, values in parsed.items()}


async def _commanding(
    request: Request, dashboard: Dashboard | None, db: SessionDep, owner: str, name: str
) -> tuple[Session, Repository, dict[str, str]] | Response:
    """The session, repository and form of an allowed action, or the answer refusing it."""
    if dashboard is None:
        return _not_configured(request)
    session = dashboard.sessions.read(request)
    if session is None:
        return _signed_out(request, dashboard, "Sign in to change the queue.")
    form = await _form(request)
    if not session.csrf_matches(form.get("csrf")):
        return message(
            request,
            403,
            "Nothing was changed",
            "The form was not sent from this dashboard (or is stale). Reload the page and retry.",
            session,
        )
    repository = await _known_repository(db, owner, name)
    try:
        # Asked again, not from the cache: permissions may have just been taken away.
        access = (
            NO_ACCESS
            if repository is None
            else await _access(dashboard, session, repository.full_name, fresh=True)
        )
    except TokenRejected:
        return _signed_out(request, dashboard, "Your GitHub sign-in has expired. Sign in again.")
    except GitHubUnavailable as exc:
        return _github_down(request, session, exc)
    if repository is None or not access.visible:
        return message(
            request, 404, "No such repository", f"{owner}/{name} is not here for you.", session
        )
    if not access.may_command:
        return message(
            request,
            403,
            "Nothing was changed",
            f"Changing this queue needs at least {dashboard.github.needed.value} permission "
            f"on {repository.full_name}; you have {access.role.value}.",
            session,
        )
    return session, repository, form


def _back(repository: Repository) -> RedirectResponse:
    return RedirectResponse(
        f"/repos/{quote(repository.owner)}/{quote(repository.name)}", status_code=303
    )


def _tasks(request: Request) -> TaskQueue:
    tasks: TaskQueue = request.app.state.tasks
    return tasks


@router.post("/repos/{owner}/{name}/pause")
async def pause(
    request: Request, owner: str, name: str, dashboard: DashboardDep, db: SessionDep
) -> Response:
    return await _set_paused(request, owner, name, dashboard, db, paused=True)


@router.post("/repos/{owner}/{name}/resume")
async def resume(
    request: Request, owner: str, name: str, dashboard: DashboardDep, db: SessionDep
) -> Response:
    return await _set_paused(request, owner, name, dashboard, db, paused=False)


async def _set_paused(
    request: Request,
    owner: str,
    name: str,
    dashboard: Dashboard | None,
    db: SessionDep,
    *,
    paused: bool,
) -> Response:
    allowed = await _commanding(request, dashboard, db, owner, name)
    if isinstance(allowed, Response):
        return allowed
    session, repository, _ = allowed
    await actions.set_paused(
        session=db, tasks=_tasks(request), repository=repository, paused=paused
    )
    log.info(
        "dashboard: paused" if paused else "dashboard: resumed",
        extra={"repository": repository.full_name, "login": session.login},
    )
    return _back(repository)


@router.post("/repos/{owner}/{name}/dequeue")
async def dequeue(
    request: Request,
    owner: str,
    name: str,
    dashboard: DashboardDep,
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    allowed = await _commanding(request, dashboard, db, owner, name)
    if isinstance(allowed, Response):
        return allowed
    session, repository, form = allowed
    number = form.get("number", "")
    if not number.isdigit() or not 0 < int(number) < 2**31:
        return message(request, 422, "Nothing was changed", "No pull request number.", session)
    try:
        await actions.dequeue(
            session=db,
            tasks=_tasks(request),
            settings=settings,
            repository=repository,
            number=int(number),
            reason=DequeueReason.DASHBOARD.value,
        )
    except QueueError as exc:
        return message(request, 409, "Nothing was changed", str(exc), session)
    log.info(
        "dashboard: dequeued",
        extra={"repository": repository.full_name, "pr": int(number), "login": session.login},
    )
    return _back(repository)
