"""Reconciliation: catching up with what webhooks should have said, paced by need
(`mergequeue.queue.pacing`). The oldest-evaluated repositories go first, so none is
starved for another.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select

from jobs.context import WorkerContext
from jobs.evaluate import wake
from mergequeue.github import GitHubError, RateLimited, Unavailable
from mergequeue.github_setup import installation_client, repository_github
from mergequeue.models import (
    Installation,
    Notice,
    QueueEntry,
    QueueEntryState,
    Repository,
    utcnow,
)
from mergequeue.queue.effective import QueueMode, effective_settings
from mergequeue.queue.pacing import reconcile_due
from mergequeue.queue.parallel import clean_orphans
from mergequeue.queue.recover import recover_commands, recover_labelled
from mergequeue.queue.store import SqlQueueStore

log = logging.getLogger("mergequeue.reconcile")

# Below this share of its hourly budget, an installation's quiet queues wait.
LOW_BUDGET_SHARE = 0.1


async def reconcile_queues(ctx: dict[str, Any]) -> int:
    """Wake the queues that are due; returns how many were woken."""
    worker = WorkerContext.of(ctx)
    now = utcnow()
    async with worker.database.sessions() as session:
        live = select(QueueEntry.repository_id).where(QueueEntry.state == QueueEntryState.QUEUED)
        owed = select(Notice.repository_id).where(Notice.sent_at.is_(None))
        rows = (
            await session.execute(
                select(Repository, Installation.suspended)
                .outerjoin(Installation, Repository.installation_id == Installation.id)
                .where(or_(Repository.id.in_(live), Repository.id.in_(owed)))
                .order_by(Repository.evaluated_at.asc().nulls_first(), Repository.id)
            )
        ).all()
    woken = 0
    for repository, suspended in rows:
        if suspended:
            continue
        if not reconcile_due(
            evaluated_at=repository.evaluated_at,
            deadline_at=repository.deadline_at,
            now=now,
            budget_low=_budget_low(worker, repository.installation_id),
            quiet_after=timedelta(seconds=worker.settings.RECONCILE_QUIET_SECONDS),
        ):
            continue
        await wake(worker, repository.id)
        woken += 1
    return woken


def _budget_low(worker: WorkerContext, installation_id: int | None) -> bool:
    if worker.github is None:
        return False
    budget = installation_client(worker.github, installation_id).budget()
    return budget is not None and budget.remaining < budget.limit * LOW_BUDGET_SHARE


async def recover_missed_requests(ctx: dict[str, Any]) -> int:
    """Queue labelled pull requests whose `labeled` webhook never arrived, and apply the
    `/mergequeue` commands whose comment webhook never arrived."""
    worker = WorkerContext.of(ctx)
    if worker.github is None:
        return 0
    recovered = 0
    async with worker.database.sessions() as session:
        repositories = (
            await session.scalars(
                select(Repository)
                .join(Installation, Repository.installation_id == Installation.id)
                .where(Installation.suspended.is_(False))
                .order_by(Repository.id)
            )
        ).all()
        for repository in repositories:
            if _budget_low(worker, repository.installation_id):
                continue
            github = repository_github(
                worker.github,
                installation_id=repository.installation_id,
                owner=repository.owner,
                name=repository.name,
            )
            store = SqlQueueStore(session)
            settings = effective_settings(repository, worker.settings)
            try:
                numbers = await recover_labelled(
                    store=store,
                    github=github,
                    repository=repository,
                    settings=settings,
                    clock=utcnow,
                )
                commands = await recover_commands(
                    store=store,
                    github=github,
                    repository=repository,
                    settings=settings,
                    clock=utcnow,
                )
                orphans = []
                if settings.mode == QueueMode.PARALLEL:
                    orphans = await clean_orphans(store, github, repository.id)
            except (RateLimited, Unavailable) as exc:
                log.warning("recovery stopped: GitHub says wait", extra={"why": str(exc)})
                break
            except GitHubError as exc:
                log.warning(
                    "recovery skipped a repository",
                    extra={"repository": repository.full_name, "why": str(exc)},
                )
                continue
            if orphans:
                log.info(
                    "deleted staging branches no build owns",
                    extra={"repository": repository.full_name, "branches": orphans},
                )
            if numbers or commands:
                log.info(
                    "recovered requests a webhook missed",
                    extra={
                        "repository": repository.full_name,
                        "pulls": numbers,
                        "comments": commands,
                    },
                )
                await wake(worker, repository.id)
                recovered += len(numbers) + len(commands)
    return recovered
