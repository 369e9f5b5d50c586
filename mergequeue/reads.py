"""Read-side domain functions used by the APIs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mergequeue.models import Installation, PullRequest, QueueEntry, QueueEntryState, Repository


@dataclass(frozen=True)
class QueuedPullRequest:
    position: int
    number: int
    title: str
    author: str
    base_ref: str
    head_sha: str
    status: str
    status_detail: str | None
    enqueued_at: datetime
    # "urgent" (queued ahead of every normal entry) or "normal".
    priority: str = "normal"


async def list_repositories(*, session: AsyncSession) -> Sequence[Repository]:
    result = await session.scalars(select(Repository).order_by(Repository.owner, Repository.name))
    return result.all()


async def find_repository(*, session: AsyncSession, owner: str, name: str) -> Repository | None:
    return await session.scalar(
        select(Repository).where(Repository.owner == owner, Repository.name == name)
    )


async def repository_installation(
    *, session: AsyncSession, repository: Repository
) -> Installation | None:
    """The installation the repository belongs to (what it granted); None when not known."""
    if repository.installation_id is None:
        return None
    return await session.get(Installation, repository.installation_id)


async def read_queue(*, session: AsyncSession, repository: Repository) -> list[QueuedPullRequest]:
    """The live queue in merge order: per base branch, urgent entries first, then first
    in first out (the engine's order, `queue.store.SqlQueueStore.queued`)."""
    rows = await session.execute(
        select(QueueEntry, PullRequest)
        .join(PullRequest, QueueEntry.pull_request_id == PullRequest.id)
        .where(
            QueueEntry.repository_id == repository.id,
            QueueEntry.state == QueueEntryState.QUEUED,
        )
        .order_by(
            QueueEntry.base_ref, QueueEntry.priority.desc(), QueueEntry.enqueued_at, QueueEntry.id
        )
    )
    queue: list[QueuedPullRequest] = []
    positions: dict[str, int] = {}
    for entry, pr in rows.all():
        positions[entry.base_ref] = positions.get(entry.base_ref, 0) + 1
        queue.append(
            QueuedPullRequest(
                position=positions[entry.base_ref],
                number=pr.number,
                title=pr.title,
                author=pr.author,
                base_ref=entry.base_ref,
                head_sha=pr.head_sha,
                status=entry.status,
                status_detail=entry.status_detail,
                enqueued_at=entry.enqueued_at,
                priority="urgent" if entry.priority > 0 else "normal",
            )
        )
    return queue
