"""Changing a queue: enqueue, dequeue, pause, resume, freeze, priority, a repository's
settings, and reading one entry's status and the checks' flake statistics.

Used by the REST and GraphQL APIs and by the worker (labels, comments, decisions).
Callers commit the session, then wake the repository's queue.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mergequeue.models import (
    CheckFlake,
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
    # "urgent" or "normal" while queued; None when not queued.
    priority: str | None = None


class Priority(enum.StrEnum):
    """A queue entry's priority, as the APIs name it (stored as 1 and 0)."""

    NORMAL = "normal"
    URGENT = "urgent"

    @property
    def level(self) -> int:
        return 1 if self is Priority.URGENT else 0

    @classmethod
    def of(cls, level: int) -> Priority:
        return cls.URGENT if level > 0 else cls.NORMAL


PRIORITIES: Final = tuple(p.value for p in Priority)


def check_priority(value: object) -> Priority:
    if value not in PRIORITIES:
        error = InvalidSettings(f"priority must be one of {', '.join(PRIORITIES)}")
        error.field = "priority"
        raise error
    assert isinstance(value, str)
    return Priority(value)


async def _pull_request(session: AsyncSession, repository: Repository, number: int) -> PullRequest:
    pr = await _known_pull_request(session, repository, number)
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


async def _known_pull_request(
    session: AsyncSession, repository: Repository, number: int
) -> PullRequest | None:
    return await session.scalar(
        select(PullRequest).where(
            PullRequest.repository_id == repository.id, PullRequest.number == number
        )
    )


async def _queued(session: AsyncSession, repository: Repository, number: int) -> QueueEntry | None:
    """The live entry of pull request `number`, if the queue knows one."""
    pr = await _known_pull_request(session, repository, number)
    return None if pr is None else await live_entry(session, pr.id)


async def enqueue(
    *,
    session: AsyncSession,
    repository: Repository,
    number: int,
    by: str | None,
    at: datetime | None = None,
    priority: Priority = Priority.NORMAL,
) -> QueueEntry:
    """Queue a pull request; `at` is when it was asked (a webhook's receipt time), so
    deliveries processed concurrently still queue in the order GitHub sent them. An urgent
    one queues ahead of every normal entry (first in, first out among urgent ones)."""
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
        priority=priority.level,
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
    entry = await _queued(session, repository, number)
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
    entry = await _queued(session, repository, number)
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


async def set_priority(
    *, session: AsyncSession, repository: Repository, number: int, priority: Priority
) -> QueueEntry:
    """Change a queued pull request's priority; `NotQueued` when it is not queued."""
    entry = await _queued(session, repository, number)
    if entry is None:
        raise NotQueued(f"pull request #{number} is not queued")
    entry.priority = priority.level
    await session.flush()
    return entry


async def entry_status(
    *, session: AsyncSession, repository: Repository, number: int
) -> PullQueueStatus | None:
    """The queue status of one pull request; None when the queue has never seen it."""
    pr = await _known_pull_request(session, repository, number)
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
            priority=Priority.of(entry.priority).value,
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
            # The engine's order (`store.SqlQueueStore.queued`): urgent entries first.
            .order_by(QueueEntry.priority.desc(), QueueEntry.enqueued_at, QueueEntry.id)
        )
    ).all()
    return ids.index(entry.id) + 1


# -- per-repository settings -----------------------------------------------------------


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
# Parallel mode's optimistic validation: how many builds behind a failed one may contradict
# it (0: a failure stands at once).
MIN_FAILURE_DEPTH: Final = 0
MAX_FAILURE_DEPTH: Final = 8
# A freeze's reason, shown on every queued pull request.
MAX_FREEZE_REASON_LENGTH: Final = 500
MAX_BRANCH_NAME_LENGTH: Final = 255
REFS_HEADS: Final = "refs/heads/"


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


def _check_bool(name: str) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        if not isinstance(value, bool):
            raise InvalidSettings(f"{name} must be true or false")
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
_check_failure_depth = _whole_number("failure_depth", MIN_FAILURE_DEPTH, MAX_FAILURE_DEPTH)
# Re-runs of a failed staging build's failed jobs before its failure counts.
MAX_FLAKY_RETRIES: Final = 3
_check_flaky_retries = _whole_number("flaky_retries", 0, MAX_FLAKY_RETRIES)


