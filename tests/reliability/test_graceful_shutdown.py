"""SIGTERM (what Kubernetes sends first) lets in-flight work finish.

The work is held half-way by a PostgreSQL table lock taken from outside, so the signal
provably arrives while it is running; the lock is released after the signal.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from mergequeue.models import DeliveryState, WebhookDelivery
from tests.e2e.conftest import StartWeb, StartWorker
from tests.support import webhooks
from tests.support.db import rows
from tests.support.locks import HeldLock
from tests.support.scenario import wait_for


@pytest.fixture
def table_lock(postgres_url: str) -> Iterator[HeldLock]:
    lock = HeldLock(postgres_url)
    yield lock
    lock.close()


def _state(url: str, delivery: str) -> DeliveryState | None:
    found = rows(url, select(WebhookDelivery.state).where(WebhookDelivery.id == delivery))
    return found[0][0] if found else None


def _exit_code(process: object, timeout: float) -> int:
    proc = process.proc  # type: ignore[attr-defined]
    return int(proc.wait(timeout))


def test_sigterm_to_web_finishes_the_request_in_flight(
    start_web: StartWeb, postgres_url: str, redis_url: str, table_lock: HeldLock
) -> None:
    web = start_web(
        DATABASE_URL=postgres_url, REDIS_URL=redis_url, GITHUB_WEBHOOK_SECRET=webhooks.SECRET
    )
    delivery = str(uuid.uuid4())
    table_lock.take("LOCK TABLE webhook_deliveries IN EXCLUSIVE MODE")
    answers: list[httpx.Response] = []
    sender = threading.Thread(
        target=lambda: answers.append(
            webhooks.deliver(web.url, "status", webhooks.fixture("status"), delivery)
        )
    )
    sender.start()
    wait_for(lambda: table_lock.waiting() > 0, timeout=10, what="webhook blocked on its insert")

    os.killpg(web.process.pid, signal.SIGTERM)
    time.sleep(1.0)
    # Still draining: the process waits for the request rather than dropping it...
    assert web.process.alive()
    # ...and takes no new connection meanwhile (the load balancer sends them elsewhere).
    with pytest.raises(httpx.ConnectError):
        httpx.get(web.url + "/healthz", timeout=2)
    table_lock.release()

    sender.join(15)
    assert [a.status_code for a in answers] == [202]
    # uvicorn re-raises the signal once it has shut down cleanly: -SIGTERM, not a crash.
    assert _exit_code(web.process, 15) in (0, -signal.SIGTERM)
    assert "Finished server process" in web.process.output()
    assert _state(postgres_url, delivery) == DeliveryState.RECEIVED


def test_sigterm_to_worker_lets_the_running_job_finish(
    start_web: StartWeb,
    start_worker: StartWorker,
    postgres_url: str,
    redis_url: str,
    table_lock: HeldLock,
) -> None:
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url}
    web = start_web(GITHUB_WEBHOOK_SECRET=webhooks.SECRET, **env)
    delivery = str(uuid.uuid4())
    payload = webhooks.fixture("pull_request.opened")
    assert webhooks.deliver(web.url, "pull_request", payload, delivery).status_code == 202
    # Processing writes the pull request: it blocks there, mid-transaction.
    table_lock.take("LOCK TABLE pull_requests IN EXCLUSIVE MODE")
    worker = start_worker(**env)
    wait_for(lambda: table_lock.waiting() > 0, timeout=20, what="job blocked mid-transaction")

    os.killpg(worker.process.pid, signal.SIGTERM)
    time.sleep(1.0)
    assert worker.process.alive()
    table_lock.release()

    assert _exit_code(worker.process, 30) == 0
    # Finished by this worker before it exited, not left for a sweeper to redo.
    assert _state(postgres_url, delivery) == DeliveryState.PROCESSED
    assert "delivery processed" in worker.process.output()
