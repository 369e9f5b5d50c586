"""Deciding notifications: what the queue stores in the outbox, once per event and
destination, with a simulated clock (sending is tests/notifications/test_sender.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mergequeue.db import create_database
from mergequeue.models import (
    Base,
    Installation,
    Notification,
    NotificationDestination,
    PullRequest,
    QueueEntry,
    QueueEntryState,
    Repository,
)
from mergequeue.notifications import outbox
from mergequeue.notifications.watch import STUCK_GRACE, watch
from mergequeue.queue import commands
from mergequeue.queue.ports import Budget
from mergequeue.queue.store import SqlQueueStore
from mergequeue.settings import Settings, load_settings
from tests.queue.harness import Harness

GLOBAL_URL = "https://hooks.example.com/services/T0/B0/global-secret"
REPO_URL = "https://chat.example.org/hooks/repo-secret"
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
CI_TIMEOUT = timedelta(hours=1)


def settings(**environ: str) -> Settings:
    return load_settings({"NOTIFY_WEBHOOK_URL": GLOBAL_URL, **environ})


# --- a dequeue, decided by the queue's evaluation ---------------------------------------


async def test_a_dequeue_stores_one_notification_per_destination_with_why_and_a_link() -> None:
    h = Harness(settings=settings())
    h.configure(notify_webhook_url=REPO_URL)
    number = h.open_pull()
    await h.label(number)
    h.ci(number, "failure")
    await h.evaluate()

    entry = h.entry(number)
    assert entry.state == QueueEntryState.DEQUEUED
    rows = h.store.notifications
    assert {(n.key, n.destination) for n in rows} == {
        (f"dequeue:{entry.id}", NotificationDestination.GLOBAL),
        (f"dequeue:{entry.id}", NotificationDestination.REPOSITORY),
    }
    [text] = {n.text for n in rows}
    assert f"acme/widgets#{number} left the merge queue without merging (check_failed)" in text
    assert "required check failed: ci" in text  # the comment's text, quoted
    assert text.endswith(f"https://github.com/acme/widgets/pull/{number}")


async def test_evaluating_again_after_a_dequeue_stores_nothing_more() -> None:
    h = Harness(settings=settings())
    number = h.open_pull()
    await h.label(number)
    h.ci(number, "failure")
    await h.evaluate()
    await h.evaluate()
    assert [n.key for n in h.store.notifications] == [f"dequeue:{h.entry(number).id}"]


async def test_with_no_url_configured_nothing_is_stored() -> None:
    h = Harness(settings=load_settings({}))
    number = h.open_pull()
    await h.label(number)
    h.ci(number, "failure")
    await h.evaluate()
    assert h.entry(number).state == QueueEntryState.DEQUEUED
    assert h.store.notifications == []


async def test_a_dequeue_people_asked_for_is_not_announced() -> None:
    h = Harness(settings=settings())
    number = h.open_pull()
    await h.label(number)
    await h.store.dequeue(h.repository, number, reason="label_removed", remove_label=None)
    await h.evaluate()
    assert h.store.notifications == []


# --- the database: keys, stuck, paused, rate limit ---------------------------------------


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[AsyncSession]:
    database = create_database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with database.sessions() as session:
        yield session
    await database.dispose()


async def seed(session: AsyncSession, *, waiting_since: datetime | None = T0) -> QueueEntry:
    session.add(Installation(id=7, account_login="acme"))
    session.add(Repository(id=1, owner="acme", name="widgets", installation_id=7))
    await session.flush()
    pull = PullRequest(repository_id=1, number=12, head_sha="abc123", base_ref="main")
    session.add(pull)
    await session.flush()
    entry = QueueEntry(
        repository_id=1,
        pull_request_id=pull.id,
        base_ref="main",
        status="waiting_for_checks",
        waiting_sha="abc123",
        waiting_since=waiting_since,
        enqueued_at=T0,
    )
    session.add(entry)
    await session.commit()
    return entry


async def stored(session: AsyncSession) -> list[Notification]:
    return list((await session.scalars(select(Notification).order_by(Notification.id))).all())


async def test_the_same_event_is_stored_once_per_destination(session: AsyncSession) -> None:
    await seed(session)
    store = SqlQueueStore(session)
    for _ in range(2):
        for notification in outbox.for_dequeue(
            entry_id=1,
            repository_id=1,
            full_name="acme/widgets",
            web_url="https://github.com/acme/widgets",
            number=12,
            reason="check_failed",
            comment="The required check failed: ci",
            destinations=(NotificationDestination.GLOBAL, NotificationDestination.REPOSITORY),
            now=T0,
        ):
            await store.add_notification(notification)
        await session.commit()
    rows = await stored(session)
    assert sorted((n.key, n.destination.value) for n in rows) == [
        ("dequeue:1", "global"),
        ("dequeue:1", "repository"),
    ]


async def watch_at(session: AsyncSession, now: datetime, **budgets: Budget) -> int:
    watched = await watch(session=session, settings=settings(), now=now, budgets=budgets)
    await session.commit()
    return watched.stored


async def test_a_head_waiting_past_its_ci_timeout_is_announced_stuck_once(
    session: AsyncSession,
) -> None:
    entry = await seed(session)
    # At the timeout the queue dequeues it itself: not stuck yet.
    assert await watch_at(session, T0 + CI_TIMEOUT) == 0
    assert await watch_at(session, T0 + CI_TIMEOUT + STUCK_GRACE) == 0
    later = T0 + CI_TIMEOUT + STUCK_GRACE + timedelta(seconds=1)
    assert await watch_at(session, later) == 1
    assert await watch_at(session, later + timedelta(minutes=10)) == 0
    [row] = await stored(session)
    assert row.key == f"stuck:{entry.id}:abc123"
    assert row.event == "stuck"
    assert "acme/widgets (main) looks stuck" in row.text
    assert "https://github.com/acme/widgets/pull/12" in row.text


async def test_the_stuck_clock_counts_unpaused_waiting_only(session: AsyncSession) -> None:
    entry = await seed(session, waiting_since=None)
    entry.waited_seconds = CI_TIMEOUT.total_seconds()  # waited before a pause, clock stopped
    await session.commit()
    assert await watch_at(session, T0 + timedelta(days=1)) == 0
    entry.waiting_since = T0
    await session.commit()
    assert await watch_at(session, T0 + STUCK_GRACE + timedelta(seconds=1)) == 1


async def test_a_new_head_sha_is_a_new_stuck_event(session: AsyncSession) -> None:
    entry = await seed(session)
    late = T0 + CI_TIMEOUT + STUCK_GRACE + timedelta(minutes=1)
    assert await watch_at(session, late) == 1
    entry.waiting_sha, entry.waiting_since, entry.waited_seconds = "def456", late, 0.0
    await session.commit()
    assert await watch_at(session, late + CI_TIMEOUT) == 0
    assert await watch_at(session, late + CI_TIMEOUT + STUCK_GRACE + timedelta(minutes=1)) == 1
    assert [n.key for n in await stored(session)] == [
        f"stuck:{entry.id}:abc123",
        f"stuck:{entry.id}:def456",
    ]


async def test_a_pause_longer_than_notify_paused_after_is_announced_once_per_pause(
    session: AsyncSession,
) -> None:
    await seed(session)
    repository = await session.get(Repository, 1)
    assert repository is not None
    await commands.set_paused(session=session, repository=repository, paused=True)
    await session.commit()
    paused_at = repository.paused_at
    assert paused_at is not None
    assert await watch_at(session, paused_at + timedelta(minutes=59)) == 0
    assert await watch_at(session, paused_at + timedelta(hours=1)) == 1
    # Paused, a head is never stuck however long it waits: the pause stops its clock.
    assert await watch_at(session, paused_at + timedelta(days=2)) == 0
    [row] = await stored(session)
    assert row.key == f"paused:1:{int(paused_at.timestamp())}"
    assert "acme/widgets has been paused for 60 min" in row.text

    await commands.set_paused(session=session, repository=repository, paused=False)
    assert repository.paused_at is None
    await commands.set_paused(session=session, repository=repository, paused=True)
    repository.paused_at = paused_at + timedelta(hours=3)  # a second pause, later
    await session.commit()
    assert await watch_at(session, paused_at + timedelta(hours=4)) == 1
    assert len(await stored(session)) == 2


async def test_notify_paused_after_seconds_sets_when_a_pause_is_announced(
    session: AsyncSession,
) -> None:
    await seed(session)
    repository = await session.get(Repository, 1)
    assert repository is not None
    repository.paused, repository.paused_at = True, T0
    await session.commit()
    quick = settings(NOTIFY_PAUSED_AFTER_SECONDS="300")
    watched = await watch(
        session=session, settings=quick, now=T0 + timedelta(minutes=5), budgets={}
    )
    assert watched.paused == 1


async def test_an_installation_under_a_tenth_of_its_budget_is_announced_once_per_window(
    session: AsyncSession,
) -> None:
    reset = (T0 + timedelta(minutes=40)).timestamp()
    assert await watch_at(session, T0, **{"7": Budget(500, 5000, reset)}) == 0
    assert await watch_at(session, T0, **{"7": Budget(499, 5000, reset)}) == 1
    assert await watch_at(session, T0, **{"7": Budget(12, 5000, reset)}) == 0
    # A window that ended since GitHub last answered says nothing about now.
    assert await watch_at(session, T0 + timedelta(hours=1), **{"7": Budget(12, 5000, reset)}) == 0
    next_reset = reset + 3600
    assert await watch_at(session, T0, **{"7": Budget(3, 5000, next_reset)}) == 1
    rows = await stored(session)
    assert [n.key for n in rows] == [f"ratelimit:7:{int(reset)}", f"ratelimit:7:{int(next_reset)}"]
    # Installation-wide: the operator's global URL only.
    assert {n.destination for n in rows} == {NotificationDestination.GLOBAL}
    assert "GitHub installation 7 has 499 of its 5000 API requests left" in rows[0].text


async def test_without_a_global_url_the_rate_limit_is_not_announced(session: AsyncSession) -> None:
    low = {"7": Budget(1, 5000, (T0 + timedelta(minutes=5)).timestamp())}
    watched = await watch(session=session, settings=load_settings({}), now=T0, budgets=low)
    assert watched.stored == 0
