"""Processing stored webhook deliveries, and sweeping up the ones never enqueued.

Exactly once in effect: a delivery's state changes and its "processed" mark commit in
one transaction, so a worker killed half-way leaves nothing applied and the delivery
still "received"; arq or the sweeper runs it again. A second run of a processed delivery
does nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DataError, StatementError

from jobs.config_file import read_config_file, report
from jobs.context import WorkerContext
from jobs.deferral import defer_when_github_says_wait
from jobs.evaluate import wake
from mergequeue.github import GitHubClient, GitHubError, RateLimited, Unavailable
from mergequeue.github.queue_adapter import RestRepositoryGitHub
from mergequeue.github_setup import installation_client, repository_github
from mergequeue.models import DeliveryState, WebhookDelivery, utcnow
from mergequeue.queue.authorize import may_command, permits
from mergequeue.queue.config_file import ConfigFileRead
from mergequeue.tasks import PROCESS_DELIVERY, SYNC_REPOSITORIES, delivery_job_id, sync_job_id
from mergequeue.webhooks.apply import apply_changes
from mergequeue.webhooks.events import (
    Change,
    ConfigFileChanged,
    LabelChanged,
    QueueCommand,
    SyncInstallation,
    UnusableDelivery,
    UpsertRepository,
    WakeQueue,
    interpret,
)
from mergequeue.webhooks.inbox import ago, count_attempt, load_payload, unprocessed
from observability.metrics import WEBHOOK_DELIVERIES_PARKED

log = logging.getLogger("mergequeue.deliveries")

# A delivery whose processing crashed this many times is parked as failed (with the
# error) instead of being retried forever; an operator can see it in the database.
MAX_ATTEMPTS = 8
# The web process enqueues each delivery itself; the sweeper leaves it that long to do so.
SWEEP_GRACE = timedelta(seconds=5)
# An attempt that has not finished this long after it started is taken for dead (its
# worker was killed); processing one delivery takes milliseconds.
STALLED_AFTER = timedelta(seconds=25)
# arq cancels an attempt after this long, before the sweeper would start another.
PROCESS_TIMEOUT_SECONDS = 20
SWEEP_BATCH = 500


def never_storable(exc: BaseException) -> bool:
    """Whether `exc` is the database (or its driver) refusing a value itself, which no
    retry changes, rather than the database being away or busy: SQLSTATE class 22
    ("data exception": out of range, too long, NUL in text), or a value the driver could
    not encode."""
    if isinstance(exc, DataError | UnicodeEncodeError | OverflowError):
        return True
    if isinstance(exc, StatementError):
        orig = exc.orig
        if isinstance(orig, UnicodeEncodeError | OverflowError):
            return True
        sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        return isinstance(sqlstate, str) and sqlstate.startswith("22")
    return False


async def process_delivery(ctx: dict[str, Any], delivery_id: str) -> str:
    worker = WorkerContext.of(ctx)
    async with worker.database.sessions() as session:
        async with session.begin():
            attempts = await count_attempt(session, delivery_id)
        if attempts is None:
            return "already processed"
        if attempts > MAX_ATTEMPTS:
            async with session.begin():
                await _park(session, delivery_id, f"gave up after {MAX_ATTEMPTS} attempts")
            WEBHOOK_DELIVERIES_PARKED.labels("gave_up").inc()
            return "failed"

        async with session.begin():
            stored = await session.get(WebhookDelivery, delivery_id)
            if stored is None or stored.state != DeliveryState.RECEIVED:
                return "already processed"
            event, payload = stored.event, stored.payload
        try:
            # load_payload refuses, with the value and where it is, what no attempt could
            # store: NaN, Infinity, integers past 64 bits, NUL, lone surrogates
            # (UnprocessablePayload is a ValueError).
            changes = interpret(event, load_payload(payload))
        except (UnusableDelivery, ValueError) as exc:
            async with session.begin():
                await _park(session, delivery_id, str(exc)[:2000])
            _parked(delivery_id, "unusable", exc)
            return "unusable"
        # GitHub's word on who may command the queue, asked before the transaction: a
        # rate limit defers the whole delivery, which stays unapplied meanwhile.
        with defer_when_github_says_wait(ctx):
            changes = await without_refused_priority(worker, changes)
            refused = await refused_commands(worker, changes)
            config_files = await read_config_files(worker, changes)

        try:
            async with session.begin():
                delivery = await session.scalar(
                    select(WebhookDelivery)
                    .where(WebhookDelivery.id == delivery_id)
                    .with_for_update()
                )
                if delivery is None or delivery.state != DeliveryState.RECEIVED:
                    return "already processed"
                follow_ups = await apply_changes(
                    session,
                    changes,
                    settings=worker.settings,
                    received_at=delivery.received_at,
                    refused=refused,
                    config_files=config_files,
                )
                delivery.state = DeliveryState.PROCESSED
                delivery.processed_at = utcnow()
                delivery.error = None
        except (StatementError, UnicodeEncodeError, OverflowError) as exc:
            if not never_storable(exc):
                raise
            # The database refused a value of this delivery (out of a column's range): the
            # same payload would be refused on every attempt, so it is parked at once with
            # the database's own words instead of being retried MAX_ATTEMPTS times.
            async with session.begin():
                await _park(session, delivery_id, f"the database refused a value: {exc}"[:2000])
            _parked(delivery_id, "unusable", exc)
            return "unusable"
    await _follow_up(worker, follow_ups)
    _report_config_files(changes, config_files)
    log.info(
        "delivery processed",
        extra={"delivery": delivery_id, "event": event, "changes": len(changes)},
    )
    return "processed"


def _github_of(client: GitHubClient, repository: UpsertRepository) -> RestRepositoryGitHub:
    """GitHub as the repository's queue uses it, for a repository a delivery names."""
    return repository_github(
        client,
        installation_id=repository.installation_id,
        owner=repository.owner,
        name=repository.name,
    )


