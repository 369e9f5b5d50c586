"""Performing `decide`'s actions: one handler per action, GitHub behind a Protocol.

A handler returns True when the queue changed in a way that needs a fresh look at once:
an entry left, or GitHub refused something (the refusal is recorded on the entry and
`decide` turns it into a dequeue if the same head is refused again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, assert_never

from mergequeue.models import NotificationDestination, QueueEntry, QueueEntryState
from mergequeue.notifications import outbox
from mergequeue.queue import notices
from mergequeue.queue.commands import finish
from mergequeue.queue.decide import (
    Action,
    Dequeue,
    EntrySnapshot,
    EntryStatus,
    LeaveMerged,
    Merge,
    Refusal,
    SetStatus,
    UpdateBranch,
)
from mergequeue.queue.ports import Refused, RepositoryGitHub
from mergequeue.queue.store import QueueStore

log = logging.getLogger("mergequeue.queue")


class QueueEvents(Protocol):
    """What the executor reports (metrics in the worker, records in tests)."""

    def merged(self, full_name: str, seconds_in_queue: float) -> None: ...

    def dequeued(self, full_name: str, reason: str) -> None: ...

    # Parallel mode's staging builds.
    def build_started(self, full_name: str, size: int) -> None: ...

    def build_ended(self, full_name: str, outcome: str) -> None: ...

    def builds_in_flight(self, full_name: str, count: int) -> None: ...

    def bisected(self, full_name: str) -> None: ...

    def landed(self, full_name: str) -> None: ...

    def flaky(self, full_name: str, check: str) -> None:
        """A check's failure on a staging build that a later build contradicted."""
        ...


@dataclass(frozen=True)
class Target:
    """The repository whose queue is being executed on."""

    id: int
    full_name: str
    label: str
    # Where its notifications go, and its page on GitHub (for their links).
    notify: tuple[NotificationDestination, ...] = ()
    web_url: str = ""


@dataclass
class Executor:
    store: QueueStore
    github: RepositoryGitHub
    target: Target
    events: QueueEvents
    clock: Callable[[], datetime]

    async def run(self, entry: QueueEntry, number: int, actions: Sequence[Action]) -> bool:
        for action in actions:
            match action:
                case SetStatus():
                    set_status(entry, action, self.clock())
                    changed = False
                case UpdateBranch():
                    changed = await self._update_branch(entry, action)
                case Merge():
                    changed = await self._merge(entry, action)
                case Dequeue():
                    changed = await self._dequeue(entry, action)
                case LeaveMerged():
                    changed = self._leave_merged(entry)
                case _:
                    assert_never(action)
            if changed:
                # What follows in the list assumed this action worked as planned.
                return True
        return False

    async def _update_branch(self, entry: QueueEntry, action: UpdateBranch) -> bool:
        try:
            await self.github.update_branch(action.number, action.expected_head_sha)
        except Refused as exc:
            _refuse(entry, Refusal("update", action.expected_head_sha, exc.message))
            log.info("update-branch refused", extra={"pr": action.number, "why": exc.message})
            return True
        return False

    async def _merge(self, entry: QueueEntry, action: Merge) -> bool:
        # Recorded first: if the answer is lost, the next evaluation finds the pull request
        # merged while "merging" and counts it as the queue's merge.
        await self.store.commit()
        try:
            await self.github.merge(action.number, action.sha, action.method)
        except Refused as exc:
            _refuse(entry, Refusal("merge", action.sha, exc.message))
            entry.status = EntryStatus.WAITING_FOR_CHECKS
            log.info("merge refused", extra={"pr": action.number, "why": exc.message})
            return True
        self.record_merged(entry)
        log.info("merged", extra={"repository": self.target.full_name, "pr": action.number})
        return True

    async def _dequeue(self, entry: QueueEntry, action: Dequeue) -> bool:
        finish(entry, QueueEntryState.DEQUEUED, action.reason.value)
        entry.status_detail = action.comment
        for notice in notices.for_dequeue(
            entry_id=entry.id,
            repository_id=self.target.id,
            number=action.number,
            comment_body=action.comment,
            label=self.target.label if action.remove_label else None,
        ):
            await self.store.add_notice(notice)
        # In the same transaction as the dequeue: announced exactly when it happened.
        for notification in outbox.for_dequeue(
            entry_id=entry.id,
            repository_id=self.target.id,
            full_name=self.target.full_name,
            web_url=self.target.web_url,
            number=action.number,
            reason=action.reason.value,
            comment=action.comment,
            destinations=self.target.notify,
            now=self.clock(),
        ):
            await self.store.add_notification(notification)
        self.events.dequeued(self.target.full_name, action.reason.value)
        log.info(
            "dequeued",
            extra={
                "repository": self.target.full_name,
                "pr": action.number,
                "reason": action.reason,
            },
        )
        return True

    def _leave_merged(self, entry: QueueEntry) -> bool:
        if entry.status == EntryStatus.MERGING:
            self.record_merged(entry)
        else:
            finish(entry, QueueEntryState.MERGED, "merged_outside_queue")
        return True

    def record_merged(self, entry: QueueEntry) -> None:
        finish(entry, QueueEntryState.MERGED, "merged")
        seconds = (self.clock() - entry.enqueued_at).total_seconds()
        self.events.merged(self.target.full_name, seconds)


def set_status(entry: QueueEntry, action: SetStatus, now: datetime) -> None:
    if entry.status != action.status or entry.status_detail != action.detail:
        entry.status_changed_at = now
    entry.status = action.status
    entry.status_detail = action.detail
    if action.stop_clock:
        if entry.waiting_since is not None:
            entry.waited_seconds = (entry.waited_seconds or 0.0) + (
                now - entry.waiting_since
            ).total_seconds()
            entry.waiting_since = None
    elif action.waiting_sha:
        if action.waiting_sha != entry.waiting_sha:
            entry.waiting_sha = action.waiting_sha
            entry.waited_seconds = 0.0
            entry.waiting_since = now
        elif entry.waiting_since is None:
            entry.waiting_since = now
    if action.updated_from_sha:
        entry.updated_from_sha = action.updated_from_sha


def _refuse(entry: QueueEntry, refusal: Refusal) -> None:
    entry.refusal_action = refusal.action
    entry.refusal_sha = refusal.sha
    entry.refusal_message = refusal.message[:2000]
    entry.updated_from_sha = None


def entry_snapshot(entry: QueueEntry, number: int) -> EntrySnapshot:
    refusal = None
    if entry.refusal_action in ("update", "merge") and entry.refusal_sha:
        refusal = Refusal(
            "update" if entry.refusal_action == "update" else "merge",
            entry.refusal_sha,
            entry.refusal_message or "",
        )
    return EntrySnapshot(
        number=number,
        status=entry.status,
        waiting_sha=entry.waiting_sha,
        waiting_since=entry.waiting_since,
        updated_from_sha=entry.updated_from_sha,
        status_changed_at=entry.status_changed_at,
        waited=timedelta(seconds=entry.waited_seconds or 0.0),
        refusal=refusal,
    )
