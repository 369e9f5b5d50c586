"""The dashboard in process: sign-in through the fake GitHub's OAuth web flow, what each
person sees, who may pause, resume and dequeue, CSRF, sessions, and the pages without
sign-in configured."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from api.app import create_app
from api.pages.session import SESSION_COOKIE, Sealer
from bench.dashboard import CLIENT_ID, CLIENT_SECRET, SESSION_SECRET, seed, sign_in
from mergequeue.db import create_database
from mergequeue.models import QueueEntry, QueueEntryState, Repository
from mergequeue.settings import load_settings
from tests.fakegithub import FakeGitHub

BASE = "http://dashboard.test"
GITHUB = "http://github.test"


@dataclass
class Dash:
    app_url: str
    database_url: str
    fake: FakeGitHub
    client: httpx.AsyncClient
    github: httpx.AsyncClient

    async def sign_in_as(self, login: str) -> None:
        self.fake.sign_in_as(login=login)
        self.client.cookies.clear()
        await sign_in(self.client, self.github)

    async def csrf(self, path: str = "/") -> str:
        page = await self.client.get(path)
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, page.text
        return found.group(1)

    async def repository(self, name: str) -> Repository:
        database = create_database(self.database_url)
        try:
            async with database.sessions() as session:
                found = await session.scalar(select(Repository).where(Repository.name == name))
                assert found is not None
                return found
        finally:
            await database.dispose()


def environment(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "GITHUB_API_URL": GITHUB,
        "GITHUB_OAUTH_CLIENT_ID": CLIENT_ID,
        "GITHUB_OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        "SESSION_SECRET": SESSION_SECRET,
        **extra,
    }


@pytest.fixture
async def dash(sqlite_url: str, redis_url: str) -> AsyncIterator[Dash]:
    database = create_database(sqlite_url)
    async with database.sessions() as session, session.begin():
        await seed(
            session,
            repositories=3,
            entries=30,
            names=["web", "secret", "docs"],
            now=datetime.now(UTC),
        )
    await database.dispose()
    fake = FakeGitHub()
    fake.set_oauth_app(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, callback_url=f"{BASE}/oauth/callback"
    )
    fake.add_repo(full_name="acme/web")
    fake.add_repo(full_name="acme/secret", private=True)
    fake.add_repo(full_name="acme/docs")
    fake.set_permission(full_name="acme/web", username="mona", role_name="write")
    fake.set_permission(full_name="acme/secret", username="mona", role_name="read")
    github = httpx.ASGITransport(app=fake.asgi)
    app = create_app(load_settings(environment(sqlite_url, redis_url)), github_transport=github)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
        httpx.AsyncClient(transport=github, base_url=GITHUB) as gh,
    ):
        yield Dash(BASE, sqlite_url, fake, client, gh)


async def test_signed_out_visitors_get_the_sign_in_page(dash: Dash) -> None:
    page = await dash.client.get("/")
    assert page.status_code == 200
    assert 'href="/login"' in page.text
    assert "acme/web" not in page.text
    login = await dash.client.get("/login")
    assert login.status_code == 302
    assert login.headers["location"].startswith(f"{GITHUB}/login/oauth/authorize?client_id=")
    assert "state=" in login.headers["location"]
    assert (await dash.client.get("/repos/acme/web")).status_code == 200  # the sign-in page
    assert "Pause" not in (await dash.client.get("/repos/acme/web")).text


async def test_each_person_sees_only_what_github_lets_them_read(dash: Dash) -> None:
    await dash.sign_in_as("mona")
    index = await dash.client.get("/")
    assert index.status_code == 200
    assert all(name in index.text for name in ("acme/web", "acme/secret", "acme/docs"))
    assert "Signed in as <strong>mona</strong>" in index.text
    await dash.sign_in_as("stranger")
    index = await dash.client.get("/")
    assert "acme/web" in index.text and "acme/docs" in index.text
    assert "acme/secret" not in index.text
    hidden = await dash.client.get("/repos/acme/secret")
    assert hidden.status_code == 404
    # The same answer as for a repository that does not exist.
    assert (await dash.client.get("/repos/acme/nothing")).status_code == 404


async def test_the_repository_page_shows_queue_builds_history_and_charts(dash: Dash) -> None:
    await dash.sign_in_as("mona")
    page = await dash.client.get("/repos/acme/web")
    assert page.status_code == 200
    text = page.text
    assert "Queue into <code>main</code>" in text
    assert "waiting for checks" in text
    assert "mergequeue/main/1" in text  # a build in flight (parallel mode)
    assert "Recent landings and dequeues" in text and "landed" in text
    assert text.count('<svg class="chart"') == 2 and "<desc" in text
    assert f'href="{GITHUB}/acme/web/pull/' in text
    assert 'role="img"' in text and "<main" in text and 'class="skip"' in text
    # Strict CSP: no script at all.
    assert "script-src" not in page.headers["content-security-policy"]
    assert "<script" not in text
    assert page.headers["cache-control"] == "no-store"


async def test_pause_and_resume_need_the_command_permission_and_a_csrf_token(
    dash: Dash,
) -> None:
    await dash.sign_in_as("mona")
    csrf = await dash.csrf("/repos/acme/web")
    refused = await dash.client.post("/repos/acme/web/pause", data={"csrf": "forged"})
    assert refused.status_code == 403
    assert not (await dash.repository("web")).paused
    done = await dash.client.post("/repos/acme/web/pause", data={"csrf": csrf})
    assert done.status_code == 303 and done.headers["location"] == "/repos/acme/web"
    assert (await dash.repository("web")).paused
    page = await dash.client.get("/repos/acme/web")
    assert "Resume merging" in page.text and "Paused" in page.text
    await dash.client.post("/repos/acme/web/resume", data={"csrf": csrf})
    assert not (await dash.repository("web")).paused
    # Read permission only: the page says so and the form is refused.
    secret = await dash.client.get("/repos/acme/secret")
    assert "Pause merging" not in secret.text and "need at least write" in secret.text
    refused = await dash.client.post("/repos/acme/secret/pause", data={"csrf": csrf})
    assert refused.status_code == 403
    assert not (await dash.repository("secret")).paused


async def test_permission_taken_away_is_seen_at_the_next_action(dash: Dash) -> None:
    await dash.sign_in_as("mona")
    csrf = await dash.csrf("/repos/acme/web")
    dash.fake.set_permission(full_name="acme/web", username="mona", role_name="triage")
    refused = await dash.client.post("/repos/acme/web/pause", data={"csrf": csrf})
    assert refused.status_code == 403 and "you have triage" in refused.text


async def test_dequeue_from_the_page(dash: Dash) -> None:
    await dash.sign_in_as("mona")
    page = await dash.client.get("/repos/acme/web")
    number = re.search(r'name="number" value="(\d+)"', page.text)
    assert number
    csrf = await dash.csrf("/repos/acme/web")
    done = await dash.client.post(
        "/repos/acme/web/dequeue", data={"csrf": csrf, "number": number.group(1)}
    )
    assert done.status_code == 303
    database = create_database(dash.database_url)
    async with database.sessions() as session:
        reasons = (
            await session.scalars(
                select(QueueEntry.dequeue_reason).where(
                    QueueEntry.state == QueueEntryState.DEQUEUED,
                    QueueEntry.dequeue_reason == "dashboard",
                )
            )
        ).all()
    await database.dispose()
    assert reasons == ["dashboard"]
    again = await dash.client.post(
        "/repos/acme/web/dequeue", data={"csrf": csrf, "number": number.group(1)}
    )
    assert again.status_code == 409


async def test_sessions_are_sealed_http_only_and_lax(dash: Dash) -> None:
    dash.fake.sign_in_as(login="mona")
    start = await dash.client.get("/login")
    authorize = await dash.github.get(start.headers["location"])
    query = httpx.URL(authorize.headers["location"]).query.decode()
    done = await dash.client.get(f"/oauth/callback?{query}")
    cookie = [v for k, v in done.headers.multi_items() if k == "set-cookie" and SESSION_COOKIE in v]
    assert cookie and "HttpOnly" in cookie[0] and "SameSite=lax" in cookie[0]
    assert "Secure" not in cookie[0]  # plain http here; https requests get Secure
    value = dash.client.cookies[SESSION_COOKIE]
    assert "ghu_" not in value and "mona" not in value  # sealed, not just signed
    assert Sealer(SESSION_SECRET).open(SESSION_COOKIE, value)["login"] == "mona"
    # A changed byte, or a key from another secret, opens nothing.
    tampered = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    assert Sealer(SESSION_SECRET).open(SESSION_COOKIE, tampered) is None
    assert Sealer("x" * 40).open(SESSION_COOKIE, value) is None
    dash.client.cookies.set(SESSION_COOKIE, tampered)
    assert 'href="/login"' in (await dash.client.get("/")).text


async def test_a_callback_the_browser_did_not_start_is_refused(dash: Dash) -> None:
    dash.fake.sign_in_as(login="mona")
    start = await dash.client.get("/login")
    authorize = await dash.github.get(start.headers["location"])
    code = httpx.URL(authorize.headers["location"]).params["code"]
    dash.client.cookies.clear()
    forged = await dash.client.get(f"/oauth/callback?code={code}&state=guessed")
    assert forged.status_code == 401
    assert SESSION_COOKIE not in dash.client.cookies


async def test_a_revoked_token_signs_the_person_out(dash: Dash) -> None:
    await dash.sign_in_as("mona")
    dash.fake.tokens.clear()
    page = await dash.client.get("/repos/acme/docs")
    assert page.status_code == 401 and "expired" in page.text


async def test_logout_needs_the_csrf_token(dash: Dash) -> None:
    await dash.sign_in_as("mona")
    csrf = await dash.csrf()
    assert (await dash.client.post("/logout", data={"csrf": "nope"})).status_code == 403
    done = await dash.client.post("/logout", data={"csrf": csrf})
    assert done.status_code == 303
    assert 'href="/login"' in (await dash.client.get("/")).text


async def test_form_bodies_are_capped_before_any_page_runs(dash: Dash) -> None:
    await dash.sign_in_as("mona")
    big = await dash.client.post("/repos/acme/web/pause", content=b"csrf=" + b"a" * 5000)
    assert big.status_code == 413


async def test_without_sign_in_configured_pages_say_so_and_the_api_is_unchanged(
    sqlite_url: str, redis_url: str
) -> None:
    settings = load_settings(
        {"DATABASE_URL": sqlite_url, "REDIS_URL": redis_url, "API_TOKENS": "t"}
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        for method, path in [
            ("GET", "/"),
            ("GET", "/login"),
            ("GET", "/oauth/callback?code=x&state=y"),
            ("GET", "/repos/acme/web"),
            ("POST", "/repos/acme/web/pause"),
        ]:
            page = await client.request(method, path)
            assert page.status_code == 503, path
            assert "GITHUB_OAUTH_CLIENT_ID" in page.text
        api = await client.get("/api/v1/repos", headers={"Authorization": "Bearer t"})
        assert api.status_code == 200
        assert (await client.get("/api/v1/repos")).status_code == 401


async def test_a_freeze_shows_next_to_the_paused_state_with_its_reason(dash: Dash) -> None:
    await dash.sign_in_as("mona")
    database = create_database(dash.database_url)
    try:
        async with database.sessions() as session, session.begin():
            repository = await session.scalar(select(Repository).where(Repository.name == "web"))
            assert repository is not None
            repository.frozen_reason = "release <2.0> & friends"
            repository.frozen_until = datetime(2999, 1, 1, 12, 30, tzinfo=UTC)
            docs = await session.scalar(select(Repository).where(Repository.name == "docs"))
            assert docs is not None
            # Set, but not holding yet: not shown as frozen.
            docs.frozen_reason = "later"
            docs.frozen_from = datetime(2999, 1, 1, tzinfo=UTC)
    finally:
        await database.dispose()
    page = (await dash.client.get("/repos/acme/web")).text
    assert '<span class="badge paused frozen">Frozen</span>' in page
    # Escaped like every other text on the page.
    assert '<span id="freeze-reason">release &lt;2.0&gt; &amp; friends</span>' in page
    assert "until <time" in page and "2999-01-01 12:30 UTC" in page
    assert "Running</span>" not in page
    index = (await dash.client.get("/")).text
    assert index.count("badge paused frozen") == 1
    assert "release &lt;2.0&gt; &amp; friends" in index


async def test_a_freeze_on_one_base_branch_names_the_branch(dash: Dash) -> None:
    await dash.sign_in_as("mona")
    database = create_database(dash.database_url)
    try:
        async with database.sessions() as session, session.begin():
            repository = await session.scalar(select(Repository).where(Repository.name == "web"))
            assert repository is not None
            repository.frozen_reason = "release 2.0"
            repository.frozen_branch = "release/<2.0>"
    finally:
        await database.dispose()
    page = (await dash.client.get("/repos/acme/web")).text
    assert 'nothing lands on <code id="freeze-branch">release/&lt;2.0&gt;</code>' in page
    index = (await dash.client.get("/")).text
    assert "release/&lt;2.0&gt;: release 2.0" in index
    assert "Frozen" not in (await dash.client.get("/repos/acme/docs")).text
