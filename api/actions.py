"""What the REST and GraphQL APIs do to a queue: one place, so both behave the same.

Each mutation runs the queue command, commits, then wakes the repository's queue (after
the commit, so the worker reads what was written). Lookups raise `Unknown`; the queue
commands raise their `QueueError`s; each API maps them to its own error shape.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mergequeue import reads
from mergequeue.models import Repository
from mergequeue.queue import commands
from mergequeue.queue.commands import (
    AlreadyQueued,
    CheckFlakes,
    Priority,
    PullQueueStatus,
    QueueError,
)
from mergequeue.queue.effective import effective_settings
from mergequeue.settings import Settings
from mergequeue.tasks import TaskQueue

log = logging.getLogger("mergequeue.api")

API_ACTOR = "api"
DEQUEUE_REASON = "api"


class Unknown(LookupError):
    """No such repository, or a pull request the queue has never seen."""

    def __str__(self) -> str:
        return str(self.args[0])


async def repository(*, session: AsyncSession, owner: str, name: str) -> Repository:
    found = await reads.find_repository(session=session, owner=owner, name=name)
    if found is None:
        raise Unknown(f"repository {owner}/{name} is not known")
    return found


async def pull_request_status(
    *, session: AsyncSession, repository: Repository, number: int
) -> PullQueueStatus:
    status = await commands.entry_status(session=session, repository=repository, number=number)
    if status is None:
        raise Unknown(f"pull request #{number} is not known in {repository.full_name}")
    return status


async def enqueue(
    *,
    session: AsyncSession,
    tasks: TaskQueue,
    repository: Repository,
    number: int,
    priority: Priority = Priority.NORMAL,
) -> PullQueueStatus:
    try:
        await commands.enqueue(
            session=session, repository=repository, number=number, by=API_ACTOR, priority=priority
        )
        await session.commit()
    except IntegrityError:
        # A concurrent enqueue of the same pull request won the unique index.
        await session.rollback()
        raise AlreadyQueued(f"pull request #{number} is already queued") from None
    except QueueError:
        # Nothing half-done may ride along with a later commit in the same session (a
        # GraphQL request can carry several mutations).
        await session.rollback()
        raise
    log.info("enqueued through the API", extra={"repository": repository.full_name, "pr": number})
    await _wake(tasks, repository)
    return await pull_request_status(session=session, repository=repository, number=number)


async def dequeue(
    *,
    session: AsyncSession,
    tasks: TaskQueue,
    settings: Settings,
    repository: Repository,
    number: int,
    reason: str = DEQUEUE_REASON,
) -> PullQueueStatus:
    try:
        await commands.dequeue(
            session=session,
            repository=repository,
            number=number,
            reason=reason,
            remove_label=effective_settings(repository, settings).queue_label,
        )
    except QueueError:
        await session.rollback()
        raise
    await session.commit()
    log.info(
        "dequeued through the API",
        extra={"repository": repository.full_name, "pr": number, "reason": reason},
    )
    # The next pull request may now be at the head.
    await _wake(tasks, repository)
    return await pull_request_status(session=session, repository=repository, number=number)


async def set_paused(
    *, session: AsyncSession, tasks: TaskQueue, repository: Repository, paused: bool
) -> Repository:
    await commands.set_paused(session=session, repository=repository, paused=paused)
    await session.commit()
    log.info(
        "paused through the API" if paused else "resumed through the API",
        extra={"repository": repository.full_name},
    )
    # Both ways: pausing stops the CI timeout's clock, resuming lets the queue move.
    await _wake(tasks, repository)
    return repository


async def update_settings(
    *,
    session: AsyncSession,
    tasks: TaskQueue,
    repository: Repository,
    changes: Mapping[str, object],
) -> Repository:
    """Change a repository's queue settings (`commands.update_settings`: only those named
    change, None resets one to its default); raises `commands.InvalidSettings` before
    changing anything when a value is out of range."""
    await commands.update_settings(session=session, repository=repository, changes=changes)
    await session.commit()
    log.info("settings changed through the API", extra={"repository": repository.full_name})
    # A new merge method, required checks or timeout can change what the head's turn needs;
    # a new mode or batch setting changes which staging builds should run.
    await _wake(tasks, repository)
    return repository


async def set_priority(
    *,
    session: AsyncSession,
    tasks: TaskQueue,
    repository: Repository,
    number: int,
    priority: Priority,
) -> PullQueueStatus:
    try:
        await commands.set_priority(
            session=session, repository=repository, number=number, priority=priority
        )
    except QueueError:
        await session.rollback()
        raise
    await session.commit()
    log.info(
        "priority changed through the API",
        extra={"repository": repository.full_name, "pr": number, "priority": priority.value},
    )
    # The queue's order changed: a new head, or builds behind the new place made again.
    await _wake(tasks, repository)
    return await pull_request_status(session=session, repository=repository, number=number)


async def freeze(
    *,
    session: AsyncSession,
    tasks: TaskQueue,
    repository: Repository,
    reason: object,
    start: datetime | None = None,
    end: datetime | None = None,
    branch: str | None = None,
) -> Repository:
    """Freeze the queue (on `branch` only, when given); raises `commands.InvalidSettings`
    (changing nothing) for a bad reason, window or branch."""
    # Checked before anything changes: a refusal leaves nothing to roll back.
    await commands.set_freeze(
        session=session, repository=repository, reason=reason, start=start, end=end, branch=branch
    )
    await session.commit()
    log.info("frozen through the API", extra={"repository": repository.full_name})
    # As a pause: the heads show the freeze at once, and the worker sets a deadline at its
    # start or end so that it turns by itself.
    await _wake(tasks, repository)
    return repository


async def unfreeze(
    *, session: AsyncSession, tasks: TaskQueue, repository: Repository
) -> Repository:
    await commands.lift_freeze(session=session, repository=repository)
    await session.commit()
    log.info("unfrozen through the API", extra={"repository": repository.full_name})
    # What passed meanwhile lands now.
    await _wake(tasks, repository)
    return repository


async def check_flakes(*, session: AsyncSession, repository: Repository) -> list[CheckFlakes]:
    return await commands.check_flakes(session=session, repository=repository)


async def _wake(tasks: TaskQueue, repository: Repository) -> None:
    if not await tasks.wake_queue(repository.id):
        # Committed anyway: the worker's periodic reconciliation picks the queue up.
        log.warning("could not wake the queue", extra={"repository": repository.full_name})
