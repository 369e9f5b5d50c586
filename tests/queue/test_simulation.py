"""The queue engine under a randomized simulation.

Each seed builds a repository (classic protection, a ruleset, or nothing required), a few
pull requests (some fail CI, some are forks the App may not update, some GitHub refuses to
merge) and users of every standing, then runs a few hundred steps: labels and commands from
authorized and unauthorized users, CI results, pushes to the base branch, pauses, webhooks
GitHub drops or sends twice and that workers apply in any order, 5xx answers and rate
limits on any call. The real engine (`decide`, the executor, notices, intake, recovery,
pacing) runs on the in-memory GitHub and store, with a simulated clock.

After every step:
  - nothing was merged with a failing or missing required check, or behind its base;
  - nothing was queued by someone without the permission to;
  - merges follow the order of queueing (first in, first out);
  - every comment GitHub received was told exactly once, and each pull request has at
    most one status comment (it is edited in place).
At the end, with requests stopped and GitHub healthy again, every head is acted on within
minutes of CI reporting on it, so every entry is merged or dequeued with a reason within a
bounded simulated time.

`MQ_SIM_SEEDS=N` runs N seeds (default 1,000); `MQ_SIM_SEED=S` runs just seed S.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mergequeue.github import GitHubError, RateLimited, Unavailable
from mergequeue.models import Notice, NoticeKind, QueueEntryState
from mergequeue.queue.authorize import may_command
from mergequeue.queue.decide import PASSING
from mergequeue.queue.pacing import reconcile_due
from mergequeue.queue.ports import QUEUE_CHECK_NAME
from mergequeue.queue.recover import RECOVERED_BY, recover_commands, recover_labelled
from mergequeue.settings import load_settings
from mergequeue.webhooks.events import Change, LabelChanged, PullRequestClosed, QueueCommand
from tests.queue.harness import FULL_NAME, LABEL, Harness
from tests.queue.memory import BOT, rate_limited, unavailable

STEPS = 150
STATUS_COMMENT = "**mergequeue**"
CI_TIMEOUT = timedelta(minutes=30)
CI_LONGEST = timedelta(minutes=20)
# Once CI has reported on a head, the queue acts on it (merges, dequeues or updates it)
# within this: reconciliation's quiet interval, a deadline, and room for retries.
ACT_WITHIN = timedelta(minutes=3)
RECOVER_EVERY = timedelta(minutes=5)
SETTINGS = load_settings({})

# (login, author_association on comments, role on the repository or None)
USERS = [
    ("acme", "OWNER", "admin"),
    ("alice", "MEMBER", "write"),
    ("dave", "MEMBER", "triage"),
    ("bob", "COLLABORATOR", "read"),
    ("carol", "CONTRIBUTOR", None),
]
AUTHORIZED = {"acme", "alice"}
# Adding a label needs triage on GitHub itself.
LABELERS = ["acme", "alice", "dave"]


@dataclass
class Delivery:
    received_at: datetime
    changes: list[Change]


@dataclass
class World:
    seed: int
    rng: random.Random
    h: Harness
    pulls: list[int]
    bad: set[int]
    fault_rate: float
    drop_rate: float
    dup_rate: float
    inbox: list[Delivery] = field(default_factory=list)
    ci_done: dict[str, datetime] = field(default_factory=dict)  # sha -> when CI reports
    ci_reported: dict[str, datetime] = field(default_factory=dict)  # sha -> when it did
    # (entry id, head sha) -> when the drain first saw it at the head of its queue
    head_since: dict[tuple[int, str], datetime] = field(default_factory=dict)
    dirty: bool = False
    last_recovery: datetime | None = None
    violations: list[str] = field(default_factory=list)
    merged_order: list[datetime] = field(default_factory=list)
    # What `check` has looked at already.
    checked_entries: int = 0
    comments_seen: int = 0
    posted: int = 0
    settled: int = 0
    told_settled: int = 0
    status_comments: set[int] = field(default_factory=set)

    # -- the outside world ------------------------------------------------------------

    def send(self, changes: list[Change], *, droppable: bool = True) -> None:
        """GitHub sends a webhook: maybe never, maybe twice."""
        if droppable and self.rng.random() < self.drop_rate:
            return
        self.inbox.append(Delivery(self.h.now, changes))
        if droppable and self.rng.random() < self.dup_rate:
            self.inbox.append(Delivery(self.h.now + timedelta(seconds=1), changes))

    def fault(self, name: str) -> BaseException | None:
        roll = self.rng.random()
        if roll < self.fault_rate / 2:
            return rate_limited(0)
        if roll < self.fault_rate:
            return unavailable()
        return None

    def open_pulls(self) -> list[int]:
        return [n for n in self.pulls if self.h.fake.repo(FULL_NAME).pulls[n].state == "open"]

    def request(self) -> None:
        candidates = self.open_pulls()
        if not candidates:
            return
        number = self.rng.choice(candidates)
        pr = self.h.fake.repo(FULL_NAME).pulls[number]
        if self.rng.random() < 0.5:
            by = self.rng.choice(LABELERS)
            if LABEL not in pr.labels:
                pr.labels.append(LABEL)
            self.send([LabelChanged(self.h.repository.id, number, LABEL, True, by)])
        else:
            self.send([self._comment(number, "merge")])

    def cancel(self) -> None:
        candidates = self.open_pulls()
        if not candidates:
            return
        number = self.rng.choice(candidates)
        pr = self.h.fake.repo(FULL_NAME).pulls[number]
        if self.rng.random() < 0.5 and LABEL in pr.labels:
            pr.labels.remove(LABEL)
            by = self.rng.choice(LABELERS)
            self.send([LabelChanged(self.h.repository.id, number, LABEL, False, by)])
        else:
            self.send([self._comment(number, "cancel")])

    def _comment(self, number: int, command: str) -> QueueCommand:
        login, association, _ = self.rng.choice(USERS)
        comment_id = self.h.fake.add_comment(
            full_name=FULL_NAME,
            number=number,
            body=f"/mergequeue {command}",
            user=login,
            author_association=association,
        )
        self.h.fake.comments[-1].created_at = self.h.now.timestamp()
        return QueueCommand(
            self.h.repository.id,
            number,
            command,
            login,
            association=association,
            comment_id=comment_id,
        )

    def close_one(self) -> None:
        candidates = self.open_pulls()
        if candidates:
            number = self.rng.choice(candidates)
            self.h.fake.set_pull(full_name=FULL_NAME, number=number, state="closed")
            self.h.store.pulls[number] = ("main", False)
            self.send([PullRequestClosed(self.h.repository.id, number, False)])

    def run_ci(self) -> None:
        """CI starts on every new head and reports a while later (with a webhook)."""
        for number in self.open_pulls():
            sha = self.h.head(number)
            if sha not in self.ci_done:
                self.ci_done[sha] = self.h.now + timedelta(minutes=self.rng.uniform(1, 20))
            elif self.ci_done[sha] <= self.h.now:
                self.ci_done[sha] = datetime.max.replace(tzinfo=self.h.now.tzinfo)
                self.ci_reported[sha] = self.h.now
                conclusion = "failure" if number in self.bad else "success"
                self.h.ci(number, conclusion)
                self.send([])  # check_run: only wakes the queue

    # -- the service ------------------------------------------------------------------

    async def deliver_one(self) -> None:
        """A worker applies one stored delivery (any of them: workers run concurrently)."""
        if not self.inbox:
            return
        delivery = self.rng.choice(self.inbox)
        refused: set[int] = set()
        try:
            for change in delivery.changes:
                if isinstance(change, QueueCommand) and not await may_command(
                    self.h.github,
                    author=change.author,
                    association=change.association,
                    needed=self.h.effective.command_permission,
                ):
                    refused.add(change.comment_id)
        except (RateLimited, Unavailable):
            return  # deferred: stays in the inbox
        self.inbox.remove(delivery)
        self._sync_inbox()
        for change in delivery.changes:
            if isinstance(change, QueueCommand | LabelChanged | PullRequestClosed):
                await self.h.apply(
                    change, refused=frozenset(refused), received_at=delivery.received_at
                )
        self.dirty = True

    def _sync_inbox(self) -> None:
        self.h.store.inbox = [(FULL_NAME, d.received_at) for d in self.inbox]

    async def evaluate(self) -> None:
        repository = self.h.repository
        due = reconcile_due(
            evaluated_at=repository.evaluated_at,
            deadline_at=repository.deadline_at,
            now=self.h.now,
            budget_low=False,
        )
        if not (self.dirty or due):
            return
        self.dirty = False
        try:
            await self.h.evaluate()
        except (RateLimited, Unavailable):
            self.dirty = True  # arq retries the job later

    async def recover(self) -> None:
        if self.last_recovery is not None and self.h.now - self.last_recovery < RECOVER_EVERY:
            return
        try:
            for recover in (recover_labelled, recover_commands):
                recovered = await recover(
                    store=self.h.store,
                    github=self.h.github,
                    repository=self.h.repository,
                    settings=self.h.effective,
                    clock=lambda: self.h.now,
                )
                self.dirty |= bool(recovered)
        except GitHubError:
            return
        self.last_recovery = self.h.now

    # -- invariants -------------------------------------------------------------------

    def before_merge(self, number: int, sha: str) -> None:
        fake = self.h.fake
        required = fake.required_check_names(full_name=FULL_NAME, branch="main")
        runs, _ = fake.latest_checks(full_name=FULL_NAME, sha=sha)
        # The queue's own check shows the queue; it is not one that must pass to merge.
        results = {
            r.name: r.conclusion
            for r in runs
            if r.status == "completed" and r.name != QUEUE_CHECK_NAME
        }
        names = required or set(results)
        if not names or any(results.get(n) not in PASSING for n in names):
            self.violations.append(f"#{number} merged with checks {results}, required {names}")
        if fake.behind_by(full_name=FULL_NAME, base="main", head_sha=sha):
            self.violations.append(f"#{number} merged while behind its base")
        entry = self.h.store.live(number)
        if entry is not None:
            self.merged_order.append(entry.enqueued_at)
            if self.merged_order != sorted(self.merged_order):
                self.violations.append(f"#{number} merged out of queue order")

    def check(self) -> None:
        # Incremental: only what appeared since the last check is looked at.
        entries = self.h.store.entries
        for entry in entries[self.checked_entries :]:
            if entry.enqueued_by not in AUTHORIZED | set(LABELERS) | {RECOVERED_BY}:
                self.violations.append(f"queued by {entry.enqueued_by} without permission")
        self.checked_entries = len(entries)
        # Notices are sent in order, so the sent ones are (almost always) a prefix: count
        # the prefix once, and look at the few after it on every check.
        notices = self.h.store.notices
        while self.settled < len(notices) and notices[self.settled].sent_at is not None:
            self.told_settled += _told(notices[self.settled])
            self.settled += 1
        told = self.told_settled + sum(_told(n) for n in notices[self.settled :])
        new = [c for c in self.h.fake.comments[self.comments_seen :] if c.author == BOT]
        # The status comment is edited in place: one per pull request, never told again.
        for comment in new:
            if comment.body.startswith(STATUS_COMMENT):
                if comment.number in self.status_comments:
                    self.violations.append(f"a second status comment on #{comment.number}")
                self.status_comments.add(comment.number)
        self.posted += sum(1 for c in new if not c.body.startswith(STATUS_COMMENT))
        self.comments_seen = len(self.h.fake.comments)
        if self.posted != told:
            self.violations.append(f"{self.posted} comments posted for {told} notices")

    def check_acted_on(self) -> None:
        """Once a head has CI's result (and is the head, unpaused), it is acted on soon."""
        heads: dict[str, tuple[int, int]] = {}
        for entry, number in [
            (e, self.h.store.numbers[e.id])
            for e in sorted(self.h.store.entries, key=lambda e: (e.enqueued_at, e.id))
            if e.state == QueueEntryState.QUEUED
        ]:
            heads.setdefault(entry.base_ref, (entry.id, number))
        for entry_id, number in heads.values():
            sha = self.h.head(number)
            since = self.head_since.setdefault((entry_id, sha), self.h.now)
            reported = self.ci_reported.get(sha)
            if reported is not None and self.h.now - max(reported, since) > ACT_WITHIN:
                entry = self.h.store.live(number)
                assert entry is not None
                self.violations.append(
                    f"#{number} not acted on {self.h.now - max(reported, since)} after CI "
                    f"reported ({entry.status}: {entry.status_detail})"
                )


