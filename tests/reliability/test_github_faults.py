"""GitHub failing while a pull request is at the head of the queue.

A burst of 502s, a call that never answers and a secondary rate limit: the queue defers
(arq retries), merges by itself once GitHub answers again, and never on a check result
that no longer applies: the head moves during the outage, so the green status reported
just before it is stale, and only the new head's green status may merge. The worker's
metrics show what happened. The Scenario and fake GitHub are the e2e suite's
(tests/e2e/test_merge_queue.py covers the queue when GitHub is healthy).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import StartWeb, StartWorker, Worker
from tests.support import webhooks
from tests.support.fake_github import FakeGitHubServer
from tests.support.metrics import total
from tests.support.processes import QUICK_RECONCILIATION
from tests.support.scenario import Scenario, wait_for

PULL = "/repos/{owner}/{repo}/pulls/{pull_number}"
STATUS = "/repos/{owner}/{repo}/commits/{ref}/status"
MERGE = "/repos/{owner}/{repo}/pulls/{pull_number}/merge"
BURST = 6  # two evaluations' worth: the client tries each call 3 times


@pytest.fixture
def world(
    start_web: StartWeb,
    start_worker: StartWorker,
    sqlite_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,
) -> Iterator[tuple[Scenario, Worker]]:
    env = {
        "DATABASE_URL": sqlite_url,
        "REDIS_URL": redis_url,
        **fake_github.app_env(),
        **QUICK_RECONCILIATION,
    }
    web = start_web(GITHUB_WEBHOOK_SECRET=webhooks.SECRET, **env)
    worker = start_worker(**env)
    scenario = Scenario(fake_github, web.url)
    scenario.setup()
    yield scenario, worker


def _metrics(worker: Worker) -> str:
    return httpx.get(worker.metrics_url, timeout=10).text


def _fault(fake: FakeGitHubServer, kind: str, **arguments: object) -> None:
    # Not fake.control(): its own first parameter is called `method`, like the fault's.
    httpx.post(f"{fake.url}/_fake/{kind}", json=arguments, timeout=10).raise_for_status()


def _pull(s: Scenario, number: int) -> dict[str, object]:
    # Through the control API: the test's own reads must neither meet nor use up the faults.
    pull: dict[str, object] = s.fake.control("pull_json", full_name=s.full_name, number=number)
    return pull


def _merged(s: Scenario, number: int) -> bool:
    return bool(_pull(s, number)["merged"])


def _calls(fake: FakeGitHubServer, route: str, status: int | None = None) -> int:
    return len([c for c in fake.calls(route) if status is None or c["status"] == status])


def _reads(fake: FakeGitHubServer, route: str) -> int:
    """Successful reads: an unchanged answer to a conditional request is a 304."""
    return len([c for c in fake.calls(route) if c["status"] in (200, 304)])


def test_queue_waits_out_github_failures_and_merges_only_the_fresh_head(
    world: tuple[Scenario, Worker],
) -> None:
    s, worker = world
    fake = s.fake
    number = s.open_pull()
    s.add_label(number)
    wait_for(lambda: _reads(fake, PULL) > 0, what="first evaluation read the pull")

    stale_head = s.head(number)
    # Outage: every read of the pull request answers 502 for two evaluations' worth.
    _fault(fake, "fail", status=502, times=BURST, route=PULL, method="GET")
    s.report(stale_head, "ci", "success")
    # Meanwhile someone pushes: the green status above is for a head that is gone.
    fresh_head = "f" * 40
    fake.control("set_pull", full_name=s.full_name, number=number, head_sha=fresh_head)
    wait_for(lambda: _calls(fake, PULL, 502) >= BURST, timeout=40, what="the burst was hit")
    recovered_reads = _reads(fake, PULL)
    wait_for(
        lambda: _reads(fake, PULL) > recovered_reads,
        timeout=40,
        what="an evaluation after GitHub recovered",
    )
    time.sleep(1)
    assert not _merged(s, number), "merged on the stale head's green status"
    assert _calls(fake, MERGE) == 0

    # A call that never answers (the client gives up after its 10 s timeout and retries)
    # and a secondary rate limit, while the fresh head goes green.
    _fault(fake, "hang", seconds=60, route=PULL, method="GET", times=1)
    _fault(fake, "rate_limit_secondary", retry_after=2, route=STATUS, method="GET", times=1)
    s.report(fresh_head, "ci", "success")
    wait_for(lambda: _merged(s, number), timeout=60, what="merged after GitHub recovered")

    [merge] = fake.calls(MERGE)
    assert merge["body"]["sha"] == fresh_head
    text = _metrics(worker)
    assert total(text, "github_api_call_latency_count", endpoint=PULL, status="502") >= BURST
    assert total(text, "github_api_call_latency_count", endpoint=PULL, status="timeout") >= 1
    assert total(text, "github_api_call_latency_count", endpoint=STATUS, status="403") >= 1
    retries = total(text, "arq_jobs_total", function="evaluate_queue", outcome="retry")
    # One for the rate limit, and one for each 502 an evaluation met: showing the queue on
    # the pull request reads it too and may meet one of the two instead (it is best effort:
    # that evaluation goes on, and the next shows it).
    assert retries >= 2
    assert total(text, "mergequeue_merges_total", repository=s.full_name) == 1
