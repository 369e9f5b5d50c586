"""Evaluating a repository's queue: read GitHub, decide, act. One evaluation per repository.

arq's job id keeps one `evaluate_queue` per repository queued or running. A wake-up that
arrives while one runs would be refused by that id, so every wake-up also sets a "dirty"
key; the evaluation clears it before reading state and runs again if it was set meanwhile.
A periodic reconciliation wakes every queue that has entries, so even a missed webhook
(or a wake-up lost in the instant between the last check and the job's end) is caught up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, assert_never

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.context import WorkerContext
from jobs.deferral import defer_when_github_says_wait
from mergequeue.github import (
    Conflict,
    GitHubClient,
    GitHubError,
    NotFound,
    NotMergeable,
    RateLimited,
    Unavailable,
    Unprocessable,
)
from mergequeue.github_setup import installation_client
from mergequeue.models import (
    PullRequest,
    QueueEntry,
    QueueEntryState,
    Repository,
    utcnow,
)
from mergequeue.queue.commands import DEFAULT_CI_TIMEOUT_SECONDS, finish
from mergequeue.queue.decide import (
    Action,
    Check,
    Dequeue,
    EntrySnapshot,
    LeaveMerged,
    Merge,
    PullSnapshot,
    QueueConfig,
    SetStatus,
    UpdateBranch,
    decide,
)
from mergequeue.settings import Settings
from mergequeue.tasks import EVALUATE_QUEUE, dirty_key, evaluate_job_id
from observability.metrics import DEQUEUES, MERGES, QUEUE_DEPTH, TIME_TO_MERGE

log = logging.getLogger("mergequeue.queue")

DEFAULT_CI_TIMEOUT = timedelta(seconds=DEFAULT_CI_TIMEOUT_SECONDS)
# A merge or dequeue lets the next entry move at once; bounded so one job cannot spin.
MAX_ROUNDS = 25


async def wake(worker: WorkerContext, repository_id: int) -> None:
    await worker.redis.set(dirty_key(repository_id), b"1")
    await worker.redis.enqueue_job(
        EVALUATE_QUEUE, repository_id, _job_id=evaluate_job_id(repository_id)
    )


async def evaluate_queue(ctx: dict[str, Any], repository_id: int) -> int:
    """Evaluate until nothing changes and no wake-up came in; returns the rounds run."""
    worker = WorkerContext.of(ctx)
    if worker.github is None:
        log.warning("no GitHub credentials configured; the queue cannot act")
        return 0
    rounds = 0
    while rounds < MAX_ROUNDS:
        rounds += 1
        await worker.redis.delete(dirty_key(repository_id))
        changed = await _evaluate_once(ctx, worker, repository_id)
        if not changed and not await worker.redis.exists(dirty_key(repository_id)):
            break
    return rounds


def config_of(repository: Repository, settings: Settings) -> QueueConfig:
    return QueueConfig(
        merge_method=repository.merge_method or settings.MERGE_METHOD.value,
        ci_timeout=timedelta(seconds=repository.ci_timeout_seconds)
        if repository.ci_timeout_seconds
        else DEFAULT_CI_TIMEOUT,
        paused=repository.paused,
    )


async def _evaluate_once(ctx: dict[str, Any], worker: WorkerContext, repository_id: int) -> bool:
    assert worker.github is not None
    changed = False
    async with worker.database.sessions() as session:
        repository = await session.get(Repository, repository_id)
        if repository is None:
            return False
        rows = (
            (
                await session.execute(
                    select(QueueEntry, PullRequest)
                    .join(PullRequest, QueueEntry.pull_request_id == PullRequest.id)
                    .where(
                        QueueEntry.repository_id == repository_id,
                        QueueEntry.state == QueueEntryState.QUEUED,
                    )
                    .order_by(QueueEntry.base_ref, QueueEntry.enqueued_at, QueueEntry.id)
                )
            )
            .tuples()
            .all()
        )
        QUEUE_DEPTH.labels(repository.full_name).set(len(rows))
        heads: dict[str, tuple[QueueEntry, PullRequest]] = {}
        for entry, pr in rows:
            heads.setdefault(entry.base_ref, (entry, pr))

        client = installation_client(worker.github, repository.installation_id)
        config = config_of(repository, worker.settings)
        for entry, pr in heads.values():
            with defer_when_github_says_wait(ctx):
                pull = await read_pull(client, repository, pr.number)
            if pull is not None and pull.base_ref != entry.base_ref and pull.state == "open":
                # Retargeted: it now queues behind the other base branch's entries.
                entry.base_ref = pull.base_ref
                changed = True
                continue
            actions = decide(_entry_snapshot(entry, pr), pull, config, utcnow())
            with defer_when_github_says_wait(ctx):
                changed |= await _execute(worker, session, client, repository, entry, pr, actions)
            await session.commit()
        await session.commit()
    return changed


async def read_pull(
    client: GitHubClient, repository: Repository, number: int
) -> PullSnapshot | None:
    """Everything decide() needs, read fresh from GitHub (never from older webhooks)."""
    owner, name = repository.owner, repository.name
    try:
        pr = await client.get_pull_request(owner=owner, repo=name, number=number)
    except NotFound:
        return None
    runs = await client.list_check_runs(owner=owner, repo=name, ref=pr.head_sha)
    combined = await client.get_combined_status(owner=owner, repo=name, ref=pr.head_sha)
    checks = [Check(r.name, r.status, r.conclusion) for r in runs]
    checks += [
        Check(
            s.context,
            "in_progress" if s.state == "pending" else "completed",
            {"success": "success"}.get(s.state, "failure") if s.state != "pending" else None,
        )
        for s in combined.statuses
    ]
    if repository.required_checks:
        required: Sequence[str] = repository.required_checks
    else:
        protection = await client.get_required_status_checks(
            owner=owner, repo=name, branch=pr.base_ref
        )
        required = sorted(protection.names) if protection else []
    return PullSnapshot(
        number=pr.number,
        state=pr.state,
        merged=pr.merged,
        draft=pr.draft,
        head_sha=pr.head_sha,
        base_ref=pr.base_ref,
        mergeable=pr.mergeable,
        mergeable_state=pr.mergeable_state,
        checks=tuple(checks),
        required=tuple(required),
    )


def _entry_snapshot(entry: QueueEntry, pr: PullRequest) -> EntrySnapshot:
    return EntrySnapshot(
        number=pr.number,
        status=entry.status,
        waiting_sha=entry.waiting_sha,
        waiting_since=entry.waiting_since,
        updated_from_sha=entry.updated_from_sha,
        status_changed_at=entry.status_changed_at,
    )


async def _execute(
    worker: WorkerContext,
    session: AsyncSession,
    client: GitHubClient,
    repository: Repository,
    entry: QueueEntry,
    pr: PullRequest,
    actions: Sequence[Action],
) -> bool:
    """Perform the actions; True when the queue changed (an entry left it)."""
    owner, name, full_name = repository.owner, repository.name, repository.full_name
    label = repository.queue_label or worker.settings.QUEUE_LABEL
    for action in actions:
        match action:
            case SetStatus():
                now = utcnow()
                if entry.status != action.status or entry.status_detail != action.detail:
                    entry.status_changed_at = now
                entry.status = action.status
                entry.status_detail = action.detail
                if action.waiting_sha and action.waiting_sha != entry.waiting_sha:
                    entry.waiting_sha = action.waiting_sha
                    entry.waiting_since = now
                if action.updated_from_sha:
                    entry.updated_from_sha = action.updated_from_sha
            case UpdateBranch():
                try:
                    await client.update_branch(
                        owner=owner,
                        repo=name,
                        number=action.number,
                        expected_head_sha=action.expected_head_sha,
                    )
                except Unprocessable as exc:
                    # Not behind any more, or the head moved: the next evaluation sees it.
                    log.info("update-branch refused", extra={"pr": action.number, "why": str(exc)})
                    entry.updated_from_sha = None
            case Merge():
                # Recorded first: if the answer is lost, the next evaluation finds the pull
                # request merged while "merging" and counts it as the queue's merge.
                await session.commit()
                try:
                    await client.merge(
                        owner=owner,
                        repo=name,
                        number=action.number,
                        method=action.method,  # type: ignore[arg-type]
                        sha=action.sha,
                    )
                except (NotMergeable, Conflict) as exc:
                    # GitHub refused (the head moved, or it is not mergeable after all).
                    entry.status_detail = f"merge refused by GitHub: {exc}"
                    log.info("merge refused", extra={"pr": action.number, "why": str(exc)})
                    continue
                _merged(entry, full_name)
                log.info("merged", extra={"repository": full_name, "pr": action.number})
                return True
            case Dequeue():
                await _tell(client, owner, name, action, label)
                finish(entry, QueueEntryState.DEQUEUED, action.reason.value)
                entry.status_detail = action.comment
                DEQUEUES.labels(full_name, action.reason.value).inc()
                log.info(
                    "dequeued",
                    extra={"repository": full_name, "pr": action.number, "reason": action.reason},
                )
                return True
            case LeaveMerged():
                if entry.status == "merging":
                    _merged(entry, full_name)
                else:
                    finish(entry, QueueEntryState.MERGED, "merged_outside_queue")
                return True
            case _:
                assert_never(action)
    return False


def _merged(entry: QueueEntry, full_name: str) -> None:
    finish(entry, QueueEntryState.MERGED, "merged")
    MERGES.labels(full_name).inc()
    TIME_TO_MERGE.labels(full_name).observe((utcnow() - entry.enqueued_at).total_seconds())


async def _tell(client: GitHubClient, owner: str, name: str, action: Dequeue, label: str) -> None:
    try:
        if action.comment:
            await client.create_comment(
                owner=owner, repo=name, number=action.number, body=action.comment
            )
        if action.remove_label:
            await client.remove_label(owner=owner, repo=name, number=action.number, label=label)
    except (RateLimited, Unavailable):
        raise
    except GitHubError as exc:
        # The stay is over either way; a lost comment must not keep it in the queue.
        log.warning("could not comment or unlabel", extra={"pr": action.number, "why": str(exc)})


async def reconcile_queues(ctx: dict[str, Any]) -> int:
    """Wake every queue with entries: recovers from missed webhooks and lost wake-ups."""
    worker = WorkerContext.of(ctx)
    async with worker.database.sessions() as session:
        ids = (
            await session.scalars(
                select(QueueEntry.repository_id)
                .where(QueueEntry.state == QueueEntryState.QUEUED)
                .distinct()
            )
        ).all()
    for repository_id in ids:
        await wake(worker, repository_id)
    return len(ids)
