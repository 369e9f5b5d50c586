"""Parallel mode end to end: real web and worker processes, PostgreSQL, Redis, and the fake
GitHub with its git model and a scripted CI that reports by webhook.

Ten pull requests queued with batches of two and four builds at once; #4 is bad (CI fails
every build that holds it), #6 changes the file #2 changes (they conflict).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mergequeue.models import Build, PullRequest, QueueEntry, QueueEntryState
from tests.e2e.conftest import StartWeb, StartWorker, Worker
from tests.support import webhooks
from tests.support.db import rows
from tests.support.fake_github import FakeGitHubServer, fake_github  # noqa: F401 (fixture)
from tests.support.metrics import value
from tests.support.processes import QUICK_RECONCILIATION
from tests.support.scenario import Scenario, wait_for

TOKEN = "parallel-api-token"
BAD, CONFLICTING = 4, 6
GOOD = [n for n in range(1, 11) if n not in (BAD, CONFLICTING)]
MERGES_ROUTE = "/repos/{owner}/{repo}/merges"
REF_ROUTE = "/repos/{owner}/{repo}/git/refs/{ref}"
# arq holds a killed job's id for its timeout + 10 s: the restarted worker's evaluation of
# the repository waits that long (jobs/worker.py).
AFTER_A_KILL = 120


@dataclass
class World:
    s: Scenario
    url: str
    env: dict[str, str]
    start_worker: StartWorker
    worker: Worker

    def restart_worker(self) -> None:
        self.worker.process.kill()
        self.worker = self.start_worker(**self.env)


@pytest.fixture
def world(
    start_web: StartWeb,
    start_worker: StartWorker,
    postgres_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,  # noqa: F811
) -> Iterator[World]:
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
    fake_github.control("set_webhook_target", url=f"{web.url}/api/webhook", secret=webhooks.SECRET)
    fake_github.control("set_ci", full_name=s.full_name, bad_paths=["bad/*"], ci_delay=1.0)
    yield World(s, postgres_url, env, start_worker, worker)


def _queue_ten(w: World, *, batch_wait_seconds: int = 3) -> None:
    s = w.s
    for number in range(1, 11):
        files = {f"changes/{number}.txt": f"change {number}\n"}
        if number == BAD:
            files["bad/flaky-test.txt"] = "fails\n"
        if number in (2, CONFLICTING):
            files["shared.txt"] = f"from #{number}\n"
        assert s.open_pull(files=files) == number
    repo_url = f"{s.web_url}/api/v1/repos/{s.full_name}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    wait_for(lambda: httpx.get(repo_url, headers=auth).status_code == 200, what="repo known")
    settings = {
        "queue_mode": "parallel",
        "batch_size": 2,
        "max_parallel_builds": 4,
        "batch_wait_seconds": batch_wait_seconds,
    }
    response = httpx.patch(repo_url, json=settings, headers=auth, timeout=10)
    assert response.status_code == 200, response.text
    for number in range(1, 11):
        s.add_label(number)


def _entries(url: str) -> list[QueueEntry]:
    return [r[0] for r in rows(url, select(QueueEntry).order_by(QueueEntry.id))]


def _by_number(url: str) -> dict[int, QueueEntry]:
    query = select(QueueEntry, PullRequest.number).join(
        PullRequest, QueueEntry.pull_request_id == PullRequest.id
    )
    return {number: entry for entry, number in rows(url, query)}


def _builds(url: str) -> list[Build]:
    return [r[0] for r in rows(url, select(Build).order_by(Build.id))]


def _all_finished(url: str) -> bool:
    entries = _entries(url)
    return len(entries) == 10 and all(e.state != QueueEntryState.QUEUED for e in entries)


def _assert_the_outcome(w: World) -> None:
    s, fake = w.s, w.s.fake
    entries = _by_number(w.url)
    assert sorted(entries) == list(range(1, 11))
    merged = [e for e in entries.values() if e.state == QueueEntryState.MERGED]
    assert sorted(n for n, e in entries.items() if e.state == QueueEntryState.MERGED) == GOOD
    # Landed in queue order: no entry finished before one queued ahead of it.
    by_queue = sorted(merged, key=lambda e: e.enqueued_at)
    assert [e.finished_at for e in by_queue] == sorted(e.finished_at for e in by_queue)
    assert all(s.merged(n) for n in GOOD)

    bad, conflicting = entries[BAD], entries[CONFLICTING]
    assert (bad.state, bad.dequeue_reason) == (QueueEntryState.DEQUEUED, "check_failed")
    assert (conflicting.dequeue_reason) == "conflict"
    [bad_comment] = s.comments(BAD)
    assert "`ci` (https://ci.example.com/runs/" in bad_comment
    [conflict_comment] = s.comments(CONFLICTING)
    assert "#2" in conflict_comment

    # Found by bisection: a failed batch held #4 and another pull request.
    failed = [b for b in _builds(w.url) if b.outcome == "failed"]
    assert any(len(b.members) > 1 for b in failed), failed
    assert all(BAD in [number for number, _ in b.members] for b in failed)

    # The base branch's tree after every landing passed CI.
    passed = {
        r["tree_sha"]
        for r in fake.control("ci_runs_json", full_name=s.full_name)
        if r["status"] == "completed" and r["conclusion"] == "success"
    }
    log = fake.control("branch_log_json", full_name=s.full_name, branch="main")
    assert len(log) > 1
    assert all(move["tree_sha"] in passed for move in log[1:]), log
    # No staging branch is left behind.
    left = s.api(f"/repos/{s.full_name}/git/matching-refs/heads/mergequeue")
    assert left == []


def test_ten_pull_requests_in_parallel_mode_land_eight_in_order_with_tested_trees(
    world: World,
) -> None:
    _queue_ten(world)
    wait_for(lambda: _all_finished(world.url), timeout=120, what="every entry finished")
    _assert_the_outcome(world)
    text = httpx.get(world.worker.metrics_url).text
    repo = world.s.full_name
    assert value(text, "mergequeue_landings_total", repository=repo) >= 1
    assert value(text, "mergequeue_bisections_total", repository=repo) >= 1
    assert value(text, "mergequeue_builds_total", repository=repo, outcome="failed") >= 1
    assert value(text, "mergequeue_merges_total", repository=repo) == len(GOOD)


def _when(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    wait_for(predicate, timeout=timeout, what=what)


def _calls_to(fake: FakeGitHubServer, route: str, method: str, **match: Any) -> int:
    found = fake.calls(route, method)
    return sum(all(str(v) in str(c.get(k, "")) for k, v in match.items()) for c in found)


def test_a_worker_killed_while_building_bisecting_and_landing_reaches_the_same_outcome(
    world: World,
) -> None:
    fake = world.s.fake
    # Building: the worker dies with a staging merge in flight.
    fake.control("delay", seconds=2, route=MERGES_ROUTE, method="POST", times=1)
    _queue_ten(world)
    _when(lambda: _calls_to(fake, MERGES_ROUTE, "POST") >= 1, "a staging merge sent")
    world.restart_worker()

    # Bisecting: the worker dies as soon as a failed batch is recorded.
    def batch_failed() -> bool:
        return any(b.outcome == "failed" and len(b.members) > 1 for b in _builds(world.url))

    _when(batch_failed, "a failed batch", timeout=AFTER_A_KILL)
    world.restart_worker()

    # Landing: the worker dies with the base branch's fast-forward in flight.
    landed_before = _calls_to(fake, REF_ROUTE, "PATCH", path="heads/main")
    fake.control("delay", seconds=2, route=REF_ROUTE, method="PATCH", times=1)
    _when(
        lambda: _calls_to(fake, REF_ROUTE, "PATCH", path="heads/main") > landed_before,
        "a landing sent",
        timeout=AFTER_A_KILL,
    )
    world.restart_worker()

    wait_for(
        lambda: _all_finished(world.url), timeout=3 * AFTER_A_KILL, what="every entry finished"
    )
    _assert_the_outcome(world)
    # Each build's branch was made once: no build id has two staging branches, and the
    # number of builds stays what the queue needed, not one per restart.
    made = [c for c in fake.calls("/repos/{owner}/{repo}/git/refs", "POST")]
    staging = [c["body"]["ref"] for c in made if "refs/heads/mergequeue/" in c["body"]["ref"]]
    assert len(staging) == len(set(staging))
