"""PostgreSQL stopped and started again under real web and worker processes.

While it is down, webhooks answer 503 (GitHub shows the failure and the delivery can be
redelivered), /readyz answers 503, and neither process exits. When it is back, the same
processes accept and process deliveries again, without a restart or any manual step.
"""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from mergequeue.models import DeliveryState, WebhookDelivery
from tests.e2e.conftest import StartWeb, StartWorker
from tests.reliability.postgres_server import PrivatePostgres
from tests.support import webhooks
from tests.support.db import rows
from tests.support.metrics import total
from tests.support.scenario import wait_for

TOKEN = "reliability-api-token-0123456789"


def _states(url: str, ids: list[str]) -> dict[str, DeliveryState]:
    found = rows(url, select(WebhookDelivery.id, WebhookDelivery.state))
    return {r[0]: r[1] for r in found if r[0] in ids}


def _send(web_url: str, name: str, delivery: str) -> httpx.Response:
    return webhooks.deliver(web_url, webhooks.event_of(name), webhooks.fixture(name), delivery)


def test_postgres_down_gives_503s_and_everything_resumes_when_it_returns(
    start_web: StartWeb,
    start_worker: StartWorker,
    private_postgres: PrivatePostgres,
    redis_url: str,
) -> None:
    url = private_postgres.url
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url}
    web = start_web(GITHUB_WEBHOOK_SECRET=webhooks.SECRET, API_TOKENS=TOKEN, **env)
    worker = start_worker(**env)
    before = str(uuid.uuid4())
    assert _send(web.url, "pull_request.opened", before).status_code == 202
    wait_for(lambda: _states(url, [before]).get(before) == DeliveryState.PROCESSED, what="before")

    private_postgres.stop()
    refused = [str(uuid.uuid4()) for _ in range(3)]
    for delivery in refused:
        response = _send(web.url, "status", delivery)
        assert response.status_code == 503, response.text
        assert response.json() == {"detail": "database unavailable"}
    ready = web.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["reason"].startswith("database unavailable")
    api = web.get("/api/v1/repos", headers={"Authorization": f"Bearer {TOKEN}"})
    assert api.status_code == 503
    assert web.get("/healthz").status_code == 200
    # Let the worker's periodic jobs (sweeper, gauges, reconciliation) hit the outage too.
    wait_for(
        lambda: total(httpx.get(worker.metrics_url).text, "arq_jobs_total", outcome="failure") > 0,
        timeout=20,
        what="the worker's periodic jobs failed on the outage",
    )
    assert web.process.alive() and worker.process.alive()

    private_postgres.start()
    wait_for(lambda: web.get("/readyz").status_code == 200, timeout=20, what="ready again")
    # GitHub's redelivery of the refused ones (same ids), and new ones, are all accepted.
    after = [str(uuid.uuid4()) for _ in range(2)]
    for delivery in [*refused, *after]:
        response = _send(web.url, "status", delivery)
        assert response.status_code == 202, response.text
    wait_for(
        lambda: (
            set(_states(url, [*refused, *after]).values()) == {DeliveryState.PROCESSED}
            and len(_states(url, [*refused, *after])) == 5
        ),
        timeout=40,
        what="deliveries after the outage processed",
    )
    assert web.get("/api/v1/repos", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert web.process.alive() and worker.process.alive()
