"""Recovering webhook deliveries GitHub could not make while the service was down.

GitHub never redelivers on its own: a delivery that failed during an outage, a rollout or
a network partition is lost unless someone asks for it again. `redeliver_missed` reads
the App's recent deliveries (newest first, back to a horizon inside GitHub's three days
of retention), picks the guids that no attempt delivered or that the database never
stored, and asks GitHub to deliver each again (same guid, so the inbox still stores it
once). A ledger remembers what was asked, so a guid is not asked for twice within its
window, e.g. while the service is still down and the redelivery fails too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from sqlalchemy import select

from mergequeue.db import Database
from mergequeue.github import GitHubClient, GitHubError, RateLimited, Unavailable
from mergequeue.github.models import HookDelivery
from mergequeue.models import WebhookDelivery

__all__ = [
    "LEDGER_KEY_PREFIX",
    "RedeliveryLedger",
    "RedeliveryReport",
    "RedisRedeliveryLedger",
    "pick_missed",
    "redeliver_missed",
    "stored_in",
]

LEDGER_KEY_PREFIX = "mergequeue:redelivery:"
# Redelivery requests in flight at once: GitHub asks Apps to keep concurrency low.
CONCURRENCY = 4
# Answers the web process gives to a body it will never accept (malformed, over 25 MiB):
# asking again cannot help.
HOPELESS_STATUSES = frozenset({400, 413})
# Events the web process answers without storing them.
UNSTORED_EVENTS = frozenset({"ping"})
# A bound against a cursor loop, far above a day of deliveries at 100 per page.
MAX_PAGES = 500
# Guids per database lookup (well under every driver's bound-parameter limit).
_LOOKUP_CHUNK = 500


class RedeliveryLedger(Protocol):
    """What was already asked for (so it is not asked for again within the window)."""

    async def recently_requested(self, guids: Collection[str]) -> set[str]: ...

    async def remember(self, guid: str) -> None: ...


class RedisRedeliveryLedger:
    """One Redis key per requested guid, expiring after the window."""

    def __init__(self, redis: Redis, *, window_seconds: int) -> None:
        self._redis = redis
        self._window = window_seconds

    async def recently_requested(self, guids: Collection[str]) -> set[str]:
        ordered = list(guids)
        if not ordered:
            return set()
        found = await self._redis.mget([LEDGER_KEY_PREFIX + guid for guid in ordered])
        return {guid for guid, value in zip(ordered, found, strict=True) if value is not None}

    async def remember(self, guid: str) -> None:
        await self._redis.set(LEDGER_KEY_PREFIX + guid, b"1", ex=self._window)


@dataclass(frozen=True, slots=True)
class RedeliveryReport:
    examined: int  # delivery attempts read within the horizon
    missed: int  # guids that need a redelivery, before the ledger and the bound
    requested: tuple[str, ...]  # guids whose redelivery GitHub accepted in this run
    already_requested: int  # missed, but asked for within the window
    left_over: int  # missed, not asked for this run (the bound, or GitHub said wait)
    refused: int = 0  # GitHub refused the request (e.g. the attempt is gone)
    # False when the listing stopped before the horizon (its time budget ran out).
    horizon_reached: bool = True
    # Set when GitHub stopped the run (rate limit, outage): the caller defers.
    stopped_by: RateLimited | Unavailable | None = None


async def stored_in(database: Database, guids: Collection[str]) -> set[str]:
    """Which of `guids` the inbox holds, whatever their state."""
    ordered = list(guids)
    found: set[str] = set()
    async with database.sessions() as session:
        for start in range(0, len(ordered), _LOOKUP_CHUNK):
            chunk = ordered[start : start + _LOOKUP_CHUNK]
            rows = await session.scalars(
                select(WebhookDelivery.id).where(WebhookDelivery.id.in_(chunk))
            )
            found.update(rows.all())
    return found


def pick_missed(attempts: Iterable[HookDelivery], stored: Collection[str]) -> list[HookDelivery]:
    """For each guid to redeliver, its latest attempt (the one to ask for again), the
    oldest guid first so the inbox receives them near their original order.

    A guid needs a redelivery when no attempt got a 2xx answer, or when the database
    never stored it (a success the inbox lost, e.g. a restored backup). Pings are never
    stored, and a body the web process refused as malformed or too large never will be.
    """
    by_guid: dict[str, list[HookDelivery]] = {}
    for attempt in attempts:
        by_guid.setdefault(attempt.guid, []).append(attempt)
    missed: list[tuple[float, HookDelivery]] = []
    for guid, tries in by_guid.items():
        latest = max(tries, key=lambda d: (d.delivered_at, d.id))
        if latest.event in UNSTORED_EVENTS or latest.status_code in HOPELESS_STATUSES:
            continue
        delivered = any(attempt.succeeded for attempt in tries)
        if delivered and guid in stored:
            continue
        first = min(attempt.delivered_at for attempt in tries)
        missed.append((first, latest))
    missed.sort(key=lambda item: (item[0], item[1].id))
    return [latest for _, latest in missed]


async def redeliver_missed(
    *,
    github: GitHubClient,
    stored: Callable[[Collection[str]], Awaitable[set[str]]],
    ledger: RedeliveryLedger,
    horizon_seconds: float,
    limit: int,
    clock: Callable[[], float] = time.time,
    page_size: int = 100,
    listing_seconds: float | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> RedeliveryReport:
    """Ask GitHub to redeliver what the service missed in the last `horizon_seconds`, at
    most `limit` guids. Needs the App's own credentials (`github.authenticates_as_app`).

    `listing_seconds` bounds the time spent reading pages (a busy App has thousands of
    deliveries a day): the newest are read first, and an outage is usually recent.
    """
    since = clock() - horizon_seconds
    stop_at = None if listing_seconds is None else monotonic() + listing_seconds
    try:
        attempts, reached = await _recent_attempts(github, since, page_size, stop_at, monotonic)
    except (RateLimited, Unavailable) as exc:
        return RedeliveryReport(0, 0, (), 0, 0, stopped_by=exc)
    missed = pick_missed(attempts, await stored({a.guid for a in attempts}))
    asked_before = await ledger.recently_requested([d.guid for d in missed])
    due = [d for d in missed if d.guid not in asked_before]
    chosen = due[:limit]

    requested: list[str] = []
    refused: list[str] = []
    stopped: list[RateLimited | Unavailable] = []
    gate = asyncio.Semaphore(CONCURRENCY)

    async def ask(delivery: HookDelivery) -> None:
        async with gate:
            if stopped:
                return
            try:
                await github.redeliver(delivery_id=delivery.id)
            except (RateLimited, Unavailable) as exc:
                stopped.append(exc)
                return
            except GitHubError:
                # Asking again at once would be refused again: wait out the window.
                await ledger.remember(delivery.guid)
                refused.append(delivery.guid)
                return
            # Remembered only once GitHub accepted it: a refused request is asked again
            # on the next run instead of waiting out the window.
            await ledger.remember(delivery.guid)
            requested.append(delivery.guid)

    await asyncio.gather(*(ask(delivery) for delivery in chosen))
    return RedeliveryReport(
        examined=len(attempts),
        missed=len(missed),
        requested=tuple(requested),
        already_requested=len(asked_before),
        left_over=len(due) - len(requested) - len(refused),
        refused=len(refused),
        horizon_reached=reached,
        stopped_by=stopped[0] if stopped else None,
    )


async def _recent_attempts(
    github: GitHubClient,
    since: float,
    page_size: int,
    stop_at: float | None,
    monotonic: Callable[[], float],
) -> tuple[list[HookDelivery], bool]:
    """The attempts delivered at or after `since` (pages come newest first), and whether
    the listing got that far before `stop_at`."""
    found: list[HookDelivery] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await github.list_hook_deliveries(per_page=page_size, cursor=cursor)
        for delivery in page.deliveries:
            if delivery.delivered_at < since:
                return found, True
            found.append(delivery)
        cursor = page.next_cursor
        if cursor is None:
            return found, True
        if stop_at is not None and monotonic() >= stop_at:
            return found, False
    return found, False
