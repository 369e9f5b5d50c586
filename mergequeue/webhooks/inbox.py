"""The durable inbox: deliveries stored before GitHub gets an answer."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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


# The database's integer columns are 64-bit; GitHub's ids and numbers all fit.
_INT_RANGE = range(-(2**63), 2**63)


class UnprocessablePayload(ValueError):
    """A stored payload holds a value no processing can ever use: parked at once."""


def load_payload(text: str) -> Any:
    """The stored payload, decoded, or UnprocessablePayload naming the first value that
    could never be processed: NaN or Infinity, an integer beyond 64 bits, a string with
    NUL or a lone surrogate (the database refuses those), or nesting past the parser."""

    def no_constants(constant: str) -> Any:
        raise UnprocessablePayload(f"{constant} is not a JSON value")

    try:
        payload = json.loads(text, parse_constant=no_constants)
    except RecursionError:
        raise UnprocessablePayload("the payload nests too deeply to decode") from None
    except UnprocessablePayload:
        raise
    except ValueError as exc:
        raise UnprocessablePayload(f"the payload is not JSON: {exc}") from None
    pending: list[tuple[str, Any]] = [("$", payload)]
    while pending:
        where, value = pending.pop()
        problem = _problem(value)
        if problem is not None:
            raise UnprocessablePayload(f"{where}: {problem}")
        if isinstance(value, dict):
            for key, item in value.items():
                key_problem = _problem(key)
                if key_problem is not None:
                    raise UnprocessablePayload(f"{where}: a key {key_problem}")
                pending.append((f"{where}.{key}"[:200], item))
        elif isinstance(value, list):
            pending.extend((f"{where}[{i}]"[:200], item) for i, item in enumerate(value))
    return payload


def _problem(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value not in _INT_RANGE:
        return f"integer {str(value)[:30]} is beyond 64 bits"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if isinstance(value, str):
        if "\x00" in value:
            return "string contains a NUL character"
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            return "string contains a lone surrogate (invalid Unicode)"
    return None


async def parked(session: AsyncSession, *, limit: int) -> Sequence[WebhookDelivery]:
    """Deliveries given up on (state failed), the latest first, with their errors."""
    rows = await session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.state == DeliveryState.FAILED)
        .order_by(WebhookDelivery.received_at.desc())
        .limit(limit)
    )
    return rows.all()


def ago(interval: timedelta) -> datetime:
    return utcnow() - interval


async def listed(
    session: AsyncSession, *, state: DeliveryState | None, limit: int
) -> Sequence[WebhookDelivery]:
    """Stored deliveries, the latest first, in one state or all."""
    query = select(WebhookDelivery).order_by(WebhookDelivery.received_at.desc(), WebhookDelivery.id)
    if state is not None:
        query = query.where(WebhookDelivery.state == state)
    return (await session.scalars(query.limit(limit))).all()


async def reset_for_replay(session: AsyncSession, delivery_id: str) -> bool:
    """Put a stored delivery back to `received` with no attempts (to be processed again,
    e.g. once the bug that parked it is fixed); False when no such delivery is stored."""
    result = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(
            state=DeliveryState.RECEIVED,
            attempts=0,
            attempted_at=None,
            error=None,
            processed_at=None,
        )
    )
    return bool(getattr(result, "rowcount", 0))
