"""Issue 8: SIGTERM (what Kubernetes sends first) lets in-flight work finish.

The work is held half-way by a PostgreSQL table lock taken from outside, so the signal
provably arrives while it is running; the lock is released after the signal.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from sqlalchemy import select

from mergequeue.models import DeliveryState, WebhookDelivery
from tests.e2e.conftest import StartWeb, StartWorker
from tests.support import webhooks
from tests.support.db import rows
from tests.support.scenario import wait_for


class TableLock:
    """An outside transaction holding a lock until released."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("postgresql+asyncpg", "postgresql")
        self.runner = asyncio.Runner()
        self.conn: asyncpg.Connection | None = None

    def take(self, table: str) -> None:
        async def take() -> asyncpg.Connection:
            conn = await asyncpg.connect(self.url)
            await conn.execute("BEGIN")
            await conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            return conn

        self.conn = self.runner.run(take())

    def waiting(self) -> int:
        """Backends of this database blocked on a lock right now."""

        async def count() -> int:
            assert self.conn is not None
            # Inside a transaction the statistics views are a snapshot taken at first use.
            await self.conn.execute("SELECT pg_stat_clear_snapshot()")
            return int(
                await self.conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )

        return self.runner.run(count())

    def release(self) -> None:
        if self.conn is not None:
            self.runner.run(self.conn.close())
            self.conn = None

    def close(self) -> None:
        self.release()
        self.runner.close()


@pytest.fixture
def table_lock(postgres_url: str) -> Iterator[TableLock]:
    lock = TableLock(postgres_url)
    yield lock
    lock.close()


def _state(url: str, delivery: str) -> DeliveryState | None:
    found = rows(url, select(WebhookDelivery.state).where(WebhookDelivery.id == delivery))
    return found[0][0] if found else None


def _exit_code(process: object, timeout: float) -> int:
    proc = process.proc  # type: ignore[attr-defined]
    return int(proc.wait(timeout))


def test_sigterm_to_web_finishes_the_request_in_flight(
    start_web: StartWeb, postgres_url: str, redis_url: str, table_lock: TableLock
) -> None:
    web = start_web(
        DATABASE_URL=postgres_url, REDIS_URL=redis_url, GITHUB_WEBHOOK_SECRET=webhooks.SECRET
    )
    delivery = str(uuid.uuid4())
    table_lock.take("webhook_deliveries")
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
    table_lock: TableLock,
) -> None:
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url}
    web = start_web(GITHUB_WEBHOOK_SECRET=webhooks.SECRET, **env)
    delivery = str(uuid.uuid4())
    payload = webhooks.fixture("pull_request.opened")
    assert webhooks.deliver(web.url, "pull_request", payload, delivery).status_code == 202
    # Processing writes the pull request: it blocks there, mid-transaction.
    table_lock.take("pull_requests")
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
