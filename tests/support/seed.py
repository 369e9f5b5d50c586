"""Putting repositories, pull requests and queue entries in a test database."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mergequeue.db import create_database
from mergequeue.models import (
    PullRequest,
    PullRequestState,
    QueueEntry,
    QueueEntryState,
    Repository,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Pull:
    number: int
    queued: bool = False
    state: PullRequestState = PullRequestState.OPEN
    base_ref: str = "main"


async def _seed(
    url: str, repository: Repository, pulls: Sequence[Pull], queued_from: datetime
) -> None:
    database = create_database(url)
    try:
        async with database.sessions() as session, session.begin():
            session.add(repository)
            await session.flush()
            for i, pull in enumerate(pulls):
                pr = PullRequest(
                    repository_id=repository.id,
                    number=pull.number,
                    title=f"PR {pull.number}",
                    author=f"dev{pull.number}",
                    head_sha=f"{pull.number:040x}",
                    base_ref=pull.base_ref,
                    state=pull.state,
                    labels=[],
                )
                session.add(pr)
                await session.flush()
                if pull.queued:
                    session.add(
                        QueueEntry(
                            repository_id=repository.id,
                            pull_request_id=pr.id,
                            base_ref=pull.base_ref,
                            state=QueueEntryState.QUEUED,
                            status="waiting",
                            enqueued_at=queued_from + timedelta(minutes=i),
                        )
                    )
    finally:
        await database.dispose()


def seed(
    url: str,
    *,
    repo_id: int,
    owner: str,
    name: str,
    pulls: Sequence[Pull] = (),
    paused: bool = False,
    merge_method: str | None = None,
    queued_from: datetime = START,
) -> None:
    repository = Repository(
        id=repo_id,
        owner=owner,
        name=name,
        default_branch="main",
        paused=paused,
        merge_method=merge_method,
    )
    asyncio.run(_seed(url, repository, pulls, queued_from))
