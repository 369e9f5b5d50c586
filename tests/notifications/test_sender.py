"""Sending the notifications outbox against `httpx.MockTransport`, with a simulated
clock: retries with exponential backoff, giving up, the metric, the logs, the bounds."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from mergequeue.db import Database, create_database
from mergequeue.models import Base, Notification, NotificationDestination, Repository
from mergequeue.notifications import outbox
from mergequeue.notifications.sender import (
    MAX_ATTEMPTS,
    MAX_RESPONSE_BYTES,
    SendReport,
    backoff,
    http_client,
    send_due,
)
from mergequeue.settings import load_settings
from observability.notifications import PrometheusNotificationEvents

GLOBAL_URL = "https://hooks.example.com/services/T0/B0/global-secret"
REPO_URL = "https://chat.example.org/hooks/repo-secret"
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
SETTINGS = load_settings({"NOTIFY_WEBHOOK_URL": GLOBAL_URL})


@dataclass
class Receiver:
    """A chat endpoint: answers each POST with the next status (then 200), and keeps them."""

    statuses: list[int] = field(default_factory=list)
    posts: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.posts.append(request)
        status = self.statuses.pop(0) if self.statuses else 200
        headers = {"Location": "https://elsewhere.example/"} if 300 <= status < 400 else {}
        return httpx.Response(status, text="ok" if status == 200 else "no", headers=headers)


@dataclass
class Recorded:
    outcomes: list[str] = field(default_factory=list)

    def attempted(self, outcome: str) -> None:
        self.outcomes.append(outcome)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = create_database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with database.sessions() as session:
        session.add(Repository(id=1, owner="acme", name="widgets", notify_webhook_url=REPO_URL))
        await session.commit()
    yield database
    await database.dispose()


async def store(database: Database, *destinations: NotificationDestination) -> None:
    async with database.sessions() as session:
        for notification in outbox.for_dequeue(
            entry_id=1,
            repository_id=1,
            full_name="acme/widgets",
            web_url="https://github.com/acme/widgets",
            number=12,
            reason="check_failed",
            comment="The required check failed: ci",
            destinations=destinations or (NotificationDestination.GLOBAL,),
            now=T0,
        ):
            await outbox.add(session, notification)
        await session.commit()


async def send(
    database: Database, receiver: Receiver, clock: Clock, events: Recorded | None = None
) -> SendReport:
    async with http_client(httpx.MockTransport(receiver)) as client:
        return await send_due(
            sessions=database.sessions,
            settings=SETTINGS,
            client=client,
            clock=clock,
            events=events or Recorded(),
        )


async def rows(database: Database) -> list[Notification]:
    async with database.sessions() as session:
        return list((await session.scalars(select(Notification).order_by(Notification.id))).all())


async def test_a_failing_endpoint_is_retried_with_exponential_backoff_and_hears_it_once(
    database: Database,
) -> None:
    await store(database)
    receiver, clock, events = Receiver([500, 503]), Clock(), Recorded()

    assert (await send(database, receiver, clock, events)).failed == 1
    # Not before its backoff (2 s after the first failure, then 4 s).
    clock.advance(backoff(1) - timedelta(milliseconds=1))
    assert await send(database, receiver, clock, events) == SendReport()
    clock.advance(timedelta(milliseconds=1))
    assert (await send(database, receiver, clock, events)).failed == 1
    clock.advance(backoff(2))
    assert (await send(database, receiver, clock, events)).sent == 1
    clock.advance(timedelta(hours=1))
    assert await send(database, receiver, clock, events) == SendReport()

    assert events.outcomes == ["failed", "failed", "sent"]
    assert len(receiver.posts) == 3
    assert backoff(1) == timedelta(seconds=2) and backoff(2) == timedelta(seconds=4)
    [row] = await rows(database)
    assert row.sent_at == clock.now - timedelta(hours=1) and row.attempts == 2


async def test_the_payload_is_slack_compatible_json_with_a_text(database: Database) -> None:
    await store(database)
    receiver = Receiver()
    await send(database, receiver, Clock())
    [request] = receiver.posts
    assert str(request.url) == GLOBAL_URL
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    assert set(body) == {"text"}
    assert "acme/widgets#12 left the merge queue without merging (check_failed)" in body["text"]


async def test_each_destination_is_sent_on_its_own_so_none_hears_twice(
    database: Database,
) -> None:
    await store(database, NotificationDestination.GLOBAL, NotificationDestination.REPOSITORY)

    def by_host(request: httpx.Request) -> httpx.Response:
        posts.append(request.url.host)
        return httpx.Response(
            500 if request.url.host == "chat.example.org" and len(posts) < 3 else 200
        )

    posts: list[str] = []
    clock = Clock()
    async with http_client(httpx.MockTransport(by_host)) as client:
        for _ in range(3):
            await send_due(
                sessions=database.sessions,
                settings=SETTINGS,
                client=client,
                clock=clock,
                events=Recorded(),
            )
            clock.advance(timedelta(minutes=1))
    assert sorted(posts) == ["chat.example.org", "chat.example.org", "hooks.example.com"]


async def test_a_notification_is_given_up_after_max_attempts_and_recorded(
    database: Database,
) -> None:
    await store(database)
    receiver, clock, events = Receiver([500] * 100), Clock(), Recorded()
    for _ in range(MAX_ATTEMPTS + 3):
        await send(database, receiver, clock, events)
        clock.advance(timedelta(hours=1))
    assert events.outcomes == ["failed"] * (MAX_ATTEMPTS - 1) + ["gave_up"]
    assert len(receiver.posts) == MAX_ATTEMPTS
    [row] = await rows(database)
    assert row.gave_up_at is not None and row.sent_at is None
    assert row.attempts == MAX_ATTEMPTS and row.error == "HTTP 500"


async def test_the_sender_counts_outcomes_in_mergequeue_notifications_total(
    database: Database,
) -> None:
    def count(outcome: str) -> float:
        return (
            REGISTRY.get_sample_value("mergequeue_notifications_total", {"outcome": outcome}) or 0
        )

    before = {outcome: count(outcome) for outcome in ("sent", "failed", "gave_up")}
    await store(database)
    receiver, clock = Receiver([500]), Clock()
    events = PrometheusNotificationEvents()
    async with http_client(httpx.MockTransport(receiver)) as client:
        for _ in range(2):
            await send_due(
                sessions=database.sessions,
                settings=SETTINGS,
                client=client,
                clock=clock,
                events=events,
            )
            clock.advance(timedelta(minutes=1))
    assert count("failed") - before["failed"] == 1
    assert count("sent") - before["sent"] == 1
    assert count("gave_up") - before["gave_up"] == 0


async def test_a_failure_is_logged_in_one_line_naming_the_host_only(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await store(database)
    with caplog.at_level(logging.WARNING, logger="mergequeue.notifications"):
        await send(database, Receiver([502]), Clock())
    [record] = caplog.records
    assert record.getMessage() == "notification failed"
    assert record.__dict__["host"] == "hooks.example.com"
    assert record.__dict__["why"] == "HTTP 502"
    assert record.__dict__["notification"] == "dequeue:1"
    everything = json.dumps({k: str(v) for k, v in record.__dict__.items()})
    assert "global-secret" not in everything and "/services/" not in everything


async def test_httpx_request_lines_show_the_host_only(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await store(database)
    with caplog.at_level(logging.INFO, logger="httpx"):
        await send(database, Receiver(), Clock())
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines and all("hooks.example.com" in line for line in lines)
    assert not any("global-secret" in line or "/services/" in line for line in lines)


async def test_a_redirect_is_not_followed_and_counts_as_a_failure(database: Database) -> None:
    await store(database)
    receiver = Receiver([302])
    report = await send(database, receiver, Clock())
    assert report.failed == 1
    assert [r.url.host for r in receiver.posts] == ["hooks.example.com"]
    [row] = await rows(database)
    assert row.error == "HTTP 302 (redirects are not followed)"


async def test_an_endless_answer_is_read_up_to_the_cap(database: Database) -> None:
    await store(database)
    served = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal served
        while True:
            served += 1024
            yield b"x" * 1024

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())

    async with http_client(httpx.MockTransport(answer)) as client:
        report = await send_due(
            sessions=database.sessions,
            settings=SETTINGS,
            client=client,
            clock=Clock(),
            events=Recorded(),
        )
    assert report.sent == 1
    assert served <= MAX_RESPONSE_BYTES + 1024


async def test_a_connection_error_is_retried_and_never_quotes_the_url(database: Database) -> None:
    await store(database)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    async with http_client(httpx.MockTransport(refuse)) as client:
        report = await send_due(
            sessions=database.sessions,
            settings=SETTINGS,
            client=client,
            clock=Clock(),
            events=Recorded(),
        )
    assert report.failed == 1
    [row] = await rows(database)
    assert row.error == "connection failed (ConnectError)"


async def test_a_destination_removed_before_sending_is_dropped_not_failed(
    database: Database,
) -> None:
    await store(database, NotificationDestination.REPOSITORY)
    async with database.sessions() as session:
        repository = await session.get(Repository, 1)
        assert repository is not None
        repository.notify_webhook_url = None
        await session.commit()
    receiver, events = Receiver(), Recorded()
    report = await send(database, receiver, Clock(), events)
    assert report.dropped == 1 and receiver.posts == [] and events.outcomes == []
    [row] = await rows(database)
    assert row.gave_up_at is not None and row.error == "destination no longer configured"
