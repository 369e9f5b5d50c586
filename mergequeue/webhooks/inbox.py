"""The durable inbox: deliveries stored before GitHub gets an answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mergequeue.models import DeliveryState, WebhookDelivery, utcnow


@dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    action: str | None
    installation_id: int | None
    repository_full_name: str | None
    payload: str


async def unprocessed(
    session: AsyncSession, *, received_before: datetime, attempted_before: datetime, limit: int
) -> Sequence[tuple[str, int]]:
    """(id, attempts) of deliveries to enqueue again: never started, or stalled."""
    rows = await session.execute(
        select(WebhookDelivery.id, WebhookDelivery.attempts)
        .where(
            WebhookDelivery.state == DeliveryState.RECEIVED,
            or_(
                and_(WebhookDelivery.attempts == 0, WebhookDelivery.received_at < received_before),
                WebhookDelivery.attempted_at < attempted_before,
            ),
        )
        .order_by(WebhookDelivery.received_at)
        .limit(limit)
    )
    return [(delivery_id, attempts) for delivery_id, attempts in rows.tuples()]


async def count_attempt(session: AsyncSession, delivery_id: str) -> int | None:
    """Count a processing attempt (committed on its own, so a crash still counts)."""
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.state == DeliveryState.RECEIVED)
        .values(attempts=WebhookDelivery.attempts + 1, attempted_at=utcnow())
    )
    return await session.scalar(
        select(WebhookDelivery.attempts).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.state == DeliveryState.RECEIVED
        )
    )


def ago(interval: timedelta) -> datetime:
    return utcnow() - interval
