"""No webhook lost while the web process is down: the worker asks GitHub to redeliver."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select

from mergequeue.models import DeliveryState, PullRequest, WebhookDelivery
from tests.e2e.conftest import StartWeb, StartWorker
from tests.support import webhooks
from tests.support.db import rows
from tests.support.fake_github import FakeGitHubServer, fake_github  # noqa: F401 (fixture)
from tests.support.metrics import value

# Short enough for a test: a run every 5 s, and a guid asked for during the outage may
# be asked for again 3 s later.
QUICK_REDELIVERY = {
    "WEBHOOK_REDELIVERY_INTERVAL_SECONDS": "5",
    "WEBHOOK_REDELIVERY_REPEAT_AFTER_SECONDS": "3",
}


def _wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def _opened(number: int) -> dict[str, Any]:
    payload = copy.deepcopy(webhooks.fixture("pull_request.opened"))
    payload["number"] = number
    payload["pull_request"]["number"] = number
    payload["pull_request"]["id"] = 9_000_000 + number
    return payload


def _send(fake: FakeGitHubServer, number: int) -> dict[str, Any]:
    sent: dict[str, Any] = fake.control(
        "send_webhook", event="pull_request", payload=_opened(number)
    )
    return sent


def test_deliveries_that_failed_while_web_was_down_are_redelivered_and_processed_once(
    start_web: StartWeb,
    start_worker: StartWorker,
    postgres_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,  # noqa: F811
) -> None:
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url, **fake_github.app_env()}
    web = start_web(GITHUB_WEBHOOK_SECRET=webhooks.SECRET, **env)
    fake_github.control("set_webhook_target", url=f"{web.url}/api/webhook", secret=webhooks.SECRET)
    worker = start_worker(**env, **QUICK_REDELIVERY)

    before = [_send(fake_github, n) for n in (1, 2)]
    assert [d["status_code"] for d in before] == [202, 202]

    web.process.stop()
    during = [_send(fake_github, n) for n in (3, 4, 5)]
    assert [d["status_code"] for d in during] == [0, 0, 0]  # connection refused
    time.sleep(3)  # down for a while: a run may ask for redeliveries that fail too

    start_web(GITHUB_WEBHOOK_SECRET=webhooks.SECRET, port=web.port, **env)
    guids = [d["guid"] for d in before + during]

    def all_processed() -> bool:
        found = rows(postgres_url, select(WebhookDelivery.id, WebhookDelivery.state))
        return {g for g, s in found if s == DeliveryState.PROCESSED} == set(guids)

    # Several runs of the 5 s job may be needed: one that asked while web was still down
    # waits out the 3 s repeat window. Generous for a loaded machine; done when processed.
    _wait_for(all_processed, timeout=45)

    stored = rows(postgres_url, select(WebhookDelivery))
    assert sorted(r[0].id for r in stored) == sorted(guids)  # one row each, nothing else
    assert all(r[0].attempts == 1 for r in stored)  # each processed exactly once
    numbers = sorted(r[0].number for r in rows(postgres_url, select(PullRequest)))
    assert numbers == [1, 2, 3, 4, 5]

    attempts = fake_github.control("deliveries_json")
    for guid in (d["guid"] for d in during):
        delivered = [a for a in attempts if a["guid"] == guid and a["status_code"] == 202]
        assert len(delivered) == 1 and delivered[0]["redelivery"]
    # What was delivered before the outage was never asked for again.
    for guid in (d["guid"] for d in before):
        assert [a["redelivery"] for a in attempts if a["guid"] == guid] == [False]
    requested = value(
        httpx.get(worker.metrics_url).text, "mergequeue_webhook_redeliveries_requested_total"
    )
    assert requested is not None and requested >= 3
