"""One evaluation of one repository's queue: send what is owed, then, for the head of each
base branch, read GitHub, decide and act, until nothing changes.

Everything outside comes in: the store (database or memory), GitHub (REST adapter or the
fake), the clock and the metrics hooks, so the simulation drives exactly this code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import cast

from mergequeue.models import QueueEntry, Repository
from mergequeue.queue import notices
from mergequeue.queue.decide import BLOCKED_GRACE, CONFIRMING, EntryStatus, QueueConfig, decide
from mergequeue.queue.effective import EffectiveSettings, QueueMode
from mergequeue.queue.executor import Executor, QueueEvents, Target, entry_snapshot
from mergequeue.queue.parallel import ParallelBranch, drop_builds
from mergequeue.queue.ports import RepositoryGitHub, ShowingGitHub, StagingGitHub
from mergequeue.queue.publish import show_queue, voucher
from mergequeue.queue.snapshot import read_snapshot
from mergequeue.queue.store import QueueStore

log = logging.getLogger("mergequeue.queue")

# A merge or dequeue lets the next entry move at once; bounded so one evaluation cannot spin.
MAX_ROUNDS = 25


@dataclass(frozen=True)
class Evaluation:
    rounds: int
    # Entries that waited on an earlier, unapplied delivery (its processing wakes the queue).
    held: int


async def evaluate(
    *,
    store: QueueStore,
    github: RepositoryGitHub,
    repository: Repository,
    settings: EffectiveSettings,
    events: QueueEvents,
    clock: Callable[[], datetime],
) -> Evaluation:
    """Evaluate until nothing changes; records when it ran and its next deadline."""
    target = Target(
        repository.id,
        repository.full_name,
        settings.queue_label,
        notify=settings.notify_destinations,
        web_url=settings.web_url,
    )
    showing = cast(ShowingGitHub, github)
    executor = Executor(store, github, target, events, clock)
    config = QueueConfig(
        merge_method=settings.merge_method.value,
        ci_timeout=settings.ci_timeout,
        paused=settings.paused,
    )
    await notices.send(store=store, github=github, repository_id=repository.id, clock=clock)
    if settings.mode != QueueMode.PARALLEL:
        await drop_builds(store, cast(StagingGitHub, github), executor, repository.id)
    rounds = held = 0
    changed = True
    parallel_deadlines: list[datetime] = []
    while changed and rounds < MAX_ROUNDS:
        rounds += 1
        changed = False
        held = 0
        if settings.mode == QueueMode.PARALLEL:
            staging = cast(StagingGitHub, github)
            branch = ParallelBranch(store, staging, executor, settings, clock, voucher(showing))
            parallel_deadlines = []
            by_base = _by_base(await store.queued(repository.id))
            for build in await store.active_builds(repository.id):
                # A branch whose queue emptied still has builds to drop.
                by_base.setdefault(build.base_ref, [])
            for base_ref, rows in by_base.items():
                newest = rows[-1][0].enqueued_at if rows else None
                if newest and await store.earlier_delivery_pending(repository.full_name, newest):
                    # As in serial mode: a delivery being applied may queue something ahead;
                    # building before it lands would only build what is then rebuilt.
                    held += 1
                    continue
                outcome = await branch.round(base_ref, rows)
                changed |= outcome.changed
                if outcome.deadline is not None:
                    parallel_deadlines.append(outcome.deadline)
            if changed:
                await notices.send(
                    store=store, github=github, repository_id=repository.id, clock=clock
                )
            continue
        rows = await store.queued(repository.id)
        _reset_displaced(rows)
        for entry, number in _heads(rows):
            if await store.earlier_delivery_pending(repository.full_name, entry.enqueued_at):
                # First in, first out across processes: an earlier delivery may queue
                # something ahead of this entry. Its processing wakes the queue again.
                held += 1
                continue
            pull = await read_snapshot(github, number, settings.required_checks)
            if pull is not None and pull.state == "open" and pull.base_ref != entry.base_ref:
                # Retargeted: it now queues behind the other base branch's entries.
                entry.base_ref = pull.base_ref
                changed = True
                continue
            # A freeze may hold one base branch: each head is judged by its own.
            on_base = replace(config, frozen=settings.frozen(clock(), entry.base_ref))
            actions = decide(entry_snapshot(entry, number), pull, on_base, clock())
            changed |= await executor.run(entry, number, actions)
            if entry.status == CONFIRMING and pull is not None and pull.own_check_required:
                # GitHub may be blocking only for want of the queue's own check: show the
                # head as tested now, and look again.
                shown = await show_queue(
                    store=store,
                    github=showing,
                    repository_id=repository.id,
                    status_comments=settings.status_comments,
                    clock=clock,
                )
                changed |= shown > 0
            await store.commit()
        if changed:
            await notices.send(store=store, github=github, repository_id=repository.id, clock=clock)
    await show_queue(
        store=store,
        github=showing,
        repository_id=repository.id,
        status_comments=settings.status_comments,
        clock=clock,
    )
    now = clock()
    repository.evaluated_at = now
    if settings.mode == QueueMode.PARALLEL:
        deadline = min(parallel_deadlines) if parallel_deadlines else None
    else:
        deadline = _next_deadline(await store.queued(repository.id), config, now)
    freeze_turns = settings.freeze_changes_at(now)
    if freeze_turns is not None and (deadline is None or freeze_turns < deadline):
        deadline = freeze_turns + timedelta(seconds=1)
    repository.deadline_at = deadline
    await store.commit()
    return Evaluation(rounds=rounds, held=held)


def _by_base(rows: list[tuple[QueueEntry, int]]) -> dict[str, list[tuple[QueueEntry, int]]]:
    by_base: dict[str, list[tuple[QueueEntry, int]]] = {}
    for entry, number in rows:
        by_base.setdefault(entry.base_ref, []).append((entry, number))
    return by_base


def _reset_displaced(rows: list[tuple[QueueEntry, int]]) -> None:
    """An entry that was the head and no longer is (an urgent one went ahead of it) waits
    its turn again: its CI timeout starts afresh when it is the head again."""
    heads = {id(entry) for entry, _ in _heads(rows)}
    for entry, _ in rows:
        if id(entry) not in heads and entry.waiting_since is not None:
            entry.status = EntryStatus.WAITING
            entry.status_detail = "an urgent pull request went ahead of it"
            entry.waiting_sha = entry.updated_from_sha = None
            entry.waiting_since = None
            entry.waited_seconds = 0.0


def _heads(rows: list[tuple[QueueEntry, int]]) -> list[tuple[QueueEntry, int]]:
    heads: dict[str, tuple[QueueEntry, int]] = {}
    for entry, number in rows:
        heads.setdefault(entry.base_ref, (entry, number))
    return list(heads.values())


def _next_deadline(
    rows: list[tuple[QueueEntry, int]], config: QueueConfig, now: datetime
) -> datetime | None:
    """When a head's decision falls due without any webhook: its CI timeout, or the end of
    the grace given to a "blocked" answer."""
    deadlines: list[datetime] = []
    for entry, _ in _heads(rows):
        if entry.status == CONFIRMING and entry.status_changed_at is not None:
            deadlines.append(entry.status_changed_at + BLOCKED_GRACE + timedelta(seconds=1))
        if entry.waiting_since is not None:
            left = config.ci_timeout - timedelta(seconds=entry.waited_seconds or 0.0)
            deadlines.append(entry.waiting_since + left + timedelta(seconds=1))
    return min(deadlines) if deadlines else None
