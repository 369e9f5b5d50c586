"""7. Dashboard pages: server time to render them with 50 repositories and 500 entries.

In process, as a request would be served: the real app (`create_app`) on a fresh
PostgreSQL database, through httpx's ASGI transport, signed in as a user of the fake
GitHub (in process too) who may read every repository. The pages: `/` (all 50
repositories, their queue counts and last landings) and the busiest repository's page
(its queue, builds in flight, history and both charts). Each page is rendered `rounds`
times after one warm-up; the permission answers are then in the session's cache (60 s),
as for anyone clicking around, so the times are the server's own work. The first visit,
which asks GitHub about every repository, is reported too.

`seed` also fills the databases of the dashboard's tests and screenshots.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from bench.plan import Plan
from bench.report import Row, median, percentile
from bench.services import Services
from mergequeue.db import create_database
from mergequeue.models import (
    Build,
    BuildState,
    PullRequest,
    PullRequestState,
    QueueEntry,
    QueueEntryState,
    Repository,
)
from mergequeue.settings import load_settings

SCENARIO = "7 dashboard"
REPOSITORIES = 50
ENTRIES = 500
BAR_MS = 200.0
CLIENT_ID = "Iv1.benchdashboard"
CLIENT_SECRET = "bench-oauth-client-secret"
SESSION_SECRET = "bench-session-secret-of-at-least-32-characters"
VIEWER = "mona"

TITLES = [
    "Retry flaky network calls in the sync job",
    "Add pagination to the audit log API",
    "Bump the base image to bookworm",
    "Speed up the import of large CSV files",
    "Fix a race in the cache invalidation",
    "Document the release process",
    "Show the build number in the footer",
    "Drop support for the v1 webhooks",
    "Make the retry budget configurable",
    "Tidy up the settings page",
]
STATUSES = [
    ("waiting_for_checks", "ci/build and ci/test pending"),
    ("waiting", None),
    ("updating", "updating the branch with main"),
    ("waiting", None),
]
REASONS = ["check_failed", "conflict", "ci_timeout", "unlabeled", "dashboard", "closed"]


async def seed(
    session: AsyncSession,
    *,
    repositories: int = REPOSITORIES,
    entries: int = ENTRIES,
    now: datetime | None = None,
    owner: str = "acme",
    names: list[str] | None = None,
    seed_value: int = 7,
) -> list[Repository]:
    """Repositories with queues and 14 days of history; the first one gets half of the
    entries (the busiest page), the others share the rest. A third of each repository's
    entries are queued (parallel mode's first repository has builds in flight), the rest
    landed or were dequeued over the last 14 days."""
    rng = random.Random(seed_value)
    now = now or datetime.now(UTC)
    made: list[Repository] = []
    shares = [entries // 2] + [0] * (repositories - 1)
    for i in range(entries - entries // 2):
        shares[1 + i % max(1, repositories - 1) if repositories > 1 else 0] += 1
    for index in range(repositories):
        name = names[index] if names and index < len(names) else f"service-{index:02d}"
        repository = Repository(
            id=10_000 + index,
            owner=owner,
            name=name,
            default_branch="main",
            paused=index % 7 == 3,
            queue_mode="parallel" if index == 0 else None,
        )
        session.add(repository)
        made.append(repository)
        await session.flush()
        count = shares[index]
        queued = max(1, count // 3) if count else 0
        for n in range(count):
            number = 100 + n
            live = n >= count - queued
            pr = PullRequest(
                repository_id=repository.id,
                number=number,
                title=TITLES[(n + index) % len(TITLES)],
                author=rng.choice(["mona", "hubot", "octocat", "lea", "sam"]),
                head_sha=f"{index:04x}{number:036x}",
                base_ref="main" if n % 9 else "release",
                state=PullRequestState.OPEN if live else PullRequestState.MERGED,
                labels=["mergequeue"] if live else [],
            )
            session.add(pr)
            await session.flush()
            if live:
                position = n - (count - queued)
                enqueued = now - timedelta(minutes=5 + 7 * (queued - position))
                status, detail = STATUSES[position % len(STATUSES)]
                session.add(
                    QueueEntry(
                        repository_id=repository.id,
                        pull_request_id=pr.id,
                        base_ref=pr.base_ref,
                        state=QueueEntryState.QUEUED,
                        status=status,
                        status_detail=detail,
                        enqueued_at=enqueued,
                        status_changed_at=enqueued,
                        enqueued_by=pr.author,
                    )
                )
                continue
            finished = now - timedelta(minutes=rng.uniform(30, 14 * 24 * 60 - 60))
            waited = timedelta(minutes=rng.lognormvariate(3.3, 0.6))
            merged = rng.random() < 0.8
            session.add(
                QueueEntry(
                    repository_id=repository.id,
                    pull_request_id=pr.id,
                    base_ref=pr.base_ref,
                    state=QueueEntryState.MERGED if merged else QueueEntryState.DEQUEUED,
                    status="merged" if merged else "dequeued",
                    dequeue_reason=None if merged else rng.choice(REASONS),
                    enqueued_at=finished - waited,
                    status_changed_at=finished,
                    finished_at=finished,
                )
            )
        if index == 0 and queued >= 4:
            for b in range(2):
                session.add(
                    Build(
                        repository_id=repository.id,
                        base_ref="main",
                        branch=f"mergequeue/main/{b + 1}",
                        state=BuildState.TESTING,
                        members=[[100 + count - queued + 2 * b + k, "0" * 40] for k in range(2)],
                        parent_sha="0" * 40,
                        sha=f"{b:040x}",
                        created_at=now - timedelta(minutes=4 - b),
                    )
                )
    await session.flush()
    return made


def dashboard_settings(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "GITHUB_API_URL": "http://fake-github.invalid",
        "GITHUB_OAUTH_CLIENT_ID": CLIENT_ID,
        "GITHUB_OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        "SESSION_SECRET": SESSION_SECRET,
        "LOG_LEVEL": "WARNING",
    }


async def sign_in(client: httpx.AsyncClient, github: httpx.AsyncClient) -> None:
    """The OAuth web flow through the app and the fake, leaving the session cookie in
    `client`."""
    start = await client.get("/login")
    authorize = await github.get(start.headers["location"])
    callback = httpx.URL(authorize.headers["location"])
    done = await client.get(f"/oauth/callback?{callback.query.decode()}")
    if done.status_code != 303:
        raise RuntimeError(f"sign-in failed: {done.status_code} {done.text[:200]}")


async def measure(database_url: str, redis_url: str, rounds: int) -> dict[str, list[float]]:
    from api.app import create_app
    from tests.fakegithub import FakeGitHub

    now = datetime.now(UTC)
    database = create_database(database_url)
    try:
        async with database.sessions() as session, session.begin():
            repositories = await seed(session, now=now)
    finally:
        await database.dispose()
    fake = FakeGitHub()
    fake.set_oauth_app(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        callback_url="http://dashboard.invalid/oauth/callback",
    )
    for repository in repositories:
        fake.add_repo(full_name=repository.full_name, private=True)
        fake.set_permission(full_name=repository.full_name, username=VIEWER, role_name="write")
    fake.sign_in_as(login=VIEWER)
    github_transport = httpx.ASGITransport(app=fake.asgi)
    app = create_app(
        load_settings(dashboard_settings(database_url, redis_url)),
        github_transport=github_transport,
    )
    times: dict[str, list[float]] = {"index, first visit": [], "index": [], "repository": []}
    busiest = f"/repos/{repositories[0].owner}/{repositories[0].name}"
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://dashboard.invalid"
        ) as client,
        httpx.AsyncClient(transport=github_transport, base_url="http://fake-github.invalid") as gh,
    ):
        await sign_in(client, gh)

        async def timed(path: str) -> float:
            started = time.perf_counter()
            response = await client.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
            return elapsed

        times["index, first visit"].append(await timed("/"))
        await timed(busiest)
        for _ in range(rounds):
            times["index"].append(await timed("/"))
            times["repository"].append(await timed(busiest))
    return times


def run(services: Services, plan: Plan) -> list[Row]:
    rounds = 200 if plan.rounds > 1 else 10
    times = asyncio.run(measure(services.postgres_url(), services.redis_url(), rounds))
    rows = [
        Row(
            SCENARIO,
            "first visit of / (asks GitHub about 50 repositories, in-process fake)",
            f"{times['index, first visit'][0]:.0f} ms",
            "",
            None,
            "permission answers then cached 60 s per session",
        )
    ]
    for page, label in (("index", "/ (50 repositories)"), ("repository", "busiest repository")):
        values = times[page]
        worst = max(values)
        rows.append(
            Row(
                SCENARIO,
                f"server time of {label}, max of {len(values)}",
                f"{worst:.1f} ms",
                f"< {BAR_MS:.0f} ms",
                worst < BAR_MS,
                f"p50 {median(values):.1f} ms, p99 {percentile(values, 99):.1f} ms; "
                f"{REPOSITORIES} repositories, {ENTRIES} entries",
            )
        )
    return rows