def _told(notice: Notice) -> int:
    """1 for a comment GitHub was told, else 0."""
    sent = notice.sent_at is not None and notice.error is None
    return int(sent and notice.kind == NoticeKind.COMMENT)


def build(seed: int) -> World:
    rng = random.Random(seed)
    protection = rng.choice(["classic", "ruleset", "none"])
    h = Harness(
        required=("ci",) if protection == "classic" else (),
        strict=rng.random() < 0.5,
        settings=SETTINGS,
    )
    if protection == "ruleset":
        h.fake.add_ruleset(full_name=FULL_NAME, branches=["main"], required_checks=["ci"])
    h.configure(ci_timeout_seconds=int(CI_TIMEOUT.total_seconds()))
    for login, _, role in USERS:
        if role is not None:
            h.fake.set_permission(full_name=FULL_NAME, username=login, role_name=role)
        else:
            h.fake.add_user(login=login)
    pulls = [h.open_pull() for _ in range(rng.randint(3, 8))]
    world = World(
        seed=seed,
        rng=rng,
        h=h,
        pulls=pulls,
        bad={n for n in pulls if rng.random() < 0.2},
        fault_rate=rng.choice([0.0, 0.02, 0.08]),
        drop_rate=rng.choice([0.0, 0.1, 0.3]),
        dup_rate=rng.choice([0.0, 0.1, 0.3]),
    )
    for n in pulls:
        if rng.random() < 0.1:
            h.github.refuse_update[n] = (403, "Resource not accessible by integration")
        if rng.random() < 0.05:
            h.github.refuse_merge[n] = (405, "Merge commits are not allowed on this repository.")
    h.github.fault = world.fault
    h.github.before_merge = world.before_merge
    return world


