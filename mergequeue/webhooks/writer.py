"""Group commit for the inbox: deliveries that arrive together share one transaction.

Every delivery must be durable before GitHub gets its answer, and a commit per delivery
made the web process spend most of its time in transaction overhead (a pool checkout, a
pre-ping, BEGIN, INSERT, COMMIT) rather than in the work. Here each request hands its
delivery to the writer and waits for its own answer; under load one
INSERT ... ON CONFLICT DO NOTHING RETURNING and one commit cover many deliveries, and an
idle service writes each delivery at once, as before.

Only a failure of the database as a whole fails a batch. Any other error is retried row
by row, so one delivery that cannot be stored never costs the others their answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from mergequeue.batching import Batcher
from mergequeue.db import DATABASE_DOWN, Database
from mergequeue.models import DeliveryState, WebhookDelivery, utcnow
from mergequeue.upsert import dialect_insert
from mergequeue.webhooks.inbox import Delivery

# Bounds one transaction's size (payloads are up to 25 MiB each, usually a few KiB).
MAX_BATCH = 64


@dataclass(frozen=True)
class _Received:
    delivery: Delivery
    received_at: datetime


class InboxWriter:
    """`await writer.store(delivery)` is True once a new delivery is committed, False when
    one with the same id was already stored; it raises one of DATABASE_DOWN when the
    database is unavailable."""

    def __init__(self, database: Database, *, max_batch: int = MAX_BATCH) -> None:
        self._database = database
        self._batcher: Batcher[_Received, bool] = Batcher(self._write, max_batch=max_batch)

    async def store(self, delivery: Delivery) -> bool:
        # Stamped on arrival, not when its batch is written, so the inbox keeps the order
        # in which GitHub's deliveries reached us.
        return await self._batcher.submit(_Received(delivery, utcnow()))

    async def close(self) -> None:
        """Wait for deliveries already handed over (called before the engine closes)."""
        await self._batcher.drain()

    async def _write(self, batch: list[_Received]) -> Sequence[bool | BaseException]:
        try:
            async with self._database.engine.begin() as connection:
                inserted = await insert_deliveries(connection, [_row(r) for r in batch])
        except DATABASE_DOWN as exc:
            return [exc] * len(batch)
        except Exception as exc:
            if len(batch) == 1:
                # Neither an outage nor the batch: this delivery itself cannot be stored,
                # and its request fails loudly rather than passing for an outage.
                return [exc]
            outcomes: list[bool | BaseException] = []
            for one in batch:
                outcomes.extend(await self._write([one]))
            return outcomes
        return _new_or_duplicate(batch, inserted)


def _row(received: _Received) -> dict[str, object]:
    delivery = received.delivery
    return {
        "id": delivery.id,
        "event": delivery.event,
        "action": delivery.action,
        "installation_id": delivery.installation_id,
        "repository_full_name": delivery.repository_full_name,
        "payload": delivery.payload,
        "state": DeliveryState.RECEIVED,
        "attempts": 0,
        "received_at": received.received_at,
    }


async def insert_deliveries(
    connection: AsyncConnection, rows: Sequence[dict[str, object]]
) -> set[str]:
    """Insert the rows that are new; the ids inserted."""
    statement = (
        dialect_insert(connection.dialect.name, WebhookDelivery)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(WebhookDelivery.id)
    )
    # executemany with RETURNING: SQLAlchemy turns it into multi-row INSERTs
    # ("insertmanyvalues") from one compiled, cached statement.
    result = await connection.execute(statement, list(rows))
    return set(result.scalars().all())


def _new_or_duplicate(batch: list[_Received], inserted: set[str]) -> list[bool]:
    # The same id twice in one batch: the first is the new one, later ones duplicates.
    seen: set[str] = set()
    outcomes = []
    for received in batch:
        delivery_id = received.delivery.id
        outcomes.append(delivery_id in inserted and delivery_id not in seen)
        seen.add(delivery_id)
    return outcomes
