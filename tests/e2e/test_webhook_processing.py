"""The worker turns stored deliveries into state, exactly once in effect."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import select

from mergequeue.models import (
    DeliveryState,
    Installation,
    PullRequest,
    PullRequestState,
    Repository,
    WebhookDelivery,
)
from tests.e2e.conftest import StartWeb, StartWorker
from tests.support import webhooks
from tests.support.db import execute, rows
from tests.support.locks import HeldLock
from tests.support.metrics import value
from tests.support.redis_server import OwnRedis

SECRET_ENV = {"GITHUB_WEBHOOK_SECRET": webhooks.SECRET}


def _wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def _delivery(url: str, delivery: str) -> WebhookDelivery:
    [row] = rows(url, select(WebhookDelivery).where(WebhookDelivery.id == delivery))
    return row[0]  # type: ignore[no-any-return]


def _all_processed(url: str, ids: list[str]) -> bool:
    found = rows(url, select(WebhookDelivery.state).where(WebhookDelivery.id.in_(ids)))
    return len(found) == len(ids) and all(r[0] == DeliveryState.PROCESSED for r in found)


def test_redelivery_is_200_and_processed_once(
    start_web: StartWeb, start_worker: StartWorker, database_url: str, redis_url: str
) -> None:
    web = start_web(DATABASE_URL=database_url, REDIS_URL=redis_url, **SECRET_ENV)
    worker = start_worker(DATABASE_URL=database_url, REDIS_URL=redis_url)
    delivery = str(uuid.uuid4())
    payload = webhooks.fixture("pull_request.opened")
    assert webhooks.deliver(web.url, "pull_request", payload, delivery).status_code == 202
    _wait_for(lambda: _delivery(database_url, delivery).state == DeliveryState.PROCESSED)
    for _ in range(3):
        assert webhooks.deliver(web.url, "pull_request", payload, delivery).status_code == 200
    time.sleep(1)
    assert _delivery(database_url, delivery).attempts == 1
    text = httpx.get(worker.metrics_url).text
    assert value(text, "arq_jobs_total", function="process_delivery", outcome="success") == 1


def test_worker_turns_deliveries_into_state(
    start_web: StartWeb, start_worker: StartWorker, database_url: str, redis_url: str
) -> None:
    web = start_web(DATABASE_URL=database_url, REDIS_URL=redis_url, **SECRET_ENV)
    start_worker(DATABASE_URL=database_url, REDIS_URL=redis_url)

    def send(name: str) -> str:
        delivery = str(uuid.uuid4())
        response = webhooks.deliver(
            web.url, webhooks.event_of(name), webhooks.fixture(name), delivery
        )
        assert response.status_code == 202
        _wait_for(lambda: _delivery(database_url, delivery).state == DeliveryState.PROCESSED)
        return delivery

    send("installation.created")
    [installation] = rows(database_url, select(Installation))
    assert installation[0].account_login == "Codertocat"
    repos = {r[0].full_name: r[0] for r in rows(database_url, select(Repository))}
    assert "Codertocat/Hello-World" in repos

    send("pull_request.opened")
    [pr] = [r[0] for r in rows(database_url, select(PullRequest))]
    opened = webhooks.fixture("pull_request.opened")["pull_request"]
    assert (pr.number, pr.head_sha, pr.base_ref, pr.state) == (
        opened["number"],
        opened["head"]["sha"],
        opened["base"]["ref"],
        PullRequestState.OPEN,
    )

    send("pull_request.labeled")
    [pr] = [r[0] for r in rows(database_url, select(PullRequest))]
    assert "bug" in pr.labels

    send("pull_request.closed.merged")
    [pr] = [r[0] for r in rows(database_url, select(PullRequest))]
    assert pr.state == PullRequestState.MERGED

    send("installation_repositories.added")
    added = rows(database_url, select(Repository).where(Repository.name == "Space"))
    assert added[0][0].installation_id == 957387

    # Removing a repository from the installation detaches it (its history stays).
    removed = copy.deepcopy(webhooks.fixture("installation_repositories.removed"))
    removed["repositories_removed"] = [
        {
            **removed["repositories_removed"][0],
            "id": added[0][0].id,
            "full_name": "Codertocat/Space",
            "name": "Space",
        }
    ]
    delivery = str(uuid.uuid4())
    assert (
        webhooks.deliver(web.url, "installation_repositories", removed, delivery).status_code == 202
    )
    _wait_for(lambda: _delivery(database_url, delivery).state == DeliveryState.PROCESSED)
    detached = rows(database_url, select(Repository).where(Repository.name == "Space"))
    assert detached[0][0].installation_id is None

    send("installation.deleted")
    assert rows(database_url, select(Installation)) == []


def test_an_older_snapshot_processed_late_does_not_roll_a_pull_request_back(
    start_web: StartWeb, start_worker: StartWorker, database_url: str, redis_url: str
) -> None:
    web = start_web(DATABASE_URL=database_url, REDIS_URL=redis_url, **SECRET_ENV)
    newer = webhooks.fixture("pull_request.labeled")
    older = copy.deepcopy(newer)
    older["pull_request"]["updated_at"] = "2001-01-01T00:00:00Z"
    older["pull_request"]["labels"] = []
    assert webhooks.deliver(web.url, "pull_request", newer).status_code == 202
    assert webhooks.deliver(web.url, "pull_request", older).status_code == 202
    start_worker(DATABASE_URL=database_url, REDIS_URL=redis_url)
    _wait_for(
        lambda: (
            len(
                rows(
                    database_url,
                    select(WebhookDelivery).where(WebhookDelivery.state == DeliveryState.PROCESSED),
                )
            )
            == 2
        )
    )
    [pr] = [r[0] for r in rows(database_url, select(PullRequest))]
    assert "bug" in pr.labels


def test_unusable_delivery_is_parked_as_failed_with_its_error(
    start_web: StartWeb, start_worker: StartWorker, database_url: str, redis_url: str
) -> None:
    web = start_web(DATABASE_URL=database_url, REDIS_URL=redis_url, **SECRET_ENV)
    start_worker(DATABASE_URL=database_url, REDIS_URL=redis_url)
    delivery = str(uuid.uuid4())
    assert (
        webhooks.deliver(web.url, "pull_request", {"action": "opened"}, delivery).status_code == 202
    )
    _wait_for(lambda: _delivery(database_url, delivery).state == DeliveryState.FAILED)
    parked = _delivery(database_url, delivery)
    assert parked.error and "pull_request" in parked.error and parked.attempts == 1


@pytest.fixture
def row_lock(postgres_url: str) -> Iterator[HeldLock]:
    lock = HeldLock(postgres_url)
    yield lock
    lock.close()


def test_worker_killed_mid_processing_loses_nothing(
    start_web: StartWeb,
    start_worker: StartWorker,
    postgres_url: str,
    redis_url: str,
    row_lock: HeldLock,
) -> None:
    web = start_web(DATABASE_URL=postgres_url, REDIS_URL=redis_url, **SECRET_ENV)
    delivery = str(uuid.uuid4())
    payload = webhooks.fixture("pull_request.opened")
    assert webhooks.deliver(web.url, "pull_request", payload, delivery).status_code == 202
    # The pull request exists and is locked: processing will block writing it, half-way
    # through its transaction (the delivery row already locked, the repository written).
    pr = payload["pull_request"]
    execute(
        postgres_url,
        "INSERT INTO repositories (id, owner, name, default_branch, paused) "
        "VALUES (186853002, 'Codertocat', 'Hello-World', 'master', false);",
    )
    execute(
        postgres_url,
        "INSERT INTO pull_requests (repository_id, number, title, author, head_sha, head_ref,"
        f" base_ref, state, labels, updated_at) VALUES (186853002, {int(pr['number'])}, 'old',"
        " 'x', 'old', 'x', 'master', 'open', '[]', now())",
    )
    row_lock.take("SELECT 1 FROM pull_requests WHERE number = $1 FOR UPDATE", int(pr["number"]))
    first = start_worker(DATABASE_URL=postgres_url, REDIS_URL=redis_url)
    _wait_for(lambda: _delivery(postgres_url, delivery).attempts == 1)
    # Kill it only once it is provably waiting on the locked row, mid-transaction.
    _wait_for(lambda: row_lock.waiting() > 0, timeout=10)
    first.process.kill()
    row_lock.release()
    assert _delivery(postgres_url, delivery).state == DeliveryState.RECEIVED

    start_worker(DATABASE_URL=postgres_url, REDIS_URL=redis_url)
    # The sweeper takes the stalled attempt for dead and enqueues a new one.
    _wait_for(lambda: _delivery(postgres_url, delivery).state == DeliveryState.PROCESSED, 75)
    [stored] = [r[0] for r in rows(postgres_url, select(PullRequest))]
    assert stored.head_sha == pr["head"]["sha"]


def test_deliveries_accepted_while_redis_is_down_are_processed_after_it_returns(
    start_web: StartWeb,
    start_worker: StartWorker,
    database_url: str,
    own_redis: OwnRedis,
) -> None:
    redis = own_redis.start()
    redis_url = own_redis.url
    web = start_web(DATABASE_URL=database_url, REDIS_URL=redis_url, **SECRET_ENV)
    assert webhooks.deliver(web.url, "ping", webhooks.fixture("ping")).status_code == 200
    redis.stop()

    sent = []
    for name in ("pull_request.opened", "check_run.completed", "status", "push"):
        delivery = str(uuid.uuid4())
        response = webhooks.deliver(
            web.url, webhooks.event_of(name), webhooks.fixture(name), delivery
        )
        assert response.status_code == 202
        sent.append(delivery)
    assert web.get("/readyz").status_code == 200

    own_redis.start()
    start_worker(DATABASE_URL=database_url, REDIS_URL=redis_url)
    _wait_for(lambda: _all_processed(database_url, sent), timeout=40)
