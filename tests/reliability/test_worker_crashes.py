"""Faults in the middle of the worker's most delicate work, and a long Redis outage.

- SIGKILL while the merge call is in flight: GitHub merges, the worker never hears back.
  The restarted worker must record the merge once and never merge twice.
- Redis down for 30 s under steady webhook traffic: every delivery answered 202 during the
  outage is processed once Redis is back; the web process stays up and ready throughout.
  arq's worker exits when it loses Redis; its supervisor (Kubernetes) starts it again, and
  the test does the same.
"""

from __future__ import annotations

import time
import uuid

import httpx
from sqlalchemy import select

from mergequeue.models import DeliveryState, QueueEntry, QueueEntryState, WebhookDelivery
from tests.e2e.conftest import StartWeb, StartWorker
from tests.support import webhooks
from tests.support.db import rows
from tests.support.fake_github import FakeGitHubServer, fake_github  # noqa: F401 (fixture)
from tests.support.metrics import value
from tests.support.processes import QUICK_RECONCILIATION
from tests.support.redis_server import OwnRedis
from tests.support.scenario import Scenario, wait_for

MERGE_ROUTE = "/repos/{owner}/{repo}/pulls/{pull_number}/merge"
# arq keeps a killed job's id "in progress" for its longest job timeout + 10 s (40 s): the
# orphaned evaluation runs again after that.
RECOVERY_SECONDS = 60


def test_worker_killed_during_the_merge_call_merges_exactly_once(
    start_web: StartWeb,
    start_worker: StartWorker,
    postgres_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,  # noqa: F811
) -> None:
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        **fake_github.app_env(),
        **QUICK_RECONCILIATION,
    }
    web = start_web(GITHUB_WEBHOOK_SECRET=webhooks.SECRET, **env)
    first = start_worker(**env)
    s = Scenario(fake_github, web.url)
    s.setup()
    number = s.open_pull()
    # GitHub will take 3 s to answer the merge: the worker is killed while it waits.
    fake_github.control("delay", seconds=3, route=MERGE_ROUTE, method="PUT", times=1)
    s.add_label(number)
    s.report(s.head(number), "ci", "success")
    wait_for(lambda: bool(fake_github.calls(MERGE_ROUTE, "PUT")), what="merge call sent")
    first.process.kill()
    wait_for(lambda: s.merged(number), what="GitHub finished the merge")

    second = start_worker(**env)

    def recorded() -> bool:
        entries = [r[0] for r in rows(postgres_url, select(QueueEntry))]
        return len(entries) == 1 and entries[0].state == QueueEntryState.MERGED

    wait_for(recorded, timeout=RECOVERY_SECONDS, what="merge recorded after the crash")
    [entry] = [r[0] for r in rows(postgres_url, select(QueueEntry))]
    # The worker had recorded "merging" before calling GitHub, so it counts as its merge.
    assert entry.dequeue_reason == "merged"
    assert len(fake_github.calls(MERGE_ROUTE, "PUT")) == 1
    text = httpx.get(second.metrics_url).text
    assert value(text, "mergequeue_merges_total", repository=s.full_name) == 1


def test_redis_down_for_30_seconds_under_traffic_loses_nothing(
    start_web: StartWeb,
    start_worker: StartWorker,
    postgres_url: str,
    own_redis: OwnRedis,
) -> None:
    redis = own_redis.start()
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": own_redis.url}
    web = start_web(GITHUB_WEBHOOK_SECRET=webhooks.SECRET, **env)
    worker = start_worker(**env)
    payload = webhooks.fixture("pull_request.synchronize")

    redis.stop()
    accepted: list[str] = []
    outage_ends = time.monotonic() + 30
    while time.monotonic() < outage_ends:
        delivery = str(uuid.uuid4())
        response = webhooks.deliver(web.url, "pull_request", payload, delivery)
        assert response.status_code == 202, response.text
        accepted.append(delivery)
        assert web.get("/readyz").status_code == 200
        time.sleep(0.2)
    assert len(accepted) >= 60

    own_redis.start()
    if not worker.process.alive():
        # What Kubernetes does with an exited container.
        start_worker(**env)

    def all_processed() -> bool:
        states = rows(
            postgres_url,
            select(WebhookDelivery.state).where(WebhookDelivery.id.in_(accepted)),
        )
        return len(states) == len(accepted) and all(
            state == DeliveryState.PROCESSED for (state,) in states
        )

    wait_for(all_processed, timeout=60, what="every delivery processed after the outage")
    assert web.process.alive()