async def simulate(seed: int) -> World:
    world = build(seed)
    h, rng = world.h, world.rng
    for _ in range(STEPS):
        h.advance(seconds=rng.uniform(1, 90))
        roll = rng.random()
        if roll < 0.05:
            # A burst: several pull requests queued within a second, as a script would.
            for _ in range(rng.randint(2, 4)):
                world.request()
                h.advance(seconds=0.2)
        elif roll < 0.15:
            world.request()
        elif roll < 0.19:
            world.cancel()
        elif roll < 0.21:
            h.push_base()
            world.send([])
        elif roll < 0.22:
            world.close_one()
        elif roll < 0.24:
            h.pause(not h.repository.paused)
            world.dirty = True  # the API wakes the queue
        world.run_ci()
        # Workers run concurrently: deliveries and evaluations interleave in any order.
        for _ in range(rng.randint(0, 4)):
            if rng.random() < 0.6:
                await world.deliver_one()
            else:
                await world.evaluate()
            world.check()
        await world.recover()
        await world.evaluate()
        world.check()
        if world.violations:
            return world
    # Drain: no new requests, webhooks arrive; the queue must act on every head within
    # ACT_WITHIN of CI reporting on it, and so empty in bounded time.
    h.pause(False)
    world.dirty = True
    world.drop_rate = world.dup_rate = world.fault_rate = 0.0
    queued = len(await h.store.queued(h.repository.id))
    deadline = h.now + (queued + 1) * (CI_LONGEST * 2 + ACT_WITHIN)
    while h.now < deadline:
        h.advance(seconds=30)
        world.run_ci()
        while world.inbox and rng.random() < 0.95:
            await world.deliver_one()
        await world.recover()
        await world.evaluate()
        world.check()
        world.check_acted_on()
        if world.violations:
            return world
        if not world.inbox and not await h.store.queued(h.repository.id):
            break
    left = [
        (h.store.numbers[e.id], e.status, e.status_detail)
        for e in h.store.entries
        if e.state == QueueEntryState.QUEUED
    ]
    if left:
        world.violations.append(f"still queued after the drain: {left}")
    for entry in h.store.entries:
        if entry.state == QueueEntryState.DEQUEUED and not entry.dequeue_reason:
            world.violations.append(f"#{h.store.numbers[entry.id]} dequeued without a reason")
    return world


def _seeds() -> list[int]:
    if "MQ_SIM_SEED" in os.environ:
        return [int(os.environ["MQ_SIM_SEED"])]
    return list(range(int(os.environ.get("MQ_SIM_SEEDS", "1000"))))


async def test_the_queue_keeps_its_invariants_over_a_thousand_seeded_scenarios() -> None:
    started = time.perf_counter()
    failures: list[str] = []
    merged = dequeued = 0
    for seed in _seeds():
        world = await simulate(seed)
        if world.violations:
            failures.append(f"seed {seed}: {world.violations[0]}")
        merged += sum(e.state == QueueEntryState.MERGED for e in world.h.store.entries)
        dequeued += sum(e.state == QueueEntryState.DEQUEUED for e in world.h.store.entries)
    elapsed = time.perf_counter() - started
    print(f"{len(_seeds())} scenarios in {elapsed:.1f}s: {merged} merged, {dequeued} dequeued")
    assert not failures, "\n".join(failures[:10])
    # A simulation that merges nothing proves nothing.
    assert merged > len(_seeds()) and dequeued > 0
