"""A randomized simulation of the whole system against the fake GitHub.

Many pull requests, random check outcomes, a base branch that keeps moving, and webhooks
that GitHub drops or sends twice. Whatever happens, the invariants hold:
  - nothing is merged unless its required check passed on exactly the merged head;
  - pull requests merge in the order they were queued;
  - no pull request stays queued forever.
The seed is printed; rerun a failure with MQ_SIMULATION_SEED=<seed>.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from mergequeue.models import QueueEntry, QueueEntryState
from tests.e2e.conftest import StartWeb, StartWorker
from tests.support import webhooks
from tests.support.db import rows
from tests.support.fake_github import FakeGitHubServer, fake_github  # noqa: F401 (fixture)
from tests.support.processes import QUICK_RECONCILIATION
from tests.support.scenario import Scenario, wait_for

PULL_REQUESTS = 8
ROUNDS = 2
PERMISSION = "/repos/{owner}/{repo}/collaborators/{username}/permission"
PASS_RATE = 0.7
DROP_RATE = 0.25
DUPLICATE_RATE = 0.25
# Dropped webhooks are recovered by reconciliation (a quiet queue is re-read after 5 s
# here), so allow several rounds.
DEADLINE_SECONDS = 150


class FlakyGitHubWebhooks(Scenario):
    """A Scenario whose status webhooks GitHub sometimes drops or delivers twice."""

    rng: random.Random
    dropped = 0
    duplicated = 0

    def _deliver(self, event: str, payload: dict[str, object]) -> None:
        if event == "status" and self.rng.random() < DROP_RATE:
            self.dropped += 1
            return
        body = webhooks.json_body(payload)
        delivery = f"sim-{self.rng.getrandbits(64):016x}"
        copies = 2 if self.rng.random() < DUPLICATE_RATE else 1
        self.duplicated += copies - 1
        for _ in range(copies):
            response = webhooks.deliver(self.web_url, event, body, delivery)
            assert response.status_code in (200, 202), response.text


@pytest.fixture
def seed() -> Iterator[int]:
    chosen = int(os.environ.get("MQ_SIMULATION_SEED", random.randrange(1_000_000)))
    print(f"simulation seed: {chosen}")
    yield chosen


def test_randomized_queue_keeps_its_invariants(
    start_web: StartWeb,
    start_worker: StartWorker,
    postgres_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,  # noqa: F811
    seed: int,
) -> None:
    rng = random.Random(seed)
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        **fake_github.app_env(),
        **QUICK_RECONCILIATION,
    }
    web = start_web(GITHUB_WEBHOOK_SECRET=webhooks.SECRET, **env)
    start_worker(**env)
    sim = FlakyGitHubWebhooks(fake_github, web.url)
    sim.rng = rng
    sim.setup(required=("ci",), strict=True)

    numbers = [sim.open_pull() for _ in range(PULL_REQUESTS)]
    for number in numbers:
        sim.add_label(number)
    verdicts: dict[str, str] = {}  # head sha -> what CI said about it

    def settled() -> bool:
        entries = [r[0] for r in rows(postgres_url, select(QueueEntry))]
        return len(entries) == PULL_REQUESTS and all(
            e.state != QueueEntryState.QUEUED for e in entries
        )

    deadline = time.monotonic() + DEADLINE_SECONDS
    while not settled():
        assert time.monotonic() < deadline, f"queue did not settle (seed {seed})"
        for number in numbers:
            pull = sim.pull(number)
            sha = pull["head"]["sha"]
            if pull["state"] == "open" and sha not in verdicts:
                verdicts[sha] = "success" if rng.random() < PASS_RATE else "failure"
                sim.report(sha, "ci", verdicts[sha])
        if rng.random() < 0.1:
            sim.move_base()  # someone pushes to main: the queue must update before merging
        time.sleep(0.3)

    merges = [
        c
        for c in fake_github.calls("/repos/{owner}/{repo}/pulls/{pull_number}/merge", "PUT")
        if c["status"] == 200
    ]
    merged_numbers = [int(c["path"].rsplit("/", 2)[-2]) for c in merges]
    # 1. Nothing merged without its required check passing on exactly that head.
    for call in merges:
        assert verdicts.get(call["body"]["sha"]) == "success", (seed, call)
    # 2. Queue order kept among those merged.
    assert merged_numbers == sorted(merged_numbers, key=numbers.index), seed
    # 3. Every pull request left the queue, and GitHub agrees with the record.
    entries = {r[0].pull_request_id: r[0] for r in rows(postgres_url, select(QueueEntry))}
    assert len(entries) == PULL_REQUESTS
    for number in numbers:
        assert sim.merged(number) is (number in merged_numbers), (seed, number)
    assert sum(e.state == QueueEntryState.MERGED for e in entries.values()) == len(merges)
    print(
        f"seed {seed}: merged {len(merges)}/{PULL_REQUESTS}, dropped {sim.dropped} "
        f"and duplicated {sim.duplicated} webhooks"
    )


def test_first_in_first_out_holds_across_two_web_processes_and_three_workers(
    start_web: StartWeb,
    start_worker: StartWorker,
    postgres_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,  # noqa: F811
) -> None:
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url, **fake_github.app_env()}
    webs = [start_web(GITHUB_WEBHOOK_SECRET=webhooks.SECRET, **env) for _ in range(2)]
    for _ in range(3):
        start_worker(**env)
    sims = [Scenario(fake_github, web.url) for web in webs]
    sims[0].setup(required=("ci",), strict=True)
    sims[0].fake.control(
        "set_permission", full_name=sims[0].full_name, username="alice", role_name="write"
    )
    merged: list[int] = []
    for _ in range(ROUNDS):
        # Two green pull requests, up to date with main: whichever is at the head merges
        # at once, so only the order of receipt decides which goes first.
        first, second = sims[0].open_pull(), sims[0].open_pull()
        green = {sims[0].head(first), sims[0].head(second)}
        for sha in green:
            sims[0].report(sha, "ci", "success", deliver=False)
        # The first request is a collaborator's command, whose permission GitHub is slow to
        # tell: its delivery is stored first but applied last. The second is a label, sent
        # to the other web process once the first was answered.
        sims[0].fake.control("delay", seconds=1.5, route=PERMISSION, method="GET", times=1)
        sims[0].comment(first, "/mergequeue merge", author="alice", association="COLLABORATOR")
        sims[1].add_label(second)

        def merged_keeping_ci_green(
            pair: tuple[int, int] = (first, second), green: set[str] = green
        ) -> bool:
            for number in pair:
                pull = sims[0].pull(number)
                if pull["state"] == "open" and pull["head"]["sha"] not in green:
                    green.add(pull["head"]["sha"])  # the queue updated it: CI runs, green
                    sims[0].report(pull["head"]["sha"], "ci", "success")
            return all(sims[0].merged(n) for n in pair)

        wait_for(merged_keeping_ci_green, timeout=30, what="both merged")
        merged += [
            int(c["path"].rsplit("/", 2)[-2])
            for c in fake_github.calls("/repos/{owner}/{repo}/pulls/{pull_number}/merge", "PUT")
            if c["status"] == 200 and int(c["path"].rsplit("/", 2)[-2]) in (first, second)
        ]
        assert merged[-2:] == [first, second]
