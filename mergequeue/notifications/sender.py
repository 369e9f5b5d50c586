"""Sending the notifications outbox: POST `{"text": ...}` to each row's destination.

Run by the worker's `send_notifications` job, never inside a queue evaluation, so a slow
or failing endpoint delays no merge. Each row is claimed before it is sent (its `due_at`
moved a lease ahead, in a committed update that only one worker can win), then marked
sent, or retried with exponential backoff, or given up after MAX_ATTEMPTS (recorded in the
row). A receiver's answer lost to a crash between the POST and the commit is the one way a
message can arrive twice.

The HTTP client is bounded: timeouts, an overall deadline per request, no redirects
followed, at most MAX_RESPONSE_BYTES of an answer read. Only the URL's host is ever
logged: a Slack webhook URL's path is its secret.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Protocol

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mergequeue.models import Notification, Repository
from mergequeue.notifications.urls import host_of
from mergequeue.queue.effective import destination_url
from mergequeue.settings import Settings

log = logging.getLogger("mergequeue.notifications")

# httpx logs every request's full URL (INFO, "HTTP Request: POST <url> ..."): while a
# notification is being sent, its URL there becomes its host.
_SENDING: ContextVar[bool] = ContextVar("mergequeue_notification_sending", default=False)


class _HostOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _SENDING.get() and isinstance(record.args, tuple):
            record.args = tuple(
                host_of(str(arg)) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


logging.getLogger("httpx").addFilter(_HostOnly())

# Attempts before a notification is given up: with the backoff below, about 17 minutes.
MAX_ATTEMPTS: Final = 10
BACKOFF_BASE_SECONDS: Final = 2.0
BACKOFF_MAX_SECONDS: Final = 900.0
# A claimed row is left alone this long: longer than any one request may take.
LEASE: Final = timedelta(seconds=60)
# Per request: connect, read, write and pool timeouts, then a deadline for the whole of it.
TIMEOUT: Final = httpx.Timeout(5.0, connect=3.0)
REQUEST_DEADLINE_SECONDS: Final = 10.0
MAX_RESPONSE_BYTES: Final = 64 * 1024
# Rows one run sends at most (the job runs every few seconds).
MAX_PER_RUN: Final = 20
USER_AGENT: Final = "mergequeue-notifications"


class NotificationEvents(Protocol):
    """What the sender reports (a counter in the worker, records in tests)."""

    def attempted(self, outcome: str) -> None: ...


Sessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    gave_up: int = 0
    dropped: int = 0


def http_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The client notifications are sent with: bounded, never following a redirect."""
    return httpx.AsyncClient(
        timeout=TIMEOUT,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
        headers={"User-Agent": USER_AGENT},
        transport=transport,
    )


def backoff(attempts: int) -> timedelta:
    """How long after its `attempts`-th failure a notification is tried again."""
    seconds = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** (attempts - 1))
    return timedelta(seconds=seconds)


async def post(client: httpx.AsyncClient, url: str, text: str) -> str | None:
    """POST the message; None when the receiver took it (2xx), else why not (a status or
    an error type, never the URL)."""
    token = _SENDING.set(True)
    try:
        async with asyncio.timeout(REQUEST_DEADLINE_SECONDS):
            async with client.stream("POST", url, json={"text": text}) as response:
                read = 0
                async for chunk in response.aiter_bytes():
                    read += len(chunk)
                    if read >= MAX_RESPONSE_BYTES:
                        break
                status = response.status_code
    except TimeoutError:
        return f"no answer within {REQUEST_DEADLINE_SECONDS:g} s"
    except httpx.TimeoutException as exc:
        return f"timeout ({type(exc).__name__})"
    except httpx.HTTPError as exc:
        # The message may quote the URL: the type says enough.
        return f"connection failed ({type(exc).__name__})"
    finally:
        _SENDING.reset(token)
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return f"HTTP {status} (redirects are not followed)"
    return f"HTTP {status}"


async def send_due(
    *,
    sessions: Sessions,
    settings: Settings,
    client: httpx.AsyncClient,
    clock: Callable[[], datetime],
    events: NotificationEvents,
    limit: int = MAX_PER_RUN,
) -> SendReport:
    """Send the notifications that are due, oldest first, each on its own."""
    report = SendReport()
    async with sessions() as session:
        due = (
            await session.execute(
                select(Notification.id)
                .where(
                    Notification.sent_at.is_(None),
                    Notification.gave_up_at.is_(None),
                    Notification.due_at <= clock(),
                )
                .order_by(Notification.due_at, Notification.id)
                .limit(limit)
            )
        ).scalars()
        ids = list(due)
    for notification_id in ids:
        await _send_one(notification_id, sessions, settings, client, clock, events, report)
    return report


async def _send_one(
    notification_id: int,
    sessions: Sessions,
    settings: Settings,
    client: httpx.AsyncClient,
    clock: Callable[[], datetime],
    events: NotificationEvents,
    report: SendReport,
) -> None:
    async with sessions() as session:
        now = clock()
        claimed = await session.execute(
            update(Notification)
            .where(
                Notification.id == notification_id,
                Notification.sent_at.is_(None),
                Notification.gave_up_at.is_(None),
                Notification.due_at <= now,
            )
            .values(due_at=now + LEASE)
        )
        await session.commit()
        if not getattr(claimed, "rowcount", 0):
            return  # another worker has it, or it is done
        notification = await session.get(Notification, notification_id)
        assert notification is not None
        repository = (
            await session.get(Repository, notification.repository_id)
            if notification.repository_id is not None
            else None
        )
        url = destination_url(notification.destination, repository, settings)
        if url is None:
            # The URL was removed since: nowhere to send it, and nothing failed.
            notification.gave_up_at = clock()
            notification.error = "destination no longer configured"
            await session.commit()
            report.dropped += 1
            return
        error = await post(client, url, notification.text)
        now = clock()
        if error is None:
            notification.sent_at = now
            notification.error = None
            await session.commit()
            events.attempted("sent")
            report.sent += 1
            return
        notification.attempts += 1
        notification.error = error[:500]
        fields = {
            "notification": notification.key,
            "event": notification.event,
            "destination": notification.destination.value,
            "host": host_of(url),
            "attempt": notification.attempts,
            "why": error,
        }
        if notification.attempts >= MAX_ATTEMPTS:
            notification.gave_up_at = now
            await session.commit()
            events.attempted("gave_up")
            report.gave_up += 1
            log.warning("notification given up", extra=fields)
            return
        retry_in = backoff(notification.attempts)
        notification.due_at = now + retry_in
        await session.commit()
        events.attempted("failed")
        report.failed += 1
        log.warning("notification failed", extra={**fields, "retry_in": retry_in.total_seconds()})
