"""Changing a queue: enqueue, dequeue, pause, resume, a repository's settings, and
reading one entry's status.

Used by the REST and GraphQL APIs and by the worker (labels, comments, decisions).
Callers commit the session, then wake the repository's queue.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mergequeue.models import (
    PullRequest,
    PullRequestState,
    QueueEntry,
    QueueEntryState,
    Repository,
    utcnow,
)
from mergequeue.notifications.urls import check_webhook_url
from mergequeue.queue import notices
from mergequeue.queue.decide import EntryStatus
from mergequeue.queue.effective import AUTO_BUILDS, MAX_BATCH_SIZE, MAX_PARALLEL_BUILDS, QueueMode
from mergequeue.settings import MergeMethod


class QueueError(Exception):
    """A command that cannot be carried out; the message says why."""


class AlreadyQueued(QueueError):
    pass


class NotQueued(QueueError):
    pass


class NotOpen(QueueError):
    pass


@dataclass(frozen=True)
class PullQueueStatus:
    number: int
    queued: bool
    position: int | None
    base_ref: str | None
    status: str | None
    status_detail: str | None
    enqueued_at: datetime | None
    # How the last stay in the queue ended, when the pull request is not queued now.
    last_outcome: str | None
    last_reason: str | None


async def _pull_request(session: AsyncSession, repository: Repository, number: int) -> PullRequest:
    pr = await session.scalar(
        select(PullRequest).where(
            PullRequest.repository_id == repository.id, PullRequest.number == number
        )
    )
    if pr is None:
        # Not seen in a webhook yet: the queue's evaluation reads the rest from GitHub.
        pr = PullRequest(
            repository_id=repository.id,
            number=number,
            base_ref=repository.default_branch,
            state=PullRequestState.OPEN,
            labels=[],
        )
        session.add(pr)
        await session.flush()
    return pr


async def live_entry(session: AsyncSession, pull_request_id: int) -> QueueEntry | None:
    return await session.scalar(
        select(QueueEntry).where(
            QueueEntry.pull_request_id == pull_request_id,
            QueueEntry.state == QueueEntryState.QUEUED,
        )
    )


async def enqueue(
    *,
    session: AsyncSession,
    repository: Repository,
    number: int,
    by: str | None,
    at: datetime | None = None,
) -> QueueEntry:
    """Queue a pull request; `at` is when it was asked (a webhook's receipt time), so
    deliveries processed concurrently still queue in the order GitHub sent them."""
    pr = await _pull_request(session, repository, number)
    if pr.state != PullRequestState.OPEN:
        raise NotOpen(f"pull request #{number} is {pr.state.value}")
    if await live_entry(session, pr.id) is not None:
        raise AlreadyQueued(f"pull request #{number} is already queued")
    now = utcnow()
    asked = at or now
    # The status comment of an earlier stay is edited again, not posted anew.
    comment_id = await session.scalar(
        select(QueueEntry.status_comment_id)
        .where(QueueEntry.pull_request_id == pr.id, QueueEntry.status_comment_id.is_not(None))
        .order_by(QueueEntry.id.desc())
        .limit(1)
    )
    entry = QueueEntry(
        repository_id=repository.id,
        pull_request_id=pr.id,
        status_comment_id=comment_id,
        base_ref=pr.base_ref or repository.default_branch,
        state=QueueEntryState.QUEUED,
        status=EntryStatus.WAITING,
        enqueued_by=by,
        enqueued_at=asked,
        status_changed_at=now,
    )
    session.add(entry)
    await session.flush()
    return entry


async def dequeue(
    *,
    session: AsyncSession,
    repository: Repository,
    number: int,
    reason: str,
    remove_label: str | None = None,
) -> QueueEntry:
    """Take a pull request out of the queue; `remove_label` also takes the queue label off
    it on GitHub (through the outbox), so a labelled pull request is always a queued one."""
    pr = await session.scalar(
        select(PullRequest).where(
            PullRequest.repository_id == repository.id, PullRequest.number == number
        )
    )
    entry = None if pr is None else await live_entry(session, pr.id)
    if entry is None:
        raise NotQueued(f"pull request #{number} is not queued")
    finish(entry, QueueEntryState.DEQUEUED, reason)
    for notice in notices.for_dequeue(
        entry_id=entry.id,
        repository_id=repository.id,
        number=number,
        comment_body=None,
        label=remove_label,
    ):
        await notices.add(session, notice)
    return entry


async def leave_closed(
    *, session: AsyncSession, repository: Repository, number: int, merged: bool
) -> None:
    """A pull request closed or merged on GitHub leaves the queue."""
    pr = await session.scalar(
        select(PullRequest).where(
            PullRequest.repository_id == repository.id, PullRequest.number == number
        )
    )
    entry = None if pr is None else await live_entry(session, pr.id)
    if entry is None:
        return
    if merged:
        finish(entry, QueueEntryState.MERGED, "merged_outside_queue")
    else:
        finish(entry, QueueEntryState.DEQUEUED, "closed")


def finish(entry: QueueEntry, state: QueueEntryState, reason: str | None) -> None:
    now = utcnow()
    entry.state = state
    entry.dequeue_reason = reason
    entry.finished_at = now
    entry.status = state.value
    entry.status_changed_at = now


async def set_paused(*, session: AsyncSession, repository: Repository, paused: bool) -> Repository:
    if paused and not repository.paused:
        # Since when: a pause that lasts NOTIFY_PAUSED_AFTER_SECONDS is announced once.
        repository.paused_at = utcnow()
    elif not paused:
        repository.paused_at = None
    repository.paused = paused
    await session.flush()
    return repository


async def entry_status(
    *, session: AsyncSession, repository: Repository, number: int
) -> PullQueueStatus | None:
    """The queue status of one pull request; None when the queue has never seen it."""
    pr = await session.scalar(
        select(PullRequest).where(
            PullRequest.repository_id == repository.id, PullRequest.number == number
        )
    )
    if pr is None:
        return None
    entry = await live_entry(session, pr.id)
    if entry is not None:
        position = await _position(session, entry)
        return PullQueueStatus(
            number=number,
            queued=True,
            position=position,
            base_ref=entry.base_ref,
            status=entry.status,
            status_detail=entry.status_detail,
            enqueued_at=entry.enqueued_at,
            last_outcome=None,
            last_reason=None,
        )
    last = await session.scalar(
        select(QueueEntry)
        .where(QueueEntry.pull_request_id == pr.id)
        .order_by(QueueEntry.finished_at.desc(), QueueEntry.id.desc())
    )
    return PullQueueStatus(
        number=number,
        queued=False,
        position=None,
        base_ref=pr.base_ref,
        status=None,
        status_detail=last.status_detail if last else None,
        enqueued_at=None,
        last_outcome=last.state.value if last else None,
        last_reason=last.dequeue_reason if last else None,
    )


async def _position(session: AsyncSession, entry: QueueEntry) -> int:
    ids = (
        await session.scalars(
            select(QueueEntry.id)
            .where(
                QueueEntry.repository_id == entry.repository_id,
                QueueEntry.base_ref == entry.base_ref,
                QueueEntry.state == QueueEntryState.QUEUED,
            )
            .order_by(QueueEntry.enqueued_at, QueueEntry.id)
        )
    ).all()
    return ids.index(entry.id) + 1


# -- per-repository settings -----------------------------------------------------------


class Unset(enum.Enum):
    """The default of `update_settings`'s arguments: leave that setting as it is."""

    UNSET = enum.auto()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET

MERGE_METHODS: Final = tuple(method.value for method in MergeMethod)
# GitHub's own limit on a label's name.
MAX_LABEL_LENGTH: Final = 100
MAX_REQUIRED_CHECKS: Final = 50
MAX_CHECK_NAME_LENGTH: Final = 255
MIN_CI_TIMEOUT_SECONDS: Final = 60
MAX_CI_TIMEOUT_SECONDS: Final = 24 * 60 * 60
QUEUE_MODES: Final = tuple(mode.value for mode in QueueMode)
MIN_PARALLEL_BUILDS: Final = 1
MIN_BATCH_SIZE: Final = 1
# A batch waits at most an hour for more pull requests; 0 starts a partial batch at once.
MIN_BATCH_WAIT_SECONDS: Final = 0
MAX_BATCH_WAIT_SECONDS: Final = 60 * 60


class InvalidSettings(ValueError):
    """A setting's value is out of range; the message names the setting and why, and
    `field` names it for callers that point at the offending input."""

    field: str = ""


def _check_label(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidSettings("queue_label must be a string")
    # GitHub trims label names, so a padded name would never match the label on a PR.
    label = value.strip()
    if not label:
        raise InvalidSettings("queue_label must not be empty")
    if len(label) > MAX_LABEL_LENGTH:
        raise InvalidSettings(f"queue_label must be at most {MAX_LABEL_LENGTH} characters")
    return label


def _check_merge_method(value: object) -> str:
    if value not in MERGE_METHODS:
        raise InvalidSettings(f"merge_method must be one of {', '.join(MERGE_METHODS)}")
    assert isinstance(value, str)
    return value


def _check_required_checks(value: object) -> list[str]:
    if not isinstance(value, list | tuple):
        raise InvalidSettings("required_checks must be a list of check names")
    if not value:
        # The worker reads an empty list as "branch protection decides": say so instead
        # of storing a list that looks like "no checks required".
        raise InvalidSettings(
            "required_checks must name at least one check; "
            "null uses branch protection's required checks"
        )
    if len(value) > MAX_REQUIRED_CHECKS:
        raise InvalidSettings(f"required_checks must name at most {MAX_REQUIRED_CHECKS} checks")
    names: list[str] = []
    for name in value:
        if not isinstance(name, str) or not name.strip():
            raise InvalidSettings("required_checks must hold non-empty check names")
        if len(name) > MAX_CHECK_NAME_LENGTH:
            raise InvalidSettings(
                f"required_checks names must be at most {MAX_CHECK_NAME_LENGTH} characters"
            )
        # Check names are matched exactly, spaces included; a repeat adds nothing.
        if name not in names:
            names.append(name)
    return names


def _check_queue_mode(value: object) -> str:
    if value not in QUEUE_MODES:
        raise InvalidSettings(f"queue_mode must be one of {', '.join(QUEUE_MODES)}")
    assert isinstance(value, str)
    return value


def _whole_number(name: str, low: int, high: int, unit: str = "") -> Callable[[object], int]:
    """A check of a whole number from `low` to `high`; `unit` names what it counts."""
    what = f"a whole number of {unit}" if unit else "a whole number"

    def check(value: object) -> int:
        # bool is an int to Python, never to a client.
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidSettings(f"{name} must be {what}")
        if not low <= value <= high:
            raise InvalidSettings(f"{name} must be between {low} and {high}")
        return value

    return check


def _check_notify_webhook_url(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidSettings("notify_webhook_url must be a string")
    try:
        return check_webhook_url(value)
    except ValueError as exc:
        raise InvalidSettings(f"notify_webhook_url {exc}") from None


_check_ci_timeout = _whole_number(
    "ci_timeout_seconds", MIN_CI_TIMEOUT_SECONDS, MAX_CI_TIMEOUT_SECONDS, "seconds"
)
_check_builds_number = _whole_number(
    "max_parallel_builds", MIN_PARALLEL_BUILDS, MAX_PARALLEL_BUILDS
)


def _check_max_parallel_builds(value: object) -> object:
    # `auto`: sized from the repository's measured builds (mergequeue/queue/sizing.py).
    if value == "auto":
        return AUTO_BUILDS
    return _check_builds_number(value)


_check_batch_size = _whole_number("batch_size", MIN_BATCH_SIZE, MAX_BATCH_SIZE)
_check_batch_wait = _whole_number(
    "batch_wait_seconds", MIN_BATCH_WAIT_SECONDS, MAX_BATCH_WAIT_SECONDS, "seconds"
)


# Every setting `update_settings` takes, with the check of its value (None, "use the
# default", is never checked). Also what `.github/mergequeue.yml` may set
# (`mergequeue.config_file`), so both are validated by the same rules.
SETTING_CHECKS: Final[dict[str, Callable[[object], object]]] = {
    "queue_label": _check_label,
    "merge_method": _check_merge_method,
    "required_checks": _check_required_checks,
    "ci_timeout_seconds": _check_ci_timeout,
    "queue_mode": _check_queue_mode,
    "max_parallel_builds": _check_max_parallel_builds,
    "batch_size": _check_batch_size,
    "batch_wait_seconds": _check_batch_wait,
    "notify_webhook_url": _check_notify_webhook_url,
}


def check_setting(name: str, value: object) -> object:
    """The value to store for the setting `name` (None: its default), or `InvalidSettings`
    naming it (`field`) and why."""
    try:
        return None if value is None else SETTING_CHECKS[name](value)
    except InvalidSettings as exc:
        exc.field = name
        raise


async def update_settings(
    *,
    session: AsyncSession,
    repository: Repository,
    queue_label: str | Unset | None = UNSET,
    merge_method: str | Unset | None = UNSET,
    required_checks: Sequence[str] | Unset | None = UNSET,
    ci_timeout_seconds: int | Unset | None = UNSET,
    queue_mode: str | Unset | None = UNSET,
    max_parallel_builds: int | Unset | None = UNSET,
    batch_size: int | Unset | None = UNSET,
    batch_wait_seconds: int | Unset | None = UNSET,
    notify_webhook_url: str | Unset | None = UNSET,
) -> Repository:
    """Change a repository's queue settings. An argument left UNSET keeps its setting;
    None resets it to the default (the environment's label and merge method, branch
    protection's required checks, the worker's CI timeout, serial mode and parallel
    mode's defaults in `mergequeue.queue.effective`, no notifications URL of its own).

    Every value is checked before any is written, so a bad one changes nothing.
    """
    given: dict[str, object] = {
        "queue_label": queue_label,
        "merge_method": merge_method,
        "required_checks": required_checks,
        "ci_timeout_seconds": ci_timeout_seconds,
        "queue_mode": queue_mode,
        "max_parallel_builds": max_parallel_builds,
        "batch_size": batch_size,
        "batch_wait_seconds": batch_wait_seconds,
        "notify_webhook_url": notify_webhook_url,
    }
    changes = {
        name: check_setting(name, value) for name, value in given.items() if value is not UNSET
    }
    for name, value in changes.items():
        setattr(repository, name, value)
    await session.flush()
    return repository
