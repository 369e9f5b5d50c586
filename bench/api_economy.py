"""GitHub's rate limit spent by the queue: REST calls and rate-limit points per merged pull
request, and per hour for one head waiting on CI.

Deterministic and in process: the real engine, the real GitHub client and REST adapter,
and the fake GitHub's HTTP app (through httpx's ASGI transport), with a simulated clock.
Webhooks are the fixtures' payloads, interpreted by the service's own `interpret` (so a
check run that only started wakes nothing, as in production). Reconciliation ticks every
15 s and re-reads a queue when `mergequeue.queue.pacing` says it is due.

Two policies side by side:
  - "previous": no conditional requests, every queue re-read every 15 s (the previous
    release's policy, with this release's reads);
  - "now": conditional requests (a 304 costs no point) and paced reconciliation.

`python -m bench.api_economy` prints the table.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from mergequeue.github import GitHubClient, StaticTokenAuth
from mergequeue.github.queue_adapter import RestRepositoryGitHub
from mergequeue.models import QueueEntryState, Repository
from mergequeue.queue.effective import effective_settings
from mergequeue.queue.engine import evaluate
from mergequeue.queue.intake import apply_queue_change
from mergequeue.queue.pacing import reconcile_due
from mergequeue.settings import load_settings
from mergequeue.webhooks.events import LabelChanged, WakeQueue, interpret
from tests.fakegithub import FakeGitHub
from tests.queue.memory import MemoryStore, RecordedEvents
from tests.support import webhooks

OWNER, NAME = "acme", "widgets"
FULL_NAME = f"{OWNER}/{NAME}"
INSTALLATION = 4711
TOKEN = "ghs_bench"
CHECKS = ("build", "test", "lint")
CI_DURATION = timedelta(minutes=30)
TICK = timedelta(seconds=15)
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

# The bars: the queue's own work for a green merge, and an hour of waiting. Showing the
# queue on the pull request (its `mergequeue` status or check run, and its status comment)
# is counted apart: at most a write per state it shows.
BAR_POINTS_PER_GREEN_MERGE = 15
BAR_POINTS_PER_WAITING_HOUR = 60
BAR_SHOWING_WRITES_PER_GREEN_MERGE = 4
SHOWING_ROUTES = {
    ("POST", "/repos/{owner}/{repo}/statuses/{sha}"),
    ("POST", "/repos/{owner}/{repo}/check-runs"),
    ("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
}


@dataclass(frozen=True)
class Policy:
    name: str
    conditional_requests: bool
    paced: bool


PREVIOUS = Policy("previous: no conditional requests, re-read every 15 s", False, False)
NOW = Policy("now: conditional requests, paced reconciliation", True, True)


@dataclass(frozen=True)
class Measured:
    scenario: str
    policy: str
    calls: int
    points: int
    merged: int
    # Of the points, the writes that show the queue on the pull request.
    showing: int = 0

    @property
    def queue_points(self) -> int:
        return self.points - self.showing


class Bench:
    """One repository with its queue, the fake GitHub behind HTTP, and a simulated clock."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.fake = FakeGitHub()
        self.fake.add_repo(full_name=FULL_NAME)
        self.fake.add_installation(
            installation_id=INSTALLATION, account=OWNER, repositories=[FULL_NAME]
        )
        self.fake.add_token(token=TOKEN, installation_id=INSTALLATION)
        self.fake.protect(full_name=FULL_NAME, branch="main", contexts=CHECKS, strict=True)
        self.client = GitHubClient(
            auth=StaticTokenAuth(TOKEN),
            base_url="https://api.github.com",
            transport=httpx.ASGITransport(app=self.fake.asgi),
            conditional_requests=policy.conditional_requests,
        )
        self.github = RestRepositoryGitHub(self.client, owner=OWNER, repo=NAME)
        self.now = T0
        self.repository = Repository(
            id=1, owner=OWNER, name=NAME, default_branch="main", paused=False
        )
        self.settings = effective_settings(self.repository, load_settings({}))
        self.store = MemoryStore(self.repository, clock=lambda: self.now)
        self.events = RecordedEvents()

    async def evaluate(self) -> None:
        await evaluate(
            store=self.store,
            github=self.github,
            repository=self.repository,
            settings=self.settings,
            events=self.events,
            clock=lambda: self.now,
        )

    async def webhook(self, fixture: str, **changes: Any) -> None:
        """GitHub sends an event; the queue wakes when the service's interpretation says."""
        payload = copy.deepcopy(webhooks.fixture(fixture))
        for dotted, value in changes.items():
            target = payload
            *path, last = dotted.split(".")
            for key in path:
                target = target[key]
            target[last] = value
        woken = any(isinstance(c, WakeQueue) for c in interpret(fixture.split(".")[0], payload))
        if woken:
            await self.evaluate()

    async def run_until(self, end: datetime, scheduled: list[tuple[datetime, Any]]) -> None:
        """Advance the clock in reconciliation ticks, firing scheduled events on the way."""
        pending = sorted(scheduled, key=lambda item: item[0])
        while self.now < end:
            self.now = min(self.now + TICK, end)
            while pending and pending[0][0] <= self.now:
                _, event = pending.pop(0)
                await event()
            if not await self.store.queued(self.repository.id):
                continue
            due = reconcile_due(
                evaluated_at=self.repository.evaluated_at,
                deadline_at=self.repository.deadline_at,
                now=self.now,
                budget_low=False,
            )
            if due or not self.policy.paced:
                await self.evaluate()

    def open_pull(self) -> tuple[int, str]:
        pull = self.fake.add_pull(full_name=FULL_NAME)
        self.store.pulls[int(pull["number"])] = ("main", True)
        return int(pull["number"]), str(pull["head_sha"])

    async def label(self, number: int) -> None:
        self.fake.repo(FULL_NAME).pulls[number].labels.append(self.settings.queue_label)
        await apply_queue_change(
            store=self.store,
            repository=self.repository,
            settings=self.settings,
            change=LabelChanged(1, number, self.settings.queue_label, True, "alice"),
            received_at=self.now,
            refused=frozenset(),
        )
        await self.evaluate()

    def ci(self, number: int, *, fail: str | None = None) -> list[tuple[datetime, Any]]:
        """CI on the pull request's current head: each check starts, then finishes."""
        sha = self.fake.repo(FULL_NAME).pulls[number].head_sha
        events: list[tuple[datetime, Any]] = []
        for i, name in enumerate(CHECKS):
            started = self.now + timedelta(seconds=5 + i)
            finished = self.now + CI_DURATION + timedelta(seconds=i)
            events.append((started, self._check(sha, name, None)))
            events.append(
                (finished, self._check(sha, name, "failure" if name == fail else "success"))
            )
        return events

    def _check(self, sha: str, name: str, conclusion: str | None) -> Callable[[], Any]:
        async def report() -> None:
            self.fake.add_check_run(
                full_name=FULL_NAME,
                head_sha=sha,
                name=name,
                status="completed" if conclusion else "in_progress",
                conclusion=conclusion,
            )
            await self.webhook(
                "check_run.completed",
                action="completed" if conclusion else "created",
                **{"check_run.head_sha": sha, "check_run.name": name},
            )

        return report

    def measured(self, scenario: str) -> Measured:
        merged = sum(e.state == QueueEntryState.MERGED for e in self.store.entries)
        return Measured(
            scenario,
            self.policy.name,
            calls=len(self.fake.calls),
            points=self.fake.points(INSTALLATION),
            merged=merged,
            showing=sum(1 for call in self.fake.calls if call.counted and _shows(call)),
        )