# Every setting `update_settings` takes (by name), with the check of its value (None, "use the
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
    "failure_depth": _check_failure_depth,
    "status_comments": _check_bool("status_comments"),
    "flaky_retries": _check_flaky_retries,
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
    *, session: AsyncSession, repository: Repository, changes: Mapping[str, object]
) -> Repository:
    """Change a repository's queue settings. `changes` maps names of `SETTING_CHECKS` to
    a value, or to None to reset that setting to its default (the environment's label and
    merge method, branch protection's required checks, the worker's CI timeout, serial
    mode and parallel mode's defaults in `mergequeue.queue.effective`, no notifications
    URL of its own, a failure depth of 0, status comments on, no flaky retries); a setting
    not named keeps its value.

    Every value is checked before any is written, so a bad one changes nothing. A name
    that is not a setting is the caller's mistake, not the client's: `KeyError`.
    """
    unknown = sorted(set(changes) - SETTING_CHECKS.keys())
    if unknown:
        raise KeyError(f"not queue settings: {', '.join(unknown)}")
    # In the table's order, whatever the caller's: when several values are bad, the one
    # reported does not depend on how the client ordered its fields.
    checked = {
        name: check_setting(name, changes[name]) for name in SETTING_CHECKS if name in changes
    }
    for name, value in checked.items():
        setattr(repository, name, value)
    await session.flush()
    return repository


# -- freezes ---------------------------------------------------------------------------


def _field_error(field: str, message: str) -> InvalidSettings:
    error = InvalidSettings(message)
    error.field = field
    return error


def _branch_name(field: str, value: object) -> str | None:
    """A base branch's name as git allows it, or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _field_error(field, f"{field} must be a branch name")
    if len(value) > MAX_BRANCH_NAME_LENGTH:
        raise _field_error(field, f"{field} must be at most {MAX_BRANCH_NAME_LENGTH} characters")
    if value.startswith(REFS_HEADS):
        value = value[len(REFS_HEADS) :]
    forbidden = set(" ~^:?*[\\")
    if (
        not value
        or any(c in forbidden or ord(c) < 0x20 or ord(c) == 0x7F for c in value)
        or any(0xD800 <= ord(c) <= 0xDFFF for c in value)
        or ".." in value
        or "@{" in value
        or value.startswith(("/", "-", "."))
        or value.endswith(("/", ".", ".lock"))
        or "//" in value
    ):
        raise _field_error(field, f"{field} is not a valid branch name")
    return value


def _utc(field: str, value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise _field_error(field, f"{field} must be a date and time")
    if value.tzinfo is None or value.utcoffset() is None:
        raise _field_error(field, f"{field} must name its timezone (e.g. Z or +02:00)")
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _field_error(field, f"{field} is out of range") from None


async def set_freeze(
    *,
    session: AsyncSession,
    repository: Repository,
    reason: object,
    start: object = None,
    end: object = None,
    now: datetime | None = None,
    branch: object = None,
) -> Repository:
    """Freeze the queue (builds go on, nothing lands) from `start` (None: now) until `end`
    (None: until lifted), for `reason`, on the base branch `branch` (None: every base
    branch); replaces any freeze. `InvalidSettings` naming the field (`reason`, `from`,
    `until`, `branch`) when a value is refused, before anything changes."""
    if not isinstance(reason, str) or not reason.strip():
        raise _field_error("reason", "reason must be a non-empty text")
    text = reason.strip()
    if len(text) > MAX_FREEZE_REASON_LENGTH:
        raise _field_error(
            "reason", f"reason must be at most {MAX_FREEZE_REASON_LENGTH} characters"
        )
    if any(c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise _field_error("reason", "reason must not contain NUL characters or lone surrogates")
    begins, ends = _utc("from", start), _utc("until", end)
    if ends is not None:
        if begins is not None and ends <= begins:
            raise _field_error("until", "until must be after from")
        if ends <= (now or utcnow()):
            raise _field_error("until", "until must be in the future")
    scope = _branch_name("branch", branch)
    repository.frozen_reason = text
    repository.frozen_from = begins
    repository.frozen_until = ends
    repository.frozen_branch = scope
    await session.flush()
    return repository


async def lift_freeze(*, session: AsyncSession, repository: Repository) -> Repository:
    """End the freeze (if any): what passed lands."""
    repository.frozen_reason = None
    repository.frozen_from = repository.frozen_until = None
    repository.frozen_branch = None
    await session.flush()
    return repository


# -- flake statistics ------------------------------------------------------------------


@dataclass(frozen=True)
class CheckFlakes:
    check: str
    # Failures of this required check on staging builds...
    failures: int
    # ...of which a later build holding the same changes passed (flaky failures).
    contradicted: int
    updated_at: datetime

    @property
    def flake_rate(self) -> float:
        """The share of its failures that were flaky (0 when it never failed)."""
        return self.contradicted / self.failures if self.failures else 0.0


async def check_flakes(*, session: AsyncSession, repository: Repository) -> list[CheckFlakes]:
    """Per check, by name: its failures on staging builds and the contradicted ones."""
    found = await session.scalars(
        select(CheckFlake)
        .where(CheckFlake.repository_id == repository.id)
        .order_by(CheckFlake.check_name)
    )
    return [
        CheckFlakes(
            check=row.check_name,
            failures=row.failures,
            contradicted=row.contradicted,
            updated_at=row.updated_at,
        )
        for row in found.all()
    ]
