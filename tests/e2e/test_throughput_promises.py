"""The throughput promises end to end, one test each: real web and worker processes,
PostgreSQL, Redis, and the fake GitHub as a server whose scripted CI reports by webhook.

- parallel mode's optimistic validation: a build that fails by chance is contradicted by
  the one behind it, everything lands, and the failure is counted as flaky;
- an urgent pull request (the priority label from someone who may command the queue)
  lands next; the same label from a read-only user changes nothing;
- a freeze lands nothing until it ends, then the queue lands by itself; a freeze of
  another base branch holds nothing on main.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mergequeue.models import (
    DeliveryState,
    PullRequest,
    QueueEntry,
    QueueEntryState,
    WebhookDelivery,
)
from tests.e2e.conftest import StartWeb, StartWorker
from tests.support import webhooks
from tests.support.db import rows
from tests.support.fake_github import FakeGitHubServer, fake_github  # noqa: F401 (fixture)
from tests.support.processes import QUICK_RECONCILIATION
from tests.support.scenario import Scenario, wait_for

TOKEN = "throughput-api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
URGENT = "mergequeue:urgent"


@dataclass
class World:
    s: Scenario
    url: str

    @property
    def repo_url(self) -> str:
        return f"{self.s.web_url}/api/v1/repos/{self.s.full_name}"

    def api(self, method: str, path: str = "", **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.repo_url + path, headers=AUTH, timeout=10, **kwargs)

    def settings(self, **changes: Any) -> None:
        wait_for(lambda: self.api("GET").status_code == 200, what="repository known")
        response = self.api("PATCH", json=changes)
        assert response.status_code == 200, response.text

    def entries(self) -> dict[int, QueueEntry]:
        query = select(QueueEntry, PullRequest.number).join(
            PullRequest, QueueEntry.pull_request_id == PullRequest.id
        )
        return {number: entry for entry, number in rows(self.url, query)}

    def landed(self, numbers: list[int]) -> bool:
        entries = self.entries()
        return all(
            n in entries and entries[n].state == QueueEntryState.MERGED for n in numbers
        ) and all(self.s.merged(n) for n in numbers)

    def tested_trees(self) -> set[str]:
        return {
            r["tree_sha"]
            for r in self.s.fake.control("ci_runs_json", full_name=self.s.full_name)
            if r["status"] == "completed" and r["conclusion"] == "success"
        }

    def base_tree(self) -> str:
        log = self.s.fake.control("branch_log_json", full_name=self.s.full_name, branch="main")
        return str(log[-1]["tree_sha"])


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
    start_worker(**env)
    s = Scenario(fake_github, web.url)
    s.setup()
    fake_github.control("set_webhook_target", url=f"{web.url}/api/webhook", secret=webhooks.SECRET)
    yield World(s, postgres_url)


def test_a_flaky_build_contradicted_by_a_later_one_lands_everything(world: World) -> None:
    s = world.s
    s.fake.control("set_ci", full_name=s.full_name, ci_delay=2.0)
    numbers = [s.open_pull() for _ in range(3)]
    world.settings(
        queue_mode="parallel",
        batch_size=1,
        max_parallel_builds=4,
        batch_wait_seconds=0,
        failure_depth=2,
    )
    # The first staging build fails by chance; the trees are fine, so the next ones pass.
    s.fake.control("force_ci", full_name=s.full_name, outcomes=["failure"], branch="mergequeue/*")
    for number in numbers:
        s.add_label(number)

    wait_for(lambda: world.landed(numbers), timeout=60, what="every pull request landed")
    runs = s.fake.control("ci_runs_json", full_name=s.full_name)
    forced = [r for r in runs if r["reason"] == "forced failure"]
    assert len(forced) == 1 and forced[0]["branch"].startswith("mergequeue/main/")
    # One stay each, every one merged: nobody was dequeued and queued again.
    stays = rows(world.url, select(QueueEntry.state))
    assert sorted(state for (state,) in stays) == [QueueEntryState.MERGED] * 3
    assert not any(s.comments(n) for n in numbers)  # nobody was told their change failed
    # The failure was recorded, and recorded as flaky.
    flakes = world.api("GET", "/flakes").json()
    assert [(f["check"], f["failures"], f["contradicted"], f["flake_rate"]) for f in flakes] == [
        ("ci", 1, 1, 1.0)
    ]
    # The base branch holds a tree that passed CI, after every landing.
    log = s.fake.control("branch_log_json", full_name=s.full_name, branch="main")
    assert all(move["tree_sha"] in world.tested_trees() for move in log[1:]), log
    tree = s.fake.control("commit_json", full_name=s.full_name, sha="main")["tree"]
    assert {f"changes/{n}.txt" for n in numbers} <= set(tree)


def test_an_urgent_pull_request_lands_next(world: World) -> None:
    s = world.s
    s.fake.control("set_permission", full_name=s.full_name, username="lead", role_name="write")
    s.fake.control("set_permission", full_name=s.full_name, username="visitor", role_name="read")
    first, second, third, urgent = (s.open_pull() for _ in range(4))
    for number in (first, second, third):
        s.add_label(number)
    wait_for(lambda: len(world.entries()) == 3, what="three queued")

    # From a read-only user the label changes nothing: #3 stays where it is, normal.
    s.add_label(third, label=URGENT, by="visitor")
    wait_for(lambda: _processed(world, s.sent[-1]), what="the read-only label processed")
    shown = world.api("GET", "/queue").json()["entries"]
    assert (shown[-1]["number"], shown[-1]["priority"]) == (third, "normal")

    # No CI has reported yet, so nothing can land before the urgent label is applied.
    s.add_label(urgent, label=URGENT, by="lead")
    wait_for(lambda: urgent in world.entries(), what="urgent queued")
    assert world.entries()[urgent].priority == 1
    assert not any(s.merged(n) for n in (first, second, third))
    # CI reports on every head now, and on every head the queue's updates make later.
    s.fake.control("set_ci", full_name=s.full_name, branches=["feature-*"], ci_delay=1.0)
    for number in (first, second, third, urgent):
        s.report(s.head(number), "ci", "success")
    wait_for(lambda: world.landed([first, second, third, urgent]), timeout=90, what="all landed")

    entries = world.entries()
    finished = {n: entries[n].finished_at for n in entries}
    assert all(finished[urgent] < finished[n] for n in (first, second, third)), finished
    # The others keep first in, first out: the read-only label did not raise #3.
    assert finished[first] < finished[second] < finished[third]
    assert world.base_tree() in world.tested_trees()


def _processed(world: World, delivery_id: str) -> bool:
    found = rows(world.url, select(WebhookDelivery.state).where(WebhookDelivery.id == delivery_id))
    return bool(found) and found[0][0] == DeliveryState.PROCESSED


def test_a_freeze_lands_nothing_until_it_ends(world: World) -> None:
    s = world.s
    s.fake.control("set_ci", full_name=s.full_name, branches=["feature-*"], ci_delay=0.5)
    number = s.open_pull()
    wait_for(lambda: world.api("GET").status_code == 200, what="repository known")
    until = datetime.now(UTC) + timedelta(seconds=8)
    frozen = world.api("PUT", "/freeze", json={"reason": "release 2.0", "until": until.isoformat()})
    assert frozen.status_code == 200, frozen.text
    assert frozen.json()["frozen"] is True
    s.add_label(number)

    # Tested and held: the queue says why, on the API and on the pull request.
    def held() -> bool:
        status = world.api("GET", f"/pulls/{number}").json()
        return status["status"] == "frozen"

    wait_for(held, timeout=20, what="held by the freeze")
    status = world.api("GET", f"/pulls/{number}").json()
    assert status["status_detail"] == "tested; main is frozen: release 2.0"
    wait_for(lambda: bool(s.own_checks(number)), what="the queue's check run")
    [check] = s.own_checks(number)
    assert check["title"].startswith("Frozen (position 1 of 1 on main)"), check
    assert "release 2.0" in check["summary"]
    assert datetime.now(UTC) < until, "the freeze ended before the test could look"
    assert not s.merged(number)

    # Then it lands by itself: no webhook, no API call; the queue's deadline at the
    # freeze's end and reconciliation pick it up.
    wait_for(lambda: world.landed([number]), timeout=45, what="landed after the freeze")
    entry = world.entries()[number]
    assert entry.finished_at is not None and entry.finished_at >= until
    assert world.api("GET").json()["frozen"] is False


def test_a_freeze_of_another_base_branch_lets_main_land(world: World) -> None:
    s = world.s
    s.fake.control("set_ci", full_name=s.full_name, branches=["feature-*"], ci_delay=0.5)
    number = s.open_pull()
    wait_for(lambda: world.api("GET").status_code == 200, what="repository known")
    frozen = world.api("PUT", "/freeze", json={"reason": "release 2.0", "branch": "release"})
    assert frozen.status_code == 200, frozen.text
    assert (frozen.json()["frozen"], frozen.json()["freeze_branch"]) == (True, "release")
    s.add_label(number)
    wait_for(lambda: world.landed([number]), timeout=30, what="landed on main")
    assert world.api("GET").json()["freeze_branch"] == "release"
