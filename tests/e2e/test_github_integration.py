"""The worker calls GitHub as an App, instrumented, and waits out rate limits."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
from sqlalchemy import select

from mergequeue.models import DeliveryState, Repository, WebhookDelivery
from tests.e2e.conftest import StartWeb, StartWorker
from tests.support import webhooks
from tests.support.db import rows
from tests.support.fake_github import FakeGitHubServer, fake_github  # noqa: F401 (fixture)
from tests.support.metrics import value

INSTALLATION = 957387
TOKENS = "/app/installations/{installation_id}/access_tokens"
REPOS = "/installation/repositories"


def _wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def _processed(url: str, delivery: str) -> bool:
    found = rows(url, select(WebhookDelivery.state).where(WebhookDelivery.id == delivery))
    return bool(found) and found[0][0] == DeliveryState.PROCESSED


def _setup(fake: FakeGitHubServer) -> None:
    fake.control("add_repo", full_name="Codertocat/Hello-World", default_branch="trunk")
    fake.control("add_repo", full_name="Codertocat/Space", default_branch="develop")
    fake.control(
        "add_installation",
        installation_id=INSTALLATION,
        account="Codertocat",
        repositories=["Codertocat/Hello-World", "Codertocat/Space"],
    )


def test_worker_syncs_repositories_as_the_app_reusing_its_installation_token(
    start_web: StartWeb,
    start_worker: StartWorker,
    database_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,  # noqa: F811
) -> None:
    _setup(fake_github)
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, **fake_github.app_env()}
    web = start_web(GITHUB_WEBHOOK_SECRET=webhooks.SECRET, **env)
    worker = start_worker(**env)

    for name in ("installation.created", "installation_repositories.added"):
        delivery = str(uuid.uuid4())
        response = webhooks.deliver(
            web.url, webhooks.event_of(name), webhooks.fixture(name), delivery
        )
        assert response.status_code == 202
        _wait_for(lambda d=delivery: _processed(database_url, d))  # type: ignore[misc]
        calls_before = len(fake_github.calls(REPOS))
        _wait_for(lambda n=calls_before: len(fake_github.calls(REPOS)) >= max(n, 1))

    _wait_for(lambda: len(fake_github.calls(REPOS)) == 2)
    # Default branches come from the API (webhook payloads do not carry them).
    _wait_for(
        lambda: (
            {r[0].name: r[0].default_branch for r in rows(database_url, select(Repository))}
            == {"Hello-World": "trunk", "Space": "develop"}
        )
    )
    # Two syncs, one installation token: minted once, then reused.
    assert len(fake_github.calls(TOKENS, "POST")) == 1
    # ...and both listings used that one installation token, not the App's JWT.
    listings = fake_github.calls(REPOS)
    assert len({c["authorization"] for c in listings}) == 1
    assert all(c["jwt_claims"] is None for c in listings)
    # The second listing is a conditional request: unchanged, so a free 304.
    assert [c["status"] for c in listings] == [200, 304]

    text = httpx.get(worker.metrics_url).text
    for status in ("200", "304"):
        assert (
            value(
                text, "github_api_call_latency_count", method="GET", endpoint=REPOS, status=status
            )
            == 1
        )
    assert (
        value(text, "github_api_call_latency_count", method="POST", endpoint=TOKENS, status="201")
        == 1
    )
    assert value(text, "mergequeue_github_rate_limit_remaining", installation=str(INSTALLATION))


def test_a_rate_limited_sync_is_deferred_until_the_limit_resets(
    start_web: StartWeb,
    start_worker: StartWorker,
    sqlite_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,  # noqa: F811
) -> None:
    _setup(fake_github)
    env = {"DATABASE_URL": sqlite_url, "REDIS_URL": redis_url, **fake_github.app_env()}
    web = start_web(GITHUB_WEBHOOK_SECRET=webhooks.SECRET, **env)
    worker = start_worker(**env)
    reset_at = int(time.time()) + 4
    fake_github.control("rate_limit_primary", until=reset_at, installation_id=INSTALLATION)

    response = webhooks.deliver(web.url, "installation", webhooks.fixture("installation.created"))
    assert response.status_code == 202

    def synced() -> bool:
        return any(c["status"] == 200 for c in fake_github.calls(REPOS))

    _wait_for(synced, timeout=30)
    refused = [c for c in fake_github.calls(REPOS) if c["status"] == 403]
    succeeded = [c for c in fake_github.calls(REPOS) if c["status"] == 200]
    # Deferred, not hammered: one refusal, then nothing until the reset, then success.
    assert len(refused) == 1
    assert min(c["at"] for c in succeeded) >= reset_at
    text = httpx.get(worker.metrics_url).text
    assert value(text, "arq_jobs_total", function="sync_repositories", outcome="retry") == 1
    assert value(text, "arq_jobs_total", function="sync_repositories", outcome="success") == 1
    assert (
        value(text, "github_api_call_latency_count", method="GET", endpoint=REPOS, status="403")
        == 1
    )
