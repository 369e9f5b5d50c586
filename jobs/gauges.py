"""`refresh_gauges`: the state gauges (queue depths, paused queues, inbox backlog) read
from the record.

The database and Redis are the record; the gauges are a periodic reading of them, so a
worker restart or a second worker never leaves them wrong for long.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from jobs.context import WorkerContext
from mergequeue.models import (
    DeliveryState,
    QueueEntry,
    QueueEntryState,
    Repository,
    WebhookDelivery,
)
from observability.metrics import (
    ARQ_QUEUE_DEPTH,
    QUEUE_DEPTH,
    QUEUE_PAUSED,
    WEBHOOK_INBOX_PENDING,
)
from observability.queue import forget_repositories_except


async def refresh_gauges(ctx: dict[str, Any]) -> None:
    worker = WorkerContext.of(ctx)
    queue_name: str = ctx.get("queue_name", "arq:queue")
    ARQ_QUEUE_DEPTH.labels(queue_name).set(await worker.redis.zcard(queue_name))

    async with worker.database.sessions() as session:
        depth_rows = await session.execute(
            select(Repository.owner, Repository.name, Repository.paused, func.count(QueueEntry.id))
            .outerjoin(
                QueueEntry,
                (QueueEntry.repository_id == Repository.id)
                & (QueueEntry.state == QueueEntryState.QUEUED),
            )
            .group_by(Repository.id, Repository.owner, Repository.name, Repository.paused)
        )
        pending = await session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.state == DeliveryState.RECEIVED)
        )

    seen: set[str] = set()
    for owner, name, paused, depth in depth_rows.tuples():
        repository = f"{owner}/{name}"
        seen.add(repository)
        QUEUE_DEPTH.labels(repository).set(depth)
        QUEUE_PAUSED.labels(repository).set(1 if paused else 0)
    # Repositories that left (uninstalled) stop being exported instead of freezing.
    forget_repositories_except(seen)
    WEBHOOK_INBOX_PENDING.labels(DeliveryState.RECEIVED.value).set(pending or 0)
