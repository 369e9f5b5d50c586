"""The notification jobs: `watch_notifications` decides the notifications no single event
triggers (a stuck queue, a lasting pause, a rate limit nearly spent), and
`send_notifications` sends the outbox (mergequeue.notifications), apart from any queue
evaluation: a failing chat endpoint never slows the queue.
"""

from __future__ import annotations

import logging
from typing import Any

from jobs.context import WorkerContext
from mergequeue.models import utcnow
from mergequeue.notifications.sender import SendReport, http_client, send_due
from mergequeue.notifications.watch import watch
from observability.notifications import PrometheusNotificationEvents

log = logging.getLogger("mergequeue.notifications")

EVENTS = PrometheusNotificationEvents()


async def watch_notifications(ctx: dict[str, Any]) -> int:
    """Store the stuck, paused and rate-limit notifications now due; returns how many."""
    worker = WorkerContext.of(ctx)
    budgets = worker.github.budgets() if worker.github is not None else {}
    async with worker.database.sessions() as session:
        watched = await watch(
            session=session, settings=worker.settings, now=utcnow(), budgets=budgets
        )
        await session.commit()
    if watched.stored:
        log.info(
            "notifications decided",
            extra={
                "stuck": watched.stuck,
                "paused": watched.paused,
                "rate_limited": watched.rate_limited,
            },
        )
    return watched.stored


async def send_notifications(ctx: dict[str, Any]) -> int:
    """Send the notifications that are due; returns how many were sent."""
    worker = WorkerContext.of(ctx)
    async with http_client() as client:
        report: SendReport = await send_due(
            sessions=worker.database.sessions,
            settings=worker.settings,
            client=client,
            clock=utcnow,
            events=EVENTS,
        )
    return report.sent
