"""Deciding the notifications no single event triggers: a queue stuck, a pause that
lasts, a rate limit nearly spent. Run periodically by the worker from the database (and
the GitHub client's last rate-limit answers), so it notices a queue the worker cannot
evaluate; each notification is stored in the transaction that decided it, once per event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mergequeue.models import (
    Installation,
    Notification,
    PullRequest,
    QueueEntry,
    QueueEntryState,
    Repository,
)
from mergequeue.notifications import outbox
from mergequeue.queue.effective import effective_settings, notify_destinations
from mergequeue.queue.ports import Budget
from mergequeue.settings import Settings

# The queue dequeues a head at its CI timeout; still queued this long after, it is stuck
# (the worker cannot evaluate it: GitHub unreachable, the rate limit spent, a crash loop).
STUCK_GRACE: Final = timedelta(minutes=5)
# An installation under this share of its hourly budget is announced (as reconciliation
# then reads only what is due).
LOW_BUDGET_SHARE: Final = 0.1


@dataclass
class Watched:
    stuck: int = 0
    paused: int = 0
    rate_limited: int = 0

    @property
    def stored(self) -> int:
        return self.stuck + self.paused + self.rate_limited


async def watch(
    *,
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    budgets: Mapping[str, Budget],
) -> Watched:
    """Store the notifications now due (a no-op for one stored before); the caller
    commits."""
    watched = Watched()
    live = select(QueueEntry.repository_id).where(QueueEntry.state == QueueEntryState.QUEUED)
    rows = (
        await session.execute(
            select(Repository, Installation.suspended)
            .outerjoin(Installation, Repository.installation_id == Installation.id)
            .where(or_(Repository.paused.is_(True), Repository.id.in_(live)))
            .order_by(Repository.id)
        )
    ).all()
    paused_after = timedelta(seconds=settings.NOTIFY_PAUSED_AFTER_SECONDS)
    for repository, suspended in rows:
        effective = effective_settings(repository, settings)
        if not effective.notify_destinations:
            continue
        if repository.paused:
            paused_at = repository.paused_at
            if paused_at is not None and now - paused_at >= paused_after:
                watched.paused += await _store(
                    session,
                    outbox.for_paused(
                        repository_id=repository.id,
                        full_name=repository.full_name,
                        web_url=effective.web_url,
                        paused_at=paused_at,
                        destinations=effective.notify_destinations,
                        now=now,
                    ),
                )
            continue  # a pause stops the CI timeout's clock: nothing is stuck
        if suspended:
            continue  # a suspended installation waits on purpose
        for entry, number in await _heads(session, repository.id):
            waited = timedelta(seconds=entry.waited_seconds or 0.0)
            if entry.waiting_since is not None:
                waited += now - entry.waiting_since
            if waited <= effective.ci_timeout + STUCK_GRACE:
                continue
            watched.stuck += await _store(
                session,
                outbox.for_stuck(
                    entry_id=entry.id,
                    sha=entry.waiting_sha or "-",
                    repository_id=repository.id,
                    full_name=repository.full_name,
                    web_url=effective.web_url,
                    number=number,
                    base_ref=entry.base_ref,
                    waited=waited,
                    ci_timeout=effective.ci_timeout,
                    destinations=effective.notify_destinations,
                    now=now,
                ),
            )
    # The installation-wide budget concerns the operator: the global URL only.
    everywhere = notify_destinations(None, settings)
    for installation, budget in sorted(budgets.items()):
        if not everywhere or budget.limit <= 0:
            continue
        if budget.remaining >= budget.limit * LOW_BUDGET_SHARE:
            continue
        if budget.reset_at <= now.timestamp():
            continue  # a window that has ended since GitHub last answered
        watched.rate_limited += await _store(
            session,
            outbox.for_rate_limit(
                installation=installation,
                remaining=budget.remaining,
                limit=budget.limit,
                reset_at=budget.reset_at,
                destinations=everywhere,
                now=now,
            ),
        )
    return watched


async def _heads(session: AsyncSession, repository_id: int) -> list[tuple[QueueEntry, int]]:
    rows = await session.execute(
        select(QueueEntry, PullRequest.number)
        .join(PullRequest, QueueEntry.pull_request_id == PullRequest.id)
        .where(
            QueueEntry.repository_id == repository_id,
            QueueEntry.state == QueueEntryState.QUEUED,
        )
        .order_by(QueueEntry.base_ref, QueueEntry.enqueued_at, QueueEntry.id)
    )
    heads: dict[str, tuple[QueueEntry, int]] = {}
    for entry, number in rows.all():
        heads.setdefault(entry.base_ref, (entry, number))
    return list(heads.values())


async def _store(session: AsyncSession, notifications: list[Notification]) -> int:
    """How many were new (0 when the event was stored before)."""
    stored = 0
    for notification in notifications:
        stored += await outbox.add(session, notification)
    return 1 if stored else 0
