"""The worker rides out a Redis outage, and its liveness tells the truth.

Real web, worker and a Redis server of the test's own, with deliveries flowing. Redis
is stopped: the worker used to exit about 2 s later. Now it stays up, its `/healthz`
(metrics port) answers 200 naming Redis unreachable, and once Redis is back it
reconnects by itself: `/healthz` says so, arq's health key is written again and new
deliveries are processed. Stopped (SIGTERM) during an outage, it exits cleanly.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable

import httpx
import redis
from sqlalchemy import select

from mergequeue.models import DeliveryState, WebhookDelivery
from tests.e2e.conftest import StartWeb, StartWorker
from tests.support import webhooks
from tests.support.db import rows
from tests.support.redis_server import OwnRedis

# Longer than the 2 s after which the worker used to exit.
OUTAGE_SECONDS = 3


def _wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _processed(url: str, delivery: str) -> bool:
    found = rows(url, select(WebhookDelivery.state).where(WebhookDelivery.id == delivery))
    return bool(found) and found[0][0] == DeliveryState.PROCESSED


def test_worker_rides_out_a_redis_outage_under_load(
    start_web: StartWeb, start_worker: StartWorker, sqlite_url: str, own_redis: OwnRedis
) -> None:
    server = own_redis.start()
    env = {"DATABASE_URL": sqlite_url, "REDIS_URL": own_redis.url}
    web = start_web(**env, GITHUB_WEBHOOK_SECRET=webhooks.SECRET)
    worker = start_worker(**env)
    health_url = f"http://127.0.0.1:{worker.metrics_port}/healthz"
    assert httpx.get(health_url).json() == {"status": "ok", "redis": "up"}

    stop_load = threading.Event()

    def load() -> None:  # deliveries keep coming; the web stores them whatever Redis does
        payload = webhooks.fixture("status")
        while not stop_load.is_set():
            assert webhooks.deliver(web.url, "status", payload).status_code == 202
            time.sleep(0.05)

    sender = threading.Thread(target=load)
    sender.start()
    try:
        time.sleep(0.5)
        server.stop()
        time.sleep(OUTAGE_SECONDS)
        assert worker.process.alive(), worker.process.output()[-3000:]
        during = httpx.get(health_url)
        assert during.status_code == 200
        assert during.json()["redis"] == "unreachable"
        assert during.json()["redis_unreachable_seconds"] >= OUTAGE_SECONDS - 1

        own_redis.start()  # same port, empty: nothing of before the outage survives
        _wait_for(lambda: httpx.get(health_url).json()["redis"] == "up", timeout=10)
    finally:
        stop_load.set()
        sender.join()

    delivery = str(uuid.uuid4())
    assert (
        webhooks.deliver(web.url, "status", webhooks.fixture("status"), delivery).status_code == 202
    )
    _wait_for(lambda: _processed(sqlite_url, delivery), timeout=10)
    client = redis.Redis(host="127.0.0.1", port=own_redis.port)
    key = f"arq:queue:health-check:{socket.gethostname()}"
    _wait_for(lambda: bool(client.exists(key)), timeout=5)  # `arq --check` passes again
    client.close()
    output = worker.process.output()
    assert "redis unreachable" in output and "redis reachable again" in output

    # Stopped while Redis is away: a clean exit, not a crash. (Jobs in flight when Redis
    # went away fail, and arq logs each as one JSON line with its exception.)
    own_redis.stop_all()
    time.sleep(0.5)
    assert worker.process.stop(timeout=20) == 0
    raw = [line for line in worker.process.output().splitlines() if line.startswith("Traceback")]
    assert not raw, worker.process.output()[-3000:]
