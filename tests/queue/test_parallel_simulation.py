"""Parallel mode under a randomized simulation.

Each seed picks a configuration (batch size, builds at once, batch wait), pull requests
(some bad: CI fails every build that holds them; some touching a file another touches too,
so they conflict) and runs a few hundred steps: pull requests labelled, unlabelled, closed
or pushed to, pushes to the base branch, pauses, CI finishing builds in any order, 5xx
answers on any call and workers dying at any call (the store goes back to its last commit,
as a database transaction would). The real engine, planner and executor run on the fake
GitHub's git model with its scripted CI, with a simulated clock.

After every step:
  - every tree the base branch held, other than by someone's push, passed CI: nothing
    untested landed, and no bad pull request landed;
  - pull requests land in the order they were queued;
  - after an evaluation that finished, each active build owns its staging branch and no
    other staging branch exists but those a crash left (which reconciliation deletes).
At the end, with GitHub healthy and every CI run finished, the queue empties within a
bounded simulated time: every entry is merged or dequeued with a reason, and after
reconciliation no staging branch is left, and no pull request was dequeued for a failure
another one caused.

`MQ_SIM_SEEDS=N` runs N seeds (default 1,000); `MQ_SIM_SEED=S` runs just seed S.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import inspect

from mergequeue.github import GitHubError
from mergequeue.models import Installation, QueueEntryState
from mergequeue.queue.parallel import MAKING_PREFIX, STAGING_PREFIX, clean_orphans
from mergequeue.webhooks.events import LabelChanged, PullRequestClosed
from tests.queue.harness import FULL_NAME, LABEL, Harness
from tests.queue.memory import unavailable

STEPS = 60
URGENT = "mergequeue:urgent"
SETTLE_STEPS = 300


class WorkerDied(Exception):
    """The worker process ended in the middle of a call."""


_KEYS: dict[type, tuple[str, ...]] = {}


def _columns(obj: Any) -> dict[str, Any]:
    keys = _KEYS.get(type(obj))
    if keys is None:
        keys = _KEYS[type(obj)] = tuple(a.key for a in inspect(obj).mapper.column_attrs)
    values = obj.__dict__
    return {key: values.get(key) for key in keys}


@dataclass
class Committed:
    """What the store held at its last commit: a crash goes back to it."""

    entries: list[tuple[Any, dict[str, Any]]]
    builds: list[tuple[Any, dict[str, Any]]]
    notices: list[Any]


@dataclass
class World:
    seed: int
    rng: random.Random
    h: Harness
    flaky: bool
    bad: set[int]
    crash_rate: float
    fault_rate: float
    initial_head: str = ""
    pushed: set[str] = field(default_factory=set)  # base heads someone else made
    committed: Committed | None = None
    violations: list[str] = field(default_factory=list)
    merged_seen: set[int] = field(default_factory=set)
    next_file: int = 0

    # -- the store's transactions --------------------------------------------------

    def install_commit_snapshots(self) -> None:
        store = self.h.store
        real_commit = store.commit

        async def commit() -> None:
            await real_commit()
            self.snapshot()

        store.commit = commit  # type: ignore[method-assign]
        self.snapshot()

    def snapshot(self) -> None:
        store = self.h.store
        self.committed = Committed(
            entries=[(e, _columns(e)) for e in store.entries],
            builds=[(b, _columns(b)) for b in store.builds],
            notices=list(store.notices),
        )

    def roll_back(self) -> None:
        assert self.committed is not None
        store = self.h.store
        store.entries = [e for e, _ in self.committed.entries]
        store.builds = [b for b, _ in self.committed.builds]
        store.notices = list(self.committed.notices)
        for obj, values in [*self.committed.entries, *self.committed.builds]:
            for key, value in values.items():
                setattr(obj, key, value)

    # -- the outside world -------------------------------------------------------------

    def fault(self, name: str) -> BaseException | None:
        roll = self.rng.random()
        if roll < self.crash_rate:
            return WorkerDied(name)
        if roll < self.crash_rate + self.fault_rate:
            return unavailable()
        return None

    def open_pulls(self) -> list[int]:
        return [n for n, p in self.h.fake.repo(FULL_NAME).pulls.items() if p.state == "open"]

    def new_pull(self) -> None:
        number = len(self.h.fake.repo(FULL_NAME).pulls) + 1
        files: dict[str, str | None] = {f"changes/{number}.txt": f"change {number}\n"}
        if self.rng.random() < 0.15:
            # Touches a file some other pull requests touch too: they conflict.
            files[f"shared/{self.rng.randrange(2)}.txt"] = f"from #{number}\n"
        if self.rng.random() < 0.12:
            files[f"bad/{number}.txt"] = "fails CI\n"
            self.bad.add(number)
        self.h.open_pull(files=files)

    async def label_one(self) -> None:
        candidates = [n for n in self.open_pulls() if self.h.store.live(n) is None]
        if candidates:
            await self.h.label(self.rng.choice(candidates))

    async def unlabel_one(self) -> None:
        candidates = [n for n in self.open_pulls() if self.h.store.live(n) is not None]
        if candidates:
            number = self.rng.choice(candidates)
            pr = self.h.fake.repo(FULL_NAME).pulls[number]
            if LABEL in pr.labels:
                pr.labels.remove(LABEL)
            await self.h.apply(LabelChanged(self.h.repository.id, number, LABEL, False, "alice"))

    async def close_one(self) -> None:
        candidates = self.open_pulls()
        if candidates:
            number = self.rng.choice(candidates)
            self.h.fake.set_pull(full_name=FULL_NAME, number=number, state="closed")
            self.h.store.pulls[number] = ("main", False)
            await self.h.apply(PullRequestClosed(self.h.repository.id, number, False))

    def push_to_pull(self) -> None:
        candidates = self.open_pulls()
        if candidates:
            number = self.rng.choice(candidates)
            self.h.fake.push(full_name=FULL_NAME, branch=f"feature-{number}")

    def push_to_base(self) -> None:
        self.next_file += 1
        sha = self.h.fake.push(
            full_name=FULL_NAME,
            branch="main",
            files={f"base/{self.next_file}.txt": "pushed\n"},
        )
        self.pushed.add(sha)

    def toggle_freeze(self) -> None:
        repository = self.h.repository
        repository.frozen_reason = None if repository.frozen_reason else "release"
        repository.frozen_until = self.h.now + timedelta(minutes=self.rng.randint(5, 60))

    async def urgent_one(self) -> None:
        candidates = self.open_pulls()
        if candidates:
            number = self.rng.choice(candidates)
            self.h.fake.repo(FULL_NAME).pulls[number].labels.append(URGENT)
            await self.h.apply(LabelChanged(self.h.repository.id, number, URGENT, True, "alice"))

    def finish_some_ci(self) -> None:
        pending = [
            r["sha"]
            for r in self.h.fake.ci_runs_json(full_name=FULL_NAME)
            if r["status"] != "completed"
        ]
        for sha in pending:
            if self.rng.random() < 0.5:
                self.h.fake.complete_ci(full_name=FULL_NAME, sha=sha)

    # -- the service -------------------------------------------------------------------

    async def evaluate(self) -> bool:
        """One evaluation; False when the worker died or GitHub failed in the middle."""
        order = [entry for entry, _ in await self.h.store.queued(self.h.repository.id)]
        try:
            await self.h.evaluate()
            self.check_landing_order(order)
        except WorkerDied:
            self.roll_back()
            return False
        except GitHubError:
            # The job fails and is retried; what was committed stays.
            self.roll_back()
            return False
        self.snapshot()
        return True

    # -- invariants --------------------------------------------------------------------

    def check_landing_order(self, order: list[Any]) -> None:
        """What landed is a prefix of the queue as it stood: nothing still queued was ahead
        of anything that landed (urgent entries stand ahead of normal ones in that order)."""
        landed = [i for i, e in enumerate(order) if e.state == QueueEntryState.MERGED]
        if landed and any(e.state == QueueEntryState.QUEUED for e in order[: max(landed)]):
            self.violations.append("landed out of queue order")

    def check(self, *, evaluation_finished: bool) -> None:
        fake = self.h.fake
        repo = fake.repo(FULL_NAME)
        passed = {
            r["tree_sha"]
            for r in fake.ci_runs_json(full_name=FULL_NAME)
            if r["status"] == "completed" and r["conclusion"] == "success"
        }
        head = repo.branches["main"]
        if head not in self.pushed and head != self.initial_head:
            tree = fake.commit_json(full_name=FULL_NAME, sha=head)["tree_sha"]
            if tree not in passed:
                self.violations.append(f"untested tree landed: main at {head[:7]}")
        for number in self.bad:
            if repo.pulls[number].merged:
                self.violations.append(f"bad pull request #{number} landed")
        if evaluation_finished:
            active = {b.branch for b in self.h.store.builds if b.state.value == "testing"}
            staging = {b for b in repo.branches if b.startswith(STAGING_PREFIX)}
            if not active <= staging:
                self.violations.append(f"a testing build lost its branch: {active - staging}")


def _world(seed: int) -> World:
    rng = random.Random(seed)
    h = Harness(required=("ci",) if rng.random() < 0.7 else ())
    h.configure(
        queue_mode="parallel",
        batch_size=rng.choice([1, 1, 2, 3, 4]),
        max_parallel_builds=rng.choice([1, 2, 4, 8]),
        batch_wait_seconds=rng.choice([0, 0, 120]),
        ci_timeout_seconds=rng.choice([1800, 3600]),
        failure_depth=rng.choice([0, 0, 1, 2]),
    )
    # Drawn apart, so that the seeds above keep drawing what they always drew.
    more = random.Random(f"{seed}:more")
    if more.random() < 0.2:
        h.configure(max_parallel_builds=0)  # auto
    if more.random() < 0.3:
        # Failed jobs re-run once before a failure counts: the App may re-run them.
        h.fake.add_installation(installation_id=7, account="acme", repositories=[FULL_NAME])
        h.fake.set_installation_permissions(installation_id=7, permissions={"actions": "write"})
        h.github.installation_id = 7
        h.installation = Installation(
            id=7, account_login="acme", suspended=False, actions_write=True
        )
        h.configure(flaky_retries=1)
    # Some seeds' CI is flaky: any build fails by chance (README.md is in every tree).
    flaky = rng.choice([0.0, 0.0, 0.05])
    h.fake.set_ci(
        full_name=FULL_NAME,
        bad_paths=["bad/*"],
        seed=seed,
        flaky={"README.md": flaky} if flaky else None,
    )
    world = World(
        seed=seed,
        rng=rng,
        h=h,
        flaky=flaky > 0,
        bad=set(),
        crash_rate=rng.choice([0.0, 0.01, 0.03]),
        fault_rate=rng.choice([0.0, 0.02]),
    )
    world.initial_head = h.fake.repo(FULL_NAME).branches["main"]
    world.install_commit_snapshots()
    h.github.fault = world.fault
    return world


async def _run(seed: int) -> World:
    w = _world(seed)
    for _ in range(w.rng.randint(3, 8)):
        w.new_pull()
    for _ in range(STEPS):
        roll = w.rng.random()
        if roll < 0.25:
            await w.label_one()
        elif roll < 0.28:
            w.new_pull()
        elif roll < 0.30:
            await w.unlabel_one()
        elif roll < 0.32:
            await w.close_one()
        elif roll < 0.34:
            w.push_to_pull()
        elif roll < 0.36:
            w.push_to_base()
        elif roll < 0.38:
            w.h.pause(not w.h.repository.paused)
        elif roll < 0.40:
            w.toggle_freeze()
        elif roll < 0.42:
            await w.urgent_one()
        elif roll < 0.70:
            w.finish_some_ci()
        w.h.advance(seconds=w.rng.randint(5, 300))
        finished = await w.evaluate()
        w.check(evaluation_finished=finished)

    # GitHub healthy, nobody acting: the queue must drain.
    w.h.github.fault = None
    w.h.pause(False)
    w.h.repository.frozen_reason = None
    for _ in range(SETTLE_STEPS):
        w.h.fake.complete_ci(full_name=FULL_NAME)
        w.h.advance(minutes=1)
        finished = await w.evaluate()
        w.check(evaluation_finished=finished)
        if not await w.h.store.queued(w.h.repository.id):
            break
    else:
        w.violations.append("the queue did not drain")
    await clean_orphans(w.h.store, w.h.github, w.h.repository.id)
    left = [
        b
        for b in w.h.fake.repo(FULL_NAME).branches
        if b.startswith((STAGING_PREFIX, MAKING_PREFIX))
    ]
    if left:
        w.violations.append(f"staging branches left: {left}")
    for entry in w.h.store.entries:
        if entry.state == QueueEntryState.DEQUEUED and not entry.dequeue_reason:
            w.violations.append("dequeued without a reason")
        number = w.h.store.numbers[entry.id]
        if entry.dequeue_reason == "check_failed" and number not in w.bad and not w.flaky:
            # CI is not flaky here: bisection must find the bad one, never blame another.
            w.violations.append(f"#{number} dequeued for a failure it did not cause")
    return w


def _seeds() -> list[int]:
    if "MQ_SIM_SEED" in os.environ:
        return [int(os.environ["MQ_SIM_SEED"])]
    return list(range(int(os.environ.get("MQ_SIM_SEEDS", "1000"))))


async def test_parallel_mode_keeps_its_invariants_over_a_thousand_seeded_scenarios() -> None:
    failures: dict[int, list[str]] = {}
    landed = dequeued = builds = bisections = 0
    for seed in _seeds():
        w = await _run(seed)
        if w.violations:
            failures[seed] = w.violations[:3]
        landed += sum(e.state == QueueEntryState.MERGED for e in w.h.store.entries)
        dequeued += sum(e.state == QueueEntryState.DEQUEUED for e in w.h.store.entries)
        builds += len(w.h.store.builds)
        bisections += w.h.events.bisections
    assert not failures, {seed: failures[seed] for seed in list(failures)[:5]}
    # The scenarios exercise what they claim to: landings, dequeues and bisections happen.
    assert landed > 0 and dequeued > 0 and builds > 0
    assert len(_seeds()) < 50 or bisections > 0
    print(f"landed {landed}, dequeued {dequeued}, builds {builds}, bisections {bisections}")
