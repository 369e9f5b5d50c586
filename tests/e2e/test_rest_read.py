"""The read-only REST endpoints over the database, on the real web process."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from mergequeue.db import create_database
from mergequeue.models import PullRequest, QueueEntry, QueueEntryState, Repository
from tests.e2e.conftest import StartWeb

TOKEN = "rest-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _seed(url: str) -> None:
    database = create_database(url)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with database.sessions() as session, session.begin():
        session.add(Repository(id=1, owner="acme", name="widgets", default_branch="main"))
        session.add(
            Repository(id=2, owner="acme", name="gadgets", merge_method="rebase", paused=True)
        )
        for i, number in enumerate([12, 7, 30]):
            pr = PullRequest(
                repository_id=1,
                number=number,
                title=f"PR {number}",
                head_sha=f"{number:040x}",
                base_ref="main",
            )
            session.add(pr)
            await session.flush()
            session.add(
                QueueEntry(
                    repository_id=1,
                    pull_request_id=pr.id,
                    base_ref="main",
                    enqueued_at=start + timedelta(minutes=i),
                    state=QueueEntryState.DEQUEUED if number == 30 else QueueEntryState.QUEUED,
                )
            )
    await database.dispose()


def test_list_repositories_and_read_a_queue_in_order(
    start_web: StartWeb, database_url: str
) -> None:
    asyncio.run(_seed(database_url))
    web = start_web(DATABASE_URL=database_url, API_TOKENS=f"other,{TOKEN}", MERGE_METHOD="merge")
    repos = web.get("/api/v1/repos", headers=AUTH).json()
    assert [(r["full_name"], r["merge_method"], r["paused"]) for r in repos] == [
        ("acme/gadgets", "rebase", True),
        ("acme/widgets", "merge", False),
    ]
    queue = web.get("/api/v1/repos/acme/widgets/queue", headers=AUTH).json()
    assert [(e["position"], e["number"]) for e in queue["entries"]] == [(1, 12), (2, 7)]


def test_api_requires_a_valid_bearer_token(start_web: StartWeb, sqlite_url: str) -> None:
    web = start_web(DATABASE_URL=sqlite_url, API_TOKENS=TOKEN)
    assert web.get("/api/v1/repos").status_code == 401
    wrong = web.get("/api/v1/repos", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert set(wrong.json()) == {"detail"}
    unconfigured = start_web(DATABASE_URL=sqlite_url)
    assert unconfigured.get("/api/v1/repos", headers=AUTH).status_code == 401


def test_unknown_repository_is_404_json(start_web: StartWeb, sqlite_url: str) -> None:
    web = start_web(DATABASE_URL=sqlite_url, API_TOKENS=TOKEN)
    response = web.get("/api/v1/repos/acme/nothing/queue", headers=AUTH)
    assert response.status_code == 404
    assert response.json() == {"detail": "repository acme/nothing is not known"}


def test_openapi_document_describes_the_api(start_web: StartWeb, sqlite_url: str) -> None:
    web = start_web(DATABASE_URL=sqlite_url)
    paths = web.get("/openapi.json").json()["paths"]
    assert {"/api/v1/repos", "/api/v1/repos/{owner}/{repo}/queue"} <= set(paths)
    assert "/debug/metrics" not in paths