def _shows(call: Any) -> bool:
    if (call.method, call.route) in SHOWING_ROUTES:
        return True
    body = call.body if isinstance(call.body, dict) else {}
    # The status comment's first post (a dequeue's comment says why it left instead).
    return call.method == "POST" and str(body.get("body", "")).startswith("**mergequeue**")


async def green(policy: Policy) -> Measured:
    bench = Bench(policy)
    number, _ = bench.open_pull()
    await bench.label(number)
    await bench.run_until(bench.now + CI_DURATION + timedelta(minutes=2), bench.ci(number))
    return bench.measured("merged, green CI")


async def behind(policy: Policy) -> Measured:
    bench = Bench(policy)
    number, _ = bench.open_pull()
    bench.fake.push(full_name=FULL_NAME, branch="main")
    await bench.label(number)
    # The update gave the pull request a new head: CI runs on it.
    await bench.run_until(bench.now + CI_DURATION + timedelta(minutes=2), bench.ci(number))
    return bench.measured("merged, behind its base (updated first)")


async def failing(policy: Policy) -> Measured:
    bench = Bench(policy)
    number, _ = bench.open_pull()
    await bench.label(number)
    events = bench.ci(number, fail="test")
    await bench.run_until(bench.now + CI_DURATION + timedelta(minutes=2), events)
    return bench.measured("dequeued, failing CI")


async def waiting_hour(policy: Policy) -> Measured:
    bench = Bench(policy)
    number, _ = bench.open_pull()
    await bench.label(number)
    started = [event for event in bench.ci(number) if event[0] < bench.now + CI_DURATION]
    # An hour on checks that run longer than that: what waiting costs by itself.
    bench.repository.ci_timeout_seconds = 3 * 3600
    bench.settings = effective_settings(bench.repository, load_settings({}))
    await bench.run_until(bench.now + timedelta(hours=1), started)
    return bench.measured("one head waiting on CI for an hour")


SCENARIOS = (green, behind, failing, waiting_hour)


async def measure() -> list[Measured]:
    return [await scenario(policy) for scenario in SCENARIOS for policy in (PREVIOUS, NOW)]


def render(results: list[Measured]) -> str:
    lines = [
        "| scenario | policy | REST calls | rate-limit points | of which showing it | merged |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for m in results:
        lines.append(
            f"| {m.scenario} | {m.policy} | {m.calls} | {m.points} | {m.showing} | {m.merged} |"
        )
    return "\n".join(lines)


def main() -> None:
    results = asyncio.run(measure())
    print(render(results))
    now = {m.scenario: m for m in results if m.policy == NOW.name}
    print()
    print(
        f"bars: green merge {now['merged, green CI'].queue_points} points for the queue "
        f"(<= {BAR_POINTS_PER_GREEN_MERGE}) and {now['merged, green CI'].showing} writes "
        f"showing it (<= {BAR_SHOWING_WRITES_PER_GREEN_MERGE}); waiting hour "
        f"{now['one head waiting on CI for an hour'].points} points "
        f"(<= {BAR_POINTS_PER_WAITING_HOUR})"
    )


if __name__ == "__main__":
    main()
