"""A signed delivery that can never be processed is parked at once.

Real web and worker on PostgreSQL. Deliveries with values out of any column's range
(NUL and lone surrogates in strings, integers past 64 bits, a string longer than its
column) used to be retried eight times with tracebacks, or answered 500. Now each is
stored (202), tried once, parked as failed with its real error, listed by the API and
counted by `mergequeue_webhook_deliveries_parked_total`; a good delivery sent after them
is processed as usual.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select

from mergequeue.models import DeliveryState, WebhookDelivery
from tests.e2e.conftest import StartWeb, StartWorker
from tests.support import webhooks
from tests.support.db import rows
from tests.support.metrics import value

TOKEN = "unusable-deliveries-token-0123456789"


def _wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _opened(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(webhooks.fixture("pull_request.opened"))
    for path, new in changes.items():
        *parents, leaf = path.split("__")
        target = payload
        for key in parents:
            target = target[key]
        target[leaf] = new
    return payload


# (what is wrong, payload, words the parked error must contain)
UNUSABLE: list[tuple[str, dict[str, Any], str]] = [
    ("NUL in action", _opened(action="opened\x00"), "NUL"),
    ("surrogate in full_name", _opened(repository__full_name="a/\ud800"), "surrogate"),
    ("number past 64 bits", _opened(number=2**64, pull_request__number=2**64), "64 bits"),
    ("negative id past 64 bits", _opened(installation={"id": -(2**70)}), "64 bits"),
    ("NUL deep inside", _opened(pull_request__title="a\x00b"), "NUL"),
    ("longer than its column", _opened(pull_request__head__ref="r" * 300), "database refused"),
]


def _states(url: str, ids: list[str]) -> dict[str, tuple[DeliveryState, int, str | None]]:
    found = rows(
        url,
        select(
            WebhookDelivery.id,
            WebhookDelivery.state,
            WebhookDelivery.attempts,
            WebhookDelivery.error,
        ).where(WebhookDelivery.id.in_(ids)),
    )
    return {r[0]: (r[1], r[2], r[3]) for r in found}


def test_unprocessable_deliveries_are_parked_at_once_with_their_error(
    start_web: StartWeb, start_worker: StartWorker, postgres_url: str, redis_url: str
) -> None:
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url}
    web = start_web(**env, GITHUB_WEBHOOK_SECRET=webhooks.SECRET, API_TOKENS=TOKEN)
    worker = start_worker(**env)

    sent: dict[str, tuple[str, str]] = {}
    for problem, payload, words in UNUSABLE:
        delivery = str(uuid.uuid4())
        # ensure_ascii: the escapes GitHub (or a forger with the secret) would send.
        body = json.dumps(payload, ensure_ascii=True).encode()
        response = webhooks.deliver(web.url, "pull_request", body, delivery)
        assert response.status_code == 202, (problem, response.text)
        sent[delivery] = (problem, words)
    good = str(uuid.uuid4())
    assert webhooks.deliver(web.url, "pull_request", _opened(), good).status_code == 202

    ids = [*sent, good]
    _wait_for(
        lambda: all(s[0] != DeliveryState.RECEIVED for s in _states(postgres_url, ids).values())
    )
    states = _states(postgres_url, ids)
    assert states[good][0] == DeliveryState.PROCESSED
    for delivery, (problem, words) in sent.items():
        state, attempts, error = states[delivery]
        assert (state, attempts) == (DeliveryState.FAILED, 1), problem
        assert error is not None and words in error, (problem, error)

    listed = httpx.get(
        web.url + "/api/v1/deliveries/failed", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert listed.status_code == 200
    assert {d["id"]: d["error"] for d in listed.json()} == {d: states[d][2] for d in sent}

    metrics = httpx.get(worker.metrics_url).text
    parked = value(metrics, "mergequeue_webhook_deliveries_parked_total", reason="unusable")
    assert parked == len(UNUSABLE)
    assert value(metrics, "arq_jobs_total", function="process_delivery", outcome="failure") is None
    assert "Traceback" not in worker.process.output()
    assert "Traceback" not in web.process.output()
