"""Recovering webhook deliveries that failed while the service was down, against the fake
GitHub in process (its webhook target is a receiver in this process too)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Collection
from typing import Any

import httpx
import pytest

from mergequeue.github import GitHubClient
from mergequeue.webhooks.redelivery import RedeliveryReport, redeliver_missed
from tests.fakegithub import FakeGitHub
from tests.github.conftest import (  # noqa: F401 (fixtures)
    KeyPair,
    Observed,
    app_keys,
    fake,
    make_client,
    observed,
)

HOOK_URL = "https://mergequeue.example/api/webhook"


class Receiver:
    """The web process as the fake sees it: up (stores and answers 202) or down."""

    def __init__(self) -> None:
        self.up = True
        self.stored: set[str] = set()
        self.received: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        guid = dict(scope["headers"])[b"x-github-delivery"].decode()
        if not self.up:
            raise httpx.ConnectError("connection refused")
        self.received.append(guid)
        status = 200 if guid in self.stored else 202
        self.stored.add(guid)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def stored_among(self, guids: Collection[str]) -> set[str]:
        return self.stored & set(guids)


class MemoryLedger:
    def __init__(self) -> None:
        self.asked: set[str] = set()

    async def recently_requested(self, guids: Collection[str]) -> set[str]:
        return self.asked & set(guids)

    async def remember(self, guid: str) -> None:
        self.asked.add(guid)


class _DownTransport(httpx.AsyncBaseTransport):
    """Connection refused whenever the receiver is down, as a stopped process does."""

    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver
        self._inner = httpx.ASGITransport(app=receiver)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self._receiver.up:
            raise httpx.ConnectError("connection refused", request=request)
        return await self._inner.handle_async_request(request)


@pytest.fixture
def receiver(fake: FakeGitHub) -> Receiver:  # noqa: F811
    receiver = Receiver()
    fake.set_webhook_target(url=HOOK_URL, secret="s", transport=_DownTransport(receiver))
    return receiver


@pytest.fixture
async def client(
    fake: FakeGitHub,  # noqa: F811
    app_keys: KeyPair,  # noqa: F811
    observed: Observed,  # noqa: F811
) -> AsyncIterator[GitHubClient]:
    client = make_client(fake, app_keys, observed)
    yield client
    await client.aclose()


async def _send(fake: FakeGitHub, number: int) -> str:  # noqa: F811
    payload = {"action": "labeled", "number": number, "installation": {"id": 5}}
    sent = await fake.send_webhook(event="pull_request", payload=payload)
    return str(sent["guid"])


async def _run(
    client: GitHubClient,
    receiver: Receiver,
    ledger: MemoryLedger,
    *,
    limit: int = 100,
    horizon: float = 86400,
    clock_offset: float = 0.0,
    page_size: int = 100,
) -> RedeliveryReport:
    return await redeliver_missed(
        github=client,
        stored=receiver.stored_among,
        ledger=ledger,
        horizon_seconds=horizon,
        limit=limit,
        clock=lambda: time.time() + clock_offset,
        page_size=page_size,
    )


async def test_deliveries_that_failed_while_down_are_redelivered_and_delivered_ones_are_not(
    fake: FakeGitHub,  # noqa: F811
    client: GitHubClient,
    receiver: Receiver,
) -> None:
    before = await _send(fake, 1)
    receiver.up = False
    missed = [await _send(fake, n) for n in (2, 3, 4)]
    receiver.up = True

    report = await _run(client, receiver, MemoryLedger())

    assert report.requested == tuple(missed)  # oldest first, like the originals
    assert report.missed == 3
    assert receiver.received == [before, *missed]
    assert receiver.stored == {before, *missed}
    redelivered = [d for d in fake.deliveries_json() if d["redelivery"]]
    assert [d["guid"] for d in redelivered] == missed
    assert all(d["status_code"] == 202 for d in redelivered)


async def test_a_delivery_github_made_but_the_database_never_stored_is_redelivered(
    fake: FakeGitHub,  # noqa: F811
    client: GitHubClient,
    receiver: Receiver,
) -> None:
    kept = await _send(fake, 1)
    lost = await _send(fake, 2)
    receiver.stored.discard(lost)  # e.g. a database restored from an older backup

    report = await _run(client, receiver, MemoryLedger())

    assert report.requested == (lost,)
    assert kept in receiver.stored and lost in receiver.stored


async def test_a_guid_is_not_requested_twice_within_the_window(
    fake: FakeGitHub,  # noqa: F811
    client: GitHubClient,
    receiver: Receiver,
) -> None:
    receiver.up = False
    guid = await _send(fake, 1)
    ledger = MemoryLedger()

    first = await _run(client, receiver, ledger)  # still down: the redelivery fails too
    second = await _run(client, receiver, ledger)

    assert first.requested == (guid,)
    assert second.requested == ()
    assert second.already_requested == 1
    assert len([d for d in fake.deliveries_json() if d["redelivery"]]) == 1


async def test_deliveries_older_than_the_horizon_are_left_alone(
    fake: FakeGitHub,  # noqa: F811
    client: GitHubClient,
    receiver: Receiver,
) -> None:
    receiver.up = False
    await _send(fake, 1)
    receiver.up = True

    # An hour later, with a 30-minute horizon.
    report = await _run(client, receiver, MemoryLedger(), horizon=1800, clock_offset=3600)

    assert report.examined == 0
    assert report.requested == ()


async def test_one_run_requests_at_most_its_bound_and_the_next_run_the_rest(
    fake: FakeGitHub,  # noqa: F811
    client: GitHubClient,
    receiver: Receiver,
) -> None:
    receiver.up = False
    missed = [await _send(fake, n) for n in range(1, 6)]
    receiver.up = True
    ledger = MemoryLedger()

    first = await _run(client, receiver, ledger, limit=3)
    second = await _run(client, receiver, ledger, limit=3)

    assert first.requested == tuple(missed[:3])
    assert first.left_over == 2
    assert second.requested == tuple(missed[3:])
    assert receiver.stored == set(missed)


async def test_deliveries_are_read_across_pages_back_to_the_horizon(
    fake: FakeGitHub,  # noqa: F811
    client: GitHubClient,
    receiver: Receiver,
) -> None:
    receiver.up = False
    missed = [await _send(fake, n) for n in range(1, 26)]  # three pages of 10
    receiver.up = True

    report = await _run(client, receiver, MemoryLedger(), page_size=10)

    assert report.examined == 25
    assert set(report.requested) == set(missed)


async def test_pings_and_refused_bodies_are_not_redelivered(
    fake: FakeGitHub,  # noqa: F811
    client: GitHubClient,
    receiver: Receiver,
) -> None:
    receiver.up = False
    await fake.send_webhook(event="ping", payload={"zen": "Keep it logically awesome."})
    receiver.up = True

    report = await _run(client, receiver, MemoryLedger())

    assert report.missed == 0
    assert report.requested == ()


async def test_a_rate_limit_stops_the_run_and_only_what_github_accepted_is_remembered(
    fake: FakeGitHub,  # noqa: F811
    client: GitHubClient,
    receiver: Receiver,
) -> None:
    receiver.up = False
    missed = [await _send(fake, n) for n in range(1, 4)]
    receiver.up = True
    fake.rate_limit_secondary(
        retry_after=0, times=1, route="/app/hook/deliveries/{delivery_id}/attempts"
    )
    ledger = MemoryLedger()

    stopped = await _run(client, receiver, ledger)
    after = await _run(client, receiver, ledger)

    assert stopped.stopped_by is not None
    assert len(stopped.requested) < 3
    assert set(stopped.requested) | set(after.requested) == set(missed)
    assert ledger.asked == set(missed)
    assert json.dumps(sorted(receiver.stored)) == json.dumps(sorted(missed))


async def test_a_listing_out_of_time_acts_on_the_newest_pages_it_read(
    fake: FakeGitHub,  # noqa: F811
    client: GitHubClient,
    receiver: Receiver,
) -> None:
    receiver.up = False
    missed = [await _send(fake, n) for n in range(1, 16)]
    receiver.up = True
    ticks = iter([0.0, 5.0])  # the budget starts at 0 and is spent after the first page

    report = await redeliver_missed(
        github=client,
        stored=receiver.stored_among,
        ledger=MemoryLedger(),
        horizon_seconds=86400,
        limit=100,
        page_size=10,
        listing_seconds=1.0,
        monotonic=lambda: next(ticks),
    )

    assert not report.horizon_reached
    assert report.examined == 10
    assert report.requested == tuple(missed[5:])  # the newest ten, oldest first
