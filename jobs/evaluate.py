"""The `evaluate_queue` job: one repository's queue, evaluated by the engine.

arq's job id keeps one `evaluate_queue` per repository queued or running. A wake-up that
arrives while one runs would be refused by that id, so every wake-up also sets a "dirty"
key; the job clears it before evaluating and evaluates again if it was set meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import func, select

from jobs.context import WorkerContext
from jobs.deferral import defer_when_github_says_wait
from mergequeue.github import GitHubClient
from mergequeue.github.models import may_write_actions
from mergequeue.github_setup import installation_client, repository_github
from mergequeue.models import Installation, QueueEntry, QueueEntryState, Repository, utcnow
from mergequeue.queue.effective import effective_settings
from mergequeue.queue.engine import Evaluation, evaluate
from mergequeue.queue.store import SqlQueueStore
from mergequeue.tasks import EVALUATE_QUEUE, dirty_key, evaluate_job_id
from observability.queue import (
    PrometheusQueueEvents,
    observe_queue_depth,
    observe_queue_paused,
)

log = logging.getLogger("mergequeue.queue")

# Wake-ups that arrive during an evaluation are honoured this many times in one job.
MAX_PASSES = 10
HELD_RETRY_SECONDS = 0.5
EVENTS = PrometheusQueueEvents()


async def wake(worker: WorkerContext, repository_id: int) -> None:
    await worker.redis.set(dirty_key(repository_id), b"1")
    await worker.redis.enqueue_job(
        EVALUATE_QUEUE, repository_id, _job_id=evaluate_job_id(repository_id)
    )


async def evaluate_queue(ctx: dict[str, Any], repository_id: int) -> int:
    """Evaluate until no wake-up came in meanwhile; returns the passes run."""
    worker = WorkerContext.of(ctx)
    if worker.github is None:
        log.warning("no GitHub credentials configured; the queue cannot act")
        return 0
    passes = 0
    while passes < MAX_PASSES:
        passes += 1
        await worker.redis.delete(dirty_key(repository_id))
        evaluation = await _evaluate(ctx, worker, repository_id)
        if evaluation is None:
            break
        if evaluation.held:
            # A head waits on an earlier delivery that another worker is applying (it
            # takes milliseconds): look again shortly rather than at reconciliation.
            await asyncio.sleep(HELD_RETRY_SECONDS)
            continue
        if not await worker.redis.exists(dirty_key(repository_id)):
            break
    return passes


async def _evaluate(
    ctx: dict[str, Any], worker: WorkerContext, repository_id: int
) -> Evaluation | None:
    """One evaluation; None when there is nothing to evaluate (gone, or suspended)."""
    assert worker.github is not None
    async with worker.database.sessions() as session:
        repository = await session.get(Repository, repository_id)
        if repository is None:
            return None
        installation = None
        if repository.installation_id is not None:
            installation = await session.get(Installation, repository.installation_id)
            if installation is not None and installation.suspended:
                # A suspended installation must not act; its queue waits for unsuspend.
                log.info("installation suspended", extra={"repository": repository.full_name})
                return None
        github = repository_github(
            worker.github,
            installation_id=repository.installation_id,
            owner=repository.owner,
            name=repository.name,
        )
        with defer_when_github_says_wait(ctx):
            evaluation = await evaluate(
                store=SqlQueueStore(session),
                github=github,
                repository=repository,
                settings=effective_settings(repository, worker.settings, installation),
                events=EVENTS,
                clock=utcnow,
            )
        if installation is not None and _note_granted(
            installation, installation_client(worker.github, installation.id)
        ):
            await session.commit()
        depth = await session.scalar(
            select(func.count())
            .select_from(QueueEntry)
            .where(
                QueueEntry.repository_id == repository_id,
                QueueEntry.state == QueueEntryState.QUEUED,
            )
        )
        observe_queue_depth(repository.full_name, int(depth or 0))
        observe_queue_paused(repository.full_name, repository.paused)
    return evaluation


def _note_granted(installation: Installation, client: GitHubClient) -> bool:
    """Keep whether the installation granted `actions: write` as its current token says:
    the freshest word, and exactly what the calls made with that token may do (a
    permission accepted since takes effect with the next token, within the hour). True
    when it changed (to be committed)."""
    granted = client.granted_permissions()
    if granted is None:
        return False
    actions_write = may_write_actions(granted)
    if installation.actions_write == actions_write:
        return False
    installation.actions_write = actions_write
    log.info(
        "installation permissions changed",
        extra={"installation": installation.id, "actions_write": actions_write},
    )
    return True
