"""Group commit of the inbox (mergequeue.webhooks.writer) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import DBAPIError

from mergequeue.db import DATABASE_DOWN, Database, create_database
from mergequeue.models import DeliveryState, WebhookDelivery
from mergequeue.webhooks.inbox import Delivery
from mergequeue.webhooks.writer import InboxWriter


def delivery(delivery_id: str) -> Delivery:
    return Delivery(
        id=delivery_id,
        event="check_run",
        action="completed",
        installation_id=7,
        repository_full_name="acme/widgets",
        payload='{"action": "completed"}',
    )


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = create_database(database_url)
    yield database
    await database.dispose()


def count_commits(database: Database) -> list[int]:
    commits = [0]

    @event.listens_for(database.engine.sync_engine, "commit")
    def _commit(connection: object) -> None:
        commits[0] += 1

    return commits


async def stored(database: Database) -> list[WebhookDelivery]:
    async with database.sessions() as session:
        rows = await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.received_at))
        return list(rows)


async def test_concurrent_deliveries_are_all_stored_in_few_transactions(
    database: Database,
) -> None:
    writer = InboxWriter(database)
    commits = count_commits(database)
    answers = await asyncio.gather(*(writer.store(delivery(f"d-{i}")) for i in range(40)))
    assert answers == [True] * 40
    rows = await stored(database)
    assert sorted(r.id for r in rows) == sorted(f"d-{i}" for i in range(40))
    assert all(r.state == DeliveryState.RECEIVED and r.attempts == 0 for r in rows)
    assert commits[0] == 1  # one transaction for all forty


async def test_received_order_is_the_order_of_arrival(database: Database) -> None:
    writer = InboxWriter(database, max_batch=4)
    ids = [f"order-{i:02d}" for i in range(12)]
    await asyncio.gather(*(writer.store(delivery(i)) for i in ids))
    assert [r.id for r in await stored(database)] == ids


async def test_a_duplicate_in_the_same_batch_and_a_later_redelivery_are_not_new(
    database: Database,
) -> None:
    writer = InboxWriter(database)
    first, twin = await asyncio.gather(
        writer.store(delivery("same")), writer.store(delivery("same"))
    )
    assert (first, twin) == (True, False)
    assert await writer.store(delivery("same")) is False
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1


async def test_one_delivery_that_cannot_be_stored_does_not_fail_the_others(
    postgres_url: str,
) -> None:
    # PostgreSQL enforces the id column's length (SQLite does not); the route never sends
    # such an id, which makes it a clean stand-in for "this one row is wrong".
    database = create_database(postgres_url)
    try:
        writer = InboxWriter(database)
        good = [writer.store(delivery(f"ok-{i}")) for i in range(5)]
        bad = writer.store(delivery("x" * 65))
        outcomes = await asyncio.gather(*good, bad, return_exceptions=True)
        assert outcomes[:5] == [True] * 5
        assert isinstance(outcomes[5], DBAPIError)
        assert not isinstance(outcomes[5], DATABASE_DOWN)
        assert sorted(r.id for r in await stored(database)) == [f"ok-{i}" for i in range(5)]
    finally:
        await database.dispose()


async def test_an_unreachable_database_fails_every_waiting_delivery_as_unavailable(
    unused_tcp_port: int,
) -> None:
    database = create_database(f"postgresql+asyncpg://nobody@127.0.0.1:{unused_tcp_port}/none")
    try:
        writer = InboxWriter(database)
        outcomes = await asyncio.gather(
            *(writer.store(delivery(f"lost-{i}")) for i in range(3)), return_exceptions=True
        )
        assert all(isinstance(o, DATABASE_DOWN) for o in outcomes), outcomes
    finally:
        await database.dispose()


async def test_close_waits_for_deliveries_already_handed_over(database: Database) -> None:
    writer = InboxWriter(database)
    pending = [asyncio.ensure_future(writer.store(delivery(f"c-{i}"))) for i in range(10)]
    await asyncio.sleep(0)
    await writer.close()
    assert all(p.done() for p in pending)
    assert len(await stored(database)) == 10