async def without_refused_priority(worker: WorkerContext, changes: list[Change]) -> list[Change]:
    """The changes, without priority labels added by someone who may not command the queue
    (the label alone can be added with GitHub's triage permission): such a label changes
    nothing, and is logged."""
    repositories = {c.id: c for c in changes if isinstance(c, UpsertRepository)}
    kept: list[Change] = []
    for change in changes:
        if (
            isinstance(change, LabelChanged)
            and change.added
            and change.label == worker.settings.QUEUE_PRIORITY_LABEL
        ):
            repository = repositories.get(change.repository_id)
            if worker.github is None or repository is None:
                allowed = False
            else:
                github = _github_of(worker.github, repository)
                # A labeler's association is not in the payload: always asked.
                allowed = permits(
                    await github.role(change.by), worker.settings.QUEUE_COMMAND_PERMISSION
                )
            if not allowed:
                log.info("priority label refused", extra={"pr": change.number, "author": change.by})
                continue
        kept.append(change)
    return kept


async def refused_commands(worker: WorkerContext, changes: list[Change]) -> frozenset[int]:
    """The comment ids of the queue commands whose authors may not give them."""
    repositories = {c.id: c for c in changes if isinstance(c, UpsertRepository)}
    refused: set[int] = set()
    for change in changes:
        if not isinstance(change, QueueCommand):
            continue
        repository = repositories.get(change.repository_id)
        needed = worker.settings.QUEUE_COMMAND_PERMISSION
        if worker.github is None or repository is None:
            # Nobody to ask: only the repository's owner is known to be allowed.
            allowed = change.association == "OWNER"
        else:
            github = _github_of(worker.github, repository)
            allowed = await may_command(
                github, author=change.author, association=change.association, needed=needed
            )
        if not allowed:
            log.info(
                "queue command refused",
                extra={"pr": change.number, "author": change.author, "command": change.command},
            )
            refused.add(change.comment_id)
    return frozenset(refused)


async def read_config_files(
    worker: WorkerContext, changes: list[Change]
) -> dict[int, ConfigFileRead]:
    """The settings file of each repository whose default branch a push changed it on,
    read at the pushed head (a removal keeps the settings: nothing is read)."""
    repositories = {c.id: c for c in changes if isinstance(c, UpsertRepository)}
    reads: dict[int, ConfigFileRead] = {}
    for change in changes:
        if not isinstance(change, ConfigFileChanged):
            continue
        repository = repositories.get(change.repository_id)
        if repository is None or repository.default_branch is None:
            continue
        if change.removed:
            log.info(
                "settings file removed; settings kept",
                extra={"repository": f"{repository.owner}/{repository.name}"},
            )
            continue
        if worker.github is None:
            continue
        try:
            reads[change.repository_id] = await read_config_file(
                installation_client(worker.github, repository.installation_id),
                repository_id=change.repository_id,
                owner=repository.owner,
                name=repository.name,
                branch=repository.default_branch,
                ref=change.after,
                commits=change.commits,
            )
        except (RateLimited, Unavailable):
            raise
        except GitHubError as exc:
            # E.g. the App lacks the contents permission: the rest of the push still counts.
            log.warning(
                "settings file not read",
                extra={"repository": f"{repository.owner}/{repository.name}", "why": str(exc)},
            )
    return reads


def _report_config_files(changes: list[Change], reads: dict[int, ConfigFileRead]) -> None:
    names = {c.id: f"{c.owner}/{c.name}" for c in changes if isinstance(c, UpsertRepository)}
    for repository_id, read in reads.items():
        report(names.get(repository_id, str(repository_id)), read, changed=True, source="push")


async def _follow_up(worker: WorkerContext, follow_ups: list[Change]) -> None:
    # After the commit: a crash here loses only work the periodic reconciliations redo.
    woken: set[int] = set()
    for change in follow_ups:
        if isinstance(change, WakeQueue) and change.repository_id not in woken:
            woken.add(change.repository_id)
            await wake(worker, change.repository_id)
        if isinstance(change, SyncInstallation):
            await worker.redis.enqueue_job(
                SYNC_REPOSITORIES,
                change.installation_id,
                _job_id=sync_job_id(change.installation_id),
            )


def _parked(delivery_id: str, reason: str, exc: Exception) -> None:
    WEBHOOK_DELIVERIES_PARKED.labels(reason).inc()
    log.warning(
        "delivery parked", extra={"delivery": delivery_id, "reason": reason, "error": str(exc)}
    )


async def _park(session: Any, delivery_id: str, reason: str) -> None:
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is not None and delivery.state == DeliveryState.RECEIVED:
        delivery.state = DeliveryState.FAILED
        delivery.error = reason
        delivery.processed_at = utcnow()


async def sweep_inbox(ctx: dict[str, Any]) -> int:
    """Enqueue stored deliveries that are still unprocessed (Redis was down, a job lost)."""
    worker = WorkerContext.of(ctx)
    async with worker.database.sessions() as session:
        due = await unprocessed(
            session,
            received_before=ago(SWEEP_GRACE),
            attempted_before=ago(STALLED_AFTER),
            limit=SWEEP_BATCH,
        )
    enqueued = 0
    for delivery_id, attempts in due:
        # The job id deduplicates against a job already queued or running for this attempt.
        job = await worker.redis.enqueue_job(
            PROCESS_DELIVERY, delivery_id, _job_id=delivery_job_id(delivery_id, attempts)
        )
        enqueued += job is not None
    if enqueued:
        log.info("sweeper enqueued deliveries", extra={"count": enqueued})
    return enqueued
