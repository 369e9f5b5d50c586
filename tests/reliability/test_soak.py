"""A bounded soak: mixed webhook, REST and GraphQL traffic while the worker merges.

CI runs the smoke length (MQ_SOAK_SECONDS, default 60); run it longer by hand, e.g.
`MQ_SOAK_SECONDS=900 .venv/bin/pytest tests/reliability/test_soak.py -s`.
Guarantees: no 5xx on any request; every delivery answered 202 is processed; pull
requests keep merging, each exactly once; the resident memory of web and worker (VmRSS)
does not grow by more than 20% from the first third of the run to the last.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
from sqlalchemy import select

from mergequeue.models import DeliveryState, WebhookDelivery
from tests.e2e.conftest import StartWeb, StartWorker
from tests.support import webhooks
from tests.support.db import rows
from tests.support.fake_github import FakeGitHubServer
from tests.support.processes import QUICK_RECONCILIATION
from tests.support.scenario import Scenario, wait_for

SECONDS = float(os.environ.get("MQ_SOAK_SECONDS", "60"))
WARM_UP_SECONDS = 5.0
MAX_GROWTH = 1.20
TOKEN = "soak-api-token-0123456789abcdef"
MERGE = "/repos/{owner}/{repo}/pulls/{pull_number}/merge"
NOISE = ["status", "check_run.completed", "pull_request.edited", "push", "issue_comment.created"]
GRAPHQL = "query Soak { repositories { fullName paused queue { number position } } }"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


class Load:
    """Runs the traffic loops in threads; collects statuses and any exception."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.accepted: list[str] = []
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def loop(self, name: str, step: Callable[[], None], pause: float) -> None:
        def run() -> None:
            while not self.stop.is_set():
                try:
                    step()
                except BaseException as exc:  # reported by the test, not lost in a thread
                    self.errors.append(exc)
                    return
                self.stop.wait(pause)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def record(self, kind: str, response: httpx.Response) -> None:
        with self.lock:
            self.statuses[(kind, response.status_code)] += 1

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def test_soak_mixed_traffic_while_merging(
    start_web: StartWeb,
    start_worker: StartWorker,
    postgres_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,
) -> None:
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        **fake_github.app_env(),
        **QUICK_RECONCILIATION,
    }
    web = start_web(GITHUB_WEBHOOK_SECRET=webhooks.SECRET, API_TOKENS=TOKEN, **env)
    worker = start_worker(**env)
    s = Scenario(fake_github, web.url)
    s.setup()
    load = Load()
    api = httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=15)
    hooks = httpx.Client(base_url=web.url, timeout=15)
    numbers: list[int] = []

    def merge_driver() -> None:
        # Plays developers and CI: keeps three pull requests queued, turns heads green.
        open_ones = [n for n in numbers if not s.pull(n)["merged"]]
        if len(open_ones) < 3:
            number = s.open_pull()
            s.add_label(number)
            numbers.append(number)
        for number in open_ones:
            head = s.head(number)
            if not s.api(f"/repos/{s.full_name}/commits/{head}/status")["statuses"]:
                s.report(head, "ci", "success")

    def webhook_noise() -> None:
        name = NOISE[len(load.accepted) % len(NOISE)]
        body = webhooks.json_body(webhooks.fixture(name))
        delivery = str(uuid.uuid4())
        response = hooks.post(
            "/api/webhook",
            content=body,
            headers=webhooks.headers(webhooks.event_of(name), body, delivery),
        )
        load.record("webhook", response)
        if response.status_code == 202:
            with load.lock:
                load.accepted.append(delivery)

    def rest_reads() -> None:
        for path in (
            "/api/v1/repos",
            f"/api/v1/repos/{s.full_name}/queue",
            f"/api/v1/repos/{s.full_name}/pulls/1",
        ):
            load.record("rest", api.get(path))

    def graphql_reads() -> None:
        load.record("graphql", api.post("/graphql", json={"query": GRAPHQL}))

    samples: list[tuple[int, int]] = []

    def memory() -> None:
        samples.append((rss_kib(web.process.pid), rss_kib(worker.process.pid)))

    s.open_pull()  # gives the scenario its repository payload before the loops start
    load.loop("merges", merge_driver, 0.3)
    load.loop("webhooks", webhook_noise, 0.05)
    load.loop("rest", rest_reads, 0.1)
    load.loop("graphql", graphql_reads, 0.1)
    time.sleep(WARM_UP_SECONDS)
    load.loop("memory", memory, 1.0)
    time.sleep(SECONDS)
    load.finish()
    api.close()
    hooks.close()

    assert not load.errors, repr(load.errors[0])
    print(f"soak {SECONDS:.0f} s: {sorted(load.statuses.items())}")
    server_errors = {k: v for k, v in load.statuses.items() if k[1] >= 500}
    assert not server_errors, server_errors
    assert web.process.alive() and worker.process.alive()

    every = load.accepted + s.sent

    def all_processed() -> bool:
        found = dict(rows(postgres_url, select(WebhookDelivery.id, WebhookDelivery.state)))
        return all(found.get(d) == DeliveryState.PROCESSED for d in every)

    wait_for(all_processed, timeout=60, what=f"all {len(every)} accepted deliveries processed")

    merged = [c["path"] for c in fake_github.calls(MERGE) if c["status"] == 200]
    print(f"merged {len(merged)} pull requests; {len(every)} deliveries")
    assert len(merged) >= 3
    assert len(merged) == len(set(merged)), "a pull request was merged twice"

    third = max(1, len(samples) // 3)
    for index, process in enumerate(("web", "worker")):
        first = sum(sample[index] for sample in samples[:third]) / third
        last = sum(sample[index] for sample in samples[-third:]) / third
        print(f"{process} RSS: {first / 1024:.1f} MiB -> {last / 1024:.1f} MiB")
        assert last <= first * MAX_GROWTH, f"{process} RSS grew {first:.0f} -> {last:.0f} KiB"
