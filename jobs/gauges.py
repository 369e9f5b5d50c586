"""`refresh_gauges`: the state gauges (queue depths, inbox backlog) read from the record.

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
from observability.metrics import ARQ_QUEUE_DEPTH, QUEUE_DEPTH, WEBHOOK_INBOX_PENDING


async def refresh_gauges(ctx: dict[str, Any]) -> None:
    worker = WorkerContext.of(ctx)
    queue_name: str = ctx.get("queue_name", "arq:queue")
    ARQ_QUEUE_DEPTH.labels(queue_name).set(await worker.redis.zcard(queue_name))

    async with worker.database.sessions() as session:
        depth_rows = await session.execute(
            select(Repository.owner, Repository.name, func.count(QueueEntry.id))
            .outerjoin(
                QueueEntry,
                (QueueEntry.repository_id == Repository.id)
                & (QueueEntry.state == QueueEntryState.QUEUED),
            )
            .group_by(Repository.id, Repository.owner, Repository.name)
        )
        pending = await session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.state == DeliveryState.RECEIVED)
        )

    seen: set[str] = set()
    for owner, name, depth in depth_rows.tuples():
        repository = f"{owner}/{name}"
        seen.add(repository)
        QUEUE_DEPTH.labels(repository).set(depth)
    # Repositories that left (uninstalled) stop being exported instead of freezing.
    for labels in list(_exported_repositories()):
        if labels not in seen:
            QUEUE_DEPTH.remove(labels)
    WEBHOOK_INBOX_PENDING.labels(DeliveryState.RECEIVED.value).set(pending or 0)


def _exported_repositories() -> set[str]:
    return {sample.labels["repository"] for m in QUEUE_DEPTH.collect() for sample in m.samples}
