"""What the dashboard shows, read from the database in a few queries per page."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mergequeue import reads
from mergequeue.models import (
    Build,
    BuildState,
    PullRequest,
    QueueEntry,
    QueueEntryState,
    Repository,
)
from mergequeue.queue.effective import repository_frozen

# How far back the charts look, and how many past stays the history lists.
CHART_DAYS = 14
HISTORY_ROWS = 30
# Queue depth is sampled this often over the chart's days.
DEPTH_STEP = timedelta(hours=2)


@dataclass(frozen=True)
class RepositorySummary:
    repository: Repository
    queued: int
    oldest_enqueued_at: datetime | None
    last_landed_at: datetime | None
    # Why a freeze holds every landing now; None: not frozen.
    frozen: str | None = None


@dataclass(frozen=True)
class BuildRow:
    branch: str
    state: str
    members: list[int]
    created_at: datetime


@dataclass(frozen=True)
class HistoryRow:
    number: int
    title: str
    base_ref: str
    state: str  # merged / dequeued
    reason: str | None
    enqueued_at: datetime
    finished_at: datetime


@dataclass(frozen=True)
class DailyMerge:
    day: date
    merged: int
    median_minutes: float | None


@dataclass(frozen=True)
class DepthPoint:
    at: datetime
    depth: int


@dataclass
class BaseQueue:
    base_ref: str
    entries: list[reads.QueuedPullRequest] = field(default_factory=list)
    builds: list[BuildRow] = field(default_factory=list)


@dataclass(frozen=True)
class RepositoryPage:
    repository: Repository
    queues: list[BaseQueue]
    history: list[HistoryRow]
    merges_by_day: list[DailyMerge]
    depth: list[DepthPoint]
    # Why a freeze holds every landing now; None: not frozen.
    frozen: str | None = None


async def summaries(
    *, session: AsyncSession, repositories: Sequence[Repository]
) -> list[RepositorySummary]:
    ids = [r.id for r in repositories]
    if not ids:
        return []
    live = await session.execute(
        select(QueueEntry.repository_id, func.count(), func.min(QueueEntry.enqueued_at))
        .where(QueueEntry.repository_id.in_(ids), QueueEntry.state == QueueEntryState.QUEUED)
        .group_by(QueueEntry.repository_id)
    )
    counts = {rid: (n, oldest) for rid, n, oldest in live.all()}
    landed = await session.execute(
        select(QueueEntry.repository_id, func.max(QueueEntry.finished_at))
        .where(QueueEntry.repository_id.in_(ids), QueueEntry.state == QueueEntryState.MERGED)
        .group_by(QueueEntry.repository_id)
    )
    last = dict(landed.all())
    now = datetime.now(UTC)
    return [
        RepositorySummary(
            repository=r,
            queued=counts.get(r.id, (0, None))[0],
            oldest_enqueued_at=_utc(counts.get(r.id, (0, None))[1]),
            last_landed_at=_utc(last.get(r.id)),
            frozen=repository_frozen(r, now),
        )
        for r in repositories
    ]


async def repository_page(
    *, session: AsyncSession, repository: Repository, now: datetime
) -> RepositoryPage:
    queues: dict[str, BaseQueue] = {}
    for entry in await reads.read_queue(session=session, repository=repository):
        queues.setdefault(entry.base_ref, BaseQueue(entry.base_ref)).entries.append(entry)
    builds = await session.scalars(
        select(Build)
        .where(
            Build.repository_id == repository.id,
            Build.state.in_([BuildState.MAKING, BuildState.TESTING]),
        )
        .order_by(Build.base_ref, Build.id)
    )
    for build in builds:
        queues.setdefault(build.base_ref, BaseQueue(build.base_ref)).builds.append(
            BuildRow(
                branch=build.branch,
                state=build.state.value,
                members=[int(member[0]) for member in build.members],
                created_at=_utc(build.created_at) or now,
            )
        )
    ordered = sorted(
        queues.values(), key=lambda q: (q.base_ref != repository.default_branch, q.base_ref)
    )
    return RepositoryPage(
        repository=repository,
        queues=ordered,
        history=await _history(session, repository),
        merges_by_day=await _merges_by_day(session, repository, now),
        depth=await _depth(session, repository, now),
        frozen=repository_frozen(repository, now),
    )


async def _history(session: AsyncSession, repository: Repository) -> list[HistoryRow]:
    rows = await session.execute(
        select(QueueEntry, PullRequest.number, PullRequest.title)
        .join(PullRequest, QueueEntry.pull_request_id == PullRequest.id)
        .where(
            QueueEntry.repository_id == repository.id,
            QueueEntry.state != QueueEntryState.QUEUED,
            QueueEntry.finished_at.is_not(None),
        )
        .order_by(QueueEntry.finished_at.desc(), QueueEntry.id.desc())
        .limit(HISTORY_ROWS)
    )
    history = []
    for entry, number, title in rows.all():
        finished = _utc(entry.finished_at)
        assert finished is not None
        history.append(
            HistoryRow(
                number=number,
                title=title,
                base_ref=entry.base_ref,
                state=entry.state.value,
                reason=entry.dequeue_reason,
                enqueued_at=_utc(entry.enqueued_at) or finished,
                finished_at=finished,
            )
        )
    return history


def _chart_days(now: datetime) -> list[date]:
    today = now.astimezone(UTC).date()
    return [today - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]


async def _merges_by_day(
    session: AsyncSession, repository: Repository, now: datetime
) -> list[DailyMerge]:
    days = _chart_days(now)
    since = datetime.combine(days[0], datetime.min.time(), UTC)
    rows = await session.execute(
        select(QueueEntry.enqueued_at, QueueEntry.finished_at).where(
            QueueEntry.repository_id == repository.id,
            QueueEntry.state == QueueEntryState.MERGED,
            QueueEntry.finished_at >= since,
        )
    )
    waits: dict[date, list[float]] = {day: [] for day in days}
    for enqueued, finished in rows.all():
        start, end = _utc(enqueued), _utc(finished)
        if start is None or end is None or end.date() not in waits:
            continue
        waits[end.date()].append(max(0.0, (end - start).total_seconds() / 60))
    return [
        DailyMerge(day, len(w), statistics.median(w) if w else None) for day, w in waits.items()
    ]


async def _depth(session: AsyncSession, repository: Repository, now: datetime) -> list[DepthPoint]:
    """How many pull requests were queued at each step of the chart's days."""
    since = datetime.combine(_chart_days(now)[0], datetime.min.time(), UTC)
    rows = await session.execute(
        select(QueueEntry.enqueued_at, QueueEntry.finished_at).where(
            QueueEntry.repository_id == repository.id,
            (QueueEntry.finished_at.is_(None)) | (QueueEntry.finished_at >= since),
            QueueEntry.enqueued_at <= now,
        )
    )
    # +1 when a stay starts, -1 when it ends; a sweep over the sample times.
    events: list[tuple[datetime, int]] = []
    for enqueued, finished in rows.all():
        start, end = _utc(enqueued), _utc(finished)
        if start is None:
            continue
        events.append((start, 1))
        if end is not None:
            events.append((end, -1))
    events.sort(key=lambda e: (e[0], e[1]))
    points: list[DepthPoint] = []
    depth, index, at = 0, 0, since
    while at <= now:
        while index < len(events) and events[index][0] <= at:
            depth += events[index][1]
            index += 1
        points.append(DepthPoint(at, depth))
        at += DEPTH_STEP
    while index < len(events) and events[index][0] <= now:
        depth += events[index][1]
        index += 1
    points.append(DepthPoint(now, depth))
    return points


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
