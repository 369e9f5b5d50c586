"""What the engine reads and writes of the queue's own state, as a Protocol.

`SqlQueueStore` is the database (one session per evaluation); the simulation keeps the
same objects in memory (tests/queue/memory.py), so the engine runs unchanged on both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Protocol

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from mergequeue.models import (
    Build,
    BuildState,
    CheckFlake,
    DeliveryState,
    HandledCommand,
    Notice,
    NoticeKind,
    Notification,
    PullRequest,
    QueueEntry,
    QueueEntryState,
    Repository,
    WebhookDelivery,
    utcnow,
)
from mergequeue.notifications import outbox
from mergequeue.queue import commands, notices
from mergequeue.queue.sizing import FAILED_OUTCOMES, PASSED_OUTCOMES, Measured, measured
from mergequeue.upsert import insert_ignore

# The events that can queue a pull request (a label, a command): only these hold a head.
QUEUEING_EVENTS: Final = ("pull_request", "issue_comment")
ACTIVE_BUILD_STATES: Final = (BuildState.MAKING, BuildState.TESTING)


class QueueStore(Protocol):
    async def queued(self, repository_id: int) -> list[tuple[QueueEntry, int]]:
        """Live entries with their pull request's number, per base branch in queue order."""
        ...

    async def earlier_delivery_pending(self, full_name: str, before: datetime) -> bool:
        """Whether the inbox holds a delivery for the repository, received before `before`,
        that is not applied yet and may queue something ahead (a label, a command)."""
        ...

    async def add_notice(self, notice: Notice) -> None:
        """Record something to tell GitHub; a notice whose key exists already is ignored."""
        ...

    async def add_notification(self, notification: Notification) -> None:
        """Record something to tell a chat (the notifications outbox); one whose key and
        destination exist already is ignored."""
        ...

    async def owed_unlabels(self, repository_id: int) -> set[int]:
        """Pull requests whose queue label the queue has yet to remove."""
        ...

    async def enqueue(
        self, repository: Repository, number: int, *, by: str, at: datetime, priority: int = 0
    ) -> bool:
        """Queue a pull request; False when it is queued already or not open."""
        ...

    async def prioritize(self, repository: Repository, number: int, priority: int) -> bool:
        """Set a queued pull request's priority (1: urgent); False when it is not queued."""
        ...

    async def dequeue(
        self, repository: Repository, number: int, *, reason: str, remove_label: str | None
    ) -> bool:
        """Take a pull request out of the queue; False when it is not queued."""
        ...

    async def leave_closed(self, repository: Repository, number: int, *, merged: bool) -> None:
        """A pull request closed or merged on GitHub leaves the queue (if it is in it)."""
        ...

    async def pending_notices(self, repository_id: int) -> list[Notice]: ...

    async def claim_command(self, comment_id: int, repository_id: int) -> bool:
        """Mark a command comment handled; False when it was handled before."""
        ...

    async def handled_commands(self, comment_ids: list[int]) -> set[int]:
        """Which of these command comments were handled already."""
        ...

    async def active_builds(self, repository_id: int, base_ref: str | None = None) -> list[Build]:
        """Parallel mode's builds being made or tested on `base_ref` (None: on any base
        branch), oldest (first in the chain) first."""
        ...

    async def add_build(self, build: Build) -> None:
        """Store a new build; its id is set on return."""
        ...

    async def landed_builds_since(
        self, repository_id: int, base_ref: str, since: datetime
    ) -> list[Build]:
        """Builds that landed on `base_ref` since `since`, oldest first."""
        ...

    async def finished_since(
        self, repository_id: int, since: datetime
    ) -> list[tuple[QueueEntry, int]]:
        """Stays that ended (merged or dequeued) since `since`, with their numbers."""
        ...

    async def landing_times(self, repository_id: int, since: datetime) -> list[datetime]:
        """When the queue merged pull requests since `since`."""
        ...

    async def count_check_failures(
        self, repository_id: int, names: tuple[str, ...], *, contradicted: bool
    ) -> None:
        """Count a staging build's failed checks; `contradicted`: a later build holding
        the same changes passed (the failures were flaky)."""
        ...

    async def build_stats(self, repository_id: int, since: datetime) -> Measured:
        """What the repository's staging builds and queue measured since `since`."""
        ...

    async def commit(self) -> None: ...


class SqlQueueStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def queued(self, repository_id: int) -> list[tuple[QueueEntry, int]]:
        rows = await self.session.execute(
            select(QueueEntry, PullRequest.number)
            .join(PullRequest, QueueEntry.pull_request_id == PullRequest.id)
            .where(
                QueueEntry.repository_id == repository_id,
                QueueEntry.state == QueueEntryState.QUEUED,
            )
            .order_by(
                QueueEntry.base_ref,
                QueueEntry.priority.desc(),
                QueueEntry.enqueued_at,
                QueueEntry.id,
            )
        )
        return [(entry, number) for entry, number in rows.tuples()]

    async def earlier_delivery_pending(self, full_name: str, before: datetime) -> bool:
        found = await self.session.scalar(
            select(
                exists().where(
                    WebhookDelivery.state == DeliveryState.RECEIVED,
                    WebhookDelivery.repository_full_name == full_name,
                    WebhookDelivery.received_at < before,
                    WebhookDelivery.event.in_(QUEUEING_EVENTS),
                )
            )
        )
        return bool(found)

    async def add_notice(self, notice: Notice) -> None:
        await notices.add(self.session, notice)

    async def add_notification(self, notification: Notification) -> None:
        await outbox.add(self.session, notification)

    async def owed_unlabels(self, repository_id: int) -> set[int]:
        found = await self.session.scalars(
            select(Notice.number).where(
                Notice.repository_id == repository_id,
                Notice.kind == NoticeKind.REMOVE_LABEL,
                Notice.sent_at.is_(None),
            )
        )
        return set(found.all())

    async def enqueue(
        self, repository: Repository, number: int, *, by: str, at: datetime, priority: int = 0
    ) -> bool:
        try:
            entry = await commands.enqueue(
                session=self.session, repository=repository, number=number, by=by, at=at
            )
        except commands.QueueError:
            return False
        entry.priority = priority
        return True

    async def prioritize(self, repository: Repository, number: int, priority: int) -> bool:
        entry = await self.session.scalar(
            select(QueueEntry)
            .join(PullRequest, QueueEntry.pull_request_id == PullRequest.id)
            .where(
                QueueEntry.repository_id == repository.id,
                QueueEntry.state == QueueEntryState.QUEUED,
                PullRequest.number == number,
            )
        )
        if entry is None:
            return False
        entry.priority = priority
        return True

    async def dequeue(
        self, repository: Repository, number: int, *, reason: str, remove_label: str | None
    ) -> bool:
        try:
            await commands.dequeue(
                session=self.session,
                repository=repository,
                number=number,
                reason=reason,
                remove_label=remove_label,
            )
        except commands.QueueError:
            return False
        return True

    async def leave_closed(self, repository: Repository, number: int, *, merged: bool) -> None:
        await commands.leave_closed(
            session=self.session, repository=repository, number=number, merged=merged
        )

    async def pending_notices(self, repository_id: int) -> list[Notice]:
        found = await self.session.scalars(
            select(Notice)
            .where(Notice.repository_id == repository_id, Notice.sent_at.is_(None))
            .order_by(Notice.id)
        )
        return list(found.all())

    async def claim_command(self, comment_id: int, repository_id: int) -> bool:
        return await insert_ignore(
            self.session,
            HandledCommand,
            {"comment_id": comment_id, "repository_id": repository_id, "handled_at": utcnow()},
            conflict=["comment_id"],
        )

    async def handled_commands(self, comment_ids: list[int]) -> set[int]:
        if not comment_ids:
            return set()
        found = await self.session.scalars(
            select(HandledCommand.comment_id).where(HandledCommand.comment_id.in_(comment_ids))
        )
        return set(found.all())

    async def active_builds(self, repository_id: int, base_ref: str | None = None) -> list[Build]:
        found = await self.session.scalars(
            select(Build)
            .where(
                Build.repository_id == repository_id,
                Build.state.in_(ACTIVE_BUILD_STATES),
                *([Build.base_ref == base_ref] if base_ref is not None else []),
            )
            .order_by(Build.id)
        )
        return list(found.all())

    async def add_build(self, build: Build) -> None:
        self.session.add(build)
        await self.session.flush()

    async def landed_builds_since(
        self, repository_id: int, base_ref: str, since: datetime
    ) -> list[Build]:
        found = await self.session.scalars(
            select(Build)
            .where(
                Build.repository_id == repository_id,
                Build.base_ref == base_ref,
                Build.state == BuildState.LANDED,
                Build.finished_at >= since,
            )
            .order_by(Build.id)
        )
        return list(found.all())

    async def finished_since(
        self, repository_id: int, since: datetime
    ) -> list[tuple[QueueEntry, int]]:
        rows = await self.session.execute(
            select(QueueEntry, PullRequest.number)
            .join(PullRequest, QueueEntry.pull_request_id == PullRequest.id)
            .where(
                QueueEntry.repository_id == repository_id,
                QueueEntry.state != QueueEntryState.QUEUED,
                QueueEntry.finished_at >= since,
            )
            .order_by(QueueEntry.finished_at, QueueEntry.id)
        )
        return [(entry, number) for entry, number in rows.tuples()]

    async def landing_times(self, repository_id: int, since: datetime) -> list[datetime]:
        found = await self.session.scalars(
            select(QueueEntry.finished_at).where(
                QueueEntry.repository_id == repository_id,
                QueueEntry.state == QueueEntryState.MERGED,
                QueueEntry.finished_at >= since,
            )
        )
        return [at for at in found.all() if at is not None]

    async def count_check_failures(
        self, repository_id: int, names: tuple[str, ...], *, contradicted: bool
    ) -> None:
        for name in names:
            row = await self.session.scalar(
                select(CheckFlake).where(
                    CheckFlake.repository_id == repository_id, CheckFlake.check_name == name
                )
            )
            if row is None:
                row = CheckFlake(repository_id=repository_id, check_name=name[:255])
                row.failures = row.contradicted = 0
                self.session.add(row)
            row.failures += 1
            row.contradicted += int(contradicted)
            row.updated_at = utcnow()

    async def build_stats(self, repository_id: int, since: datetime) -> Measured:
        builds = (
            await self.session.execute(
                select(Build.outcome, Build.created_at, Build.finished_at).where(
                    Build.repository_id == repository_id,
                    Build.finished_at >= since,
                    Build.outcome.in_(PASSED_OUTCOMES | FAILED_OUTCOMES),
                )
            )
        ).all()
        arrivals = await self.session.scalars(
            select(QueueEntry.enqueued_at).where(
                QueueEntry.repository_id == repository_id, QueueEntry.enqueued_at >= since
            )
        )
        return measured(
            [(outcome, created, finished) for outcome, created, finished in builds],
            list(arrivals.all()),
            utcnow(),
        )

    async def commit(self) -> None:
        await self.session.commit()
