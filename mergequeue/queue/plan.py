"""Parallel mode's decisions for one base branch: which staging builds to start, drop, land
or split, as a pure function of the queue, the builds and GitHub's answers.

A build tests a batch of pull requests on top of everything ahead of it: the first build
on the base branch's head, each next one on the commit of the build before it. The active
builds form that chain, oldest first. When the base branch's head is a build's commit,
that build and every one ahead of it have landed.

`plan(...)` returns the actions; `mergequeue.queue.parallel` performs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import takewhile

from mergequeue.queue.decide import (
    Check,
    CheckVerdict,
    Dequeue,
    DequeueReason,
    EntryStatus,
    LeaveMerged,
    SetStatus,
    judge_checks,
)


@dataclass(frozen=True)
class Member:
    """A pull request in a build, at the head it was built with."""

    number: int
    head_sha: str


@dataclass(frozen=True)
class QueuedPull:
    """A live queue entry with what GitHub says of its pull request now."""

    number: int
    head_sha: str
    enqueued_at: datetime
    # Pull requests of one half of a failed batch share a group: they are built together
    # and apart from the rest until their build's outcome is known.
    group: str | None = None
    state: str = "open"
    merged: bool = False
    draft: bool = False
    found: bool = True


@dataclass(frozen=True)
class BuildView:
    id: int
    branch: str
    members: tuple[Member, ...]
    # The commit the build was made on: the base's head, or the commit of the build ahead.
    parent_sha: str
    # None: making the build did not finish (the worker died): it cannot be trusted.
    sha: str | None
    started_at: datetime
    checks: tuple[Check, ...] = ()
    # Times its failed jobs were re-run.
    retries: int = 0

    @property
    def numbers(self) -> tuple[int, ...]:
        return tuple(m.number for m in self.members)


@dataclass(frozen=True)
class ParallelConfig:
    base_ref: str
    max_builds: int
    batch_size: int
    batch_wait: timedelta
    ci_timeout: timedelta
    paused: bool
    # The repository's own required checks; empty: every check that reports must pass.
    required: tuple[str, ...] = ()
    # Optimistic validation: a failed build is acted on only once this many builds behind
    # it (which hold its changes and more) finished without one passing.
    failure_depth: int = 0
    # Why the base branch is frozen (builds go on, nothing lands); None: not frozen.
    frozen: str | None = None
    # Times a failed build's failed jobs are re-run before the failure counts (only when
    # the App may re-run them).
    flaky_retries: int = 0

    @property
    def lands(self) -> bool:
        return not self.paused and self.frozen is None


# Actions besides `Dequeue`, `LeaveMerged` and `SetStatus`, which mean what they mean in
# serial mode.


@dataclass(frozen=True)
class RecordLanded:
    """The base branch is at (or past) this build's commit: its pull requests are merged."""

    build_id: int


@dataclass(frozen=True)
class Land:
    """Fast-forward the base branch to the build's commit; every build ahead lands too."""

    build_id: int
    sha: str


@dataclass(frozen=True)
class Drop:
    """The build no longer tests what would land: delete its branch, ignore its results."""

    build_id: int
    why: str
    # obsolete (what it tests would no longer land), failed or timed_out.
    outcome: str = "obsolete"
    # The required checks that failed (a failed build's).
    failed_checks: tuple[str, ...] = ()


@dataclass(frozen=True)
class StartBuild:
    """Make a staging commit: `parent_sha` plus each member's head, merged in order."""

    members: tuple[Member, ...]
    # None: on the commit of the build started just before it, in the same plan.
    parent_sha: str | None
    # Pull requests already in the chain ahead of this build (named if one conflicts).
    ahead: tuple[Member, ...]


@dataclass(frozen=True)
class Rerun:
    """Re-run a failed build's failed jobs: a flaky failure may pass the second time."""

    build_id: int


@dataclass(frozen=True)
class Contradicted:
    """A failed build that a later build holding its changes passed: a flaky failure."""

    build_id: int
    checks: tuple[str, ...]


@dataclass(frozen=True)
class Split:
    """A batch failed: its halves are built apart until the failing pull request is found."""

    build_id: int
    groups: tuple[tuple[tuple[int, ...], str], ...]  # (numbers, group)


ParallelAction = (
    RecordLanded
    | Land
    | Drop
    | StartBuild
    | Split
    | Contradicted
    | Rerun
    | Dequeue
    | LeaveMerged
    | SetStatus
)


@dataclass(frozen=True)
class Plan:
    actions: tuple[ParallelAction, ...]
    # When the plan falls due without any webhook (a build's CI timeout, a batch's wait).
    deadline: datetime | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def plan(
    queue: Sequence[QueuedPull],
    builds: Sequence[BuildView],
    base_head: str,
    config: ParallelConfig,
    now: datetime,
) -> Plan:
    actions: list[ParallelAction] = []
    deadlines: list[datetime] = []

    # 1. Builds the base branch has reached have landed.
    landed_upto = next(
        (i for i in range(len(builds) - 1, -1, -1) if builds[i].sha == base_head), None
    )
    landed: set[int] = set()
    if landed_upto is not None:
        # Only the builds the landed one was made on, one on another: a failed build that
        # stepped aside is not among them.
        on_path: set[int] = set()
        sha: str | None = base_head
        for build in reversed(builds[: landed_upto + 1]):
            if build.sha == sha:
                on_path.add(build.id)
                sha = build.parent_sha
        for build in builds[: landed_upto + 1]:
            if build.id in on_path:
                actions.append(RecordLanded(build.id))
                landed.update(build.numbers)
            else:
                actions.append(Drop(build.id, "the base branch moved past it"))
        builds = builds[landed_upto + 1 :]

    # 2. Pull requests that left on GitHub's side leave the queue.
    live: list[QueuedPull] = []
    for pull in queue:
        if pull.number in landed:
            continue
        leaving = _left_on_github(pull)
        if leaving is None:
            live.append(pull)
        else:
            actions.append(leaving)

    # 3. The chain stays while each build tests exactly what would land next. A build
    # whose failure stands steps aside: what comes after it is built without it, at once,
    # while the builds ahead of it decide whether it goes (Zuul's nearest non-failing item).
    chain: list[BuildView] = []
    verdicts: list[CheckVerdict] = []
    failing: set[int] = set()
    parent = base_head
    position = 0
    for build in builds:
        expected = tuple(
            Member(p.number, p.head_sha) for p in live[position:][: len(build.members)]
        )
        if build.sha is None or build.parent_sha != parent or build.members != expected:
            break
        verdict = judge_checks(build.checks, config.required)
        chain.append(build)
        verdicts.append(verdict)
        position += len(build.members)
        undecided_ahead = sum(1 for v in verdicts[:-1] if not v.all_passed)
        if _steps_aside(build, verdict, config, undecided_ahead):
            failing.add(build.id)
        else:
            parent = build.sha
    for build in builds[len(chain) :]:
        actions.append(Drop(build.id, _why_dropped(build, chain, failing, base_head)))

    # `max_builds` bounds the builds CI is testing: one that passed or failed (waiting for
    # those ahead, or for those behind to contradict it) runs nothing.
    testing = sum(1 for v in verdicts if v.pending and not v.failed)

    # 4. The first build whose outcome is known and bad, with only passed builds ahead.
    for index, (build, verdict) in enumerate(zip(chain, verdicts, strict=True)):
        if verdict.all_passed:
            continue
        timed_out = not verdict.failed and now - build.started_at > config.ci_timeout
        if verdict.failed and build.retries < config.flaky_retries:
            # Only what failed runs again; the build waits for it like for any check.
            actions.append(Rerun(build.id))
            deadlines.append(now + config.ci_timeout + timedelta(seconds=1))
            break
        if verdict.failed and config.failure_depth > 0:
            room = len(live) > position and testing < config.max_builds
            judged = _judge_by_those_behind(chain, verdicts, index, config, room, now)
            if isinstance(judged, Land):
                if config.lands:
                    actions.append(Contradicted(build.id, verdict.failed))
                    actions.append(judged)
                    return Plan(tuple(actions), _earliest(deadlines))
                break
            if judged == "wait":
                break
        if verdict.failed or (timed_out and not config.paused):
            actions.extend(_failed(build, verdict, chain[:index], config))
            outcome = "failed" if verdict.failed else "timed_out"
            why = ", ".join(verdict.failed) or "timed out"
            actions.append(Drop(build.id, why, outcome, verdict.failed))
            if build.id not in failing:
                # A build that stepped aside has nothing made on it: what follows stays.
                for behind in chain[index + 1 :]:
                    actions.append(Drop(behind.id, f"a build ahead of it ({build.branch}) failed"))
            # What passed ahead of the failure lands; the rest is planned afresh.
            if index > 0 and config.lands:
                last = chain[index - 1]
                assert last.sha is not None
                actions.append(Land(last.id, last.sha))
            return Plan(tuple(actions), None)
        if not config.paused:
            deadlines.append(build.started_at + config.ci_timeout + timedelta(seconds=1))
        break

    # 5. Land the longest passed prefix of the chain.
    passed = list(takewhile(lambda bv: bv[1].all_passed, zip(chain, verdicts, strict=True)))
    if passed and config.lands:
        last = passed[-1][0]
        assert last.sha is not None
        actions.append(Land(last.id, last.sha))
        return Plan(tuple(actions), _earliest(deadlines))

    # 6. Start builds for what is not in one, while there is room.
    waiting = live[position:]
    ahead = [m for b in chain if b.id not in failing for m in b.members]
    parent_sha: str | None = parent
    slots = config.max_builds - testing
    starting: set[int] = set()
    while waiting and slots > 0 and not config.paused:
        batch = _next_batch(waiting, config.batch_size)
        partial = len(batch) == len(waiting) and len(batch) < config.batch_size
        if partial and batch[0].group is None and config.batch_wait > timedelta(0):
            ready_at = batch[0].enqueued_at + config.batch_wait
            if now < ready_at:
                deadlines.append(ready_at)
                break
        members = tuple(Member(p.number, p.head_sha) for p in batch)
        actions.append(StartBuild(members, parent_sha, tuple(ahead)))
        starting.update(m.number for m in members)
        ahead.extend(members)
        waiting = waiting[len(batch) :]
        slots -= 1
        # The next build is made on this one, whose commit exists only once it is made.
        parent_sha = None

    # 7. What each entry is doing, for the API and the pull request.
    actions.extend(_statuses(live, chain, verdicts, config, starting, failing))
    return Plan(tuple(actions), _earliest(deadlines))


def _judge_by_those_behind(
    chain: Sequence[BuildView],
    verdicts: Sequence[CheckVerdict],
    index: int,
    config: ParallelConfig,
    room_for_more: bool,
    now: datetime,
) -> Land | str:
    """Optimistic validation of the failed build at `index`: a `Land` of the furthest build
    behind it (within `failure_depth`) that passed, whose tree holds the failed build's
    changes and was tested; "wait" while those behind it may still pass; "stands" once
    they finished without passing."""
    window = list(zip(chain, verdicts, strict=True))[index + 1 : index + 1 + config.failure_depth]
    passed = [build for build, verdict in window if verdict.all_passed]
    if passed:
        last = passed[-1]
        assert last.sha is not None
        return Land(last.id, last.sha)
    running = any(
        not verdict.failed and now - build.started_at <= config.ci_timeout
        for build, verdict in window
    )
    short = len(window) < config.failure_depth and room_for_more
    return "wait" if running or short else "stands"


def _steps_aside(
    build: BuildView, verdict: CheckVerdict, config: ParallelConfig, undecided_ahead: int
) -> bool:
    """A single pull request's build whose failure stands (no re-run is left, no build
    behind it is to contradict it) and is likely its own. A failed batch is split instead,
    and its halves land ahead of what follows, so nothing can be built without them.

    Likely its own: with m builds ahead still undecided, a bad pull request among them
    explains the failure as well as this one does, so it is this one's with a chance of
    about 1 / (m + 1). Stepping aside when it is not wastes the builds started behind it
    (they hold the culprit too); the benchmark measured that past one undecided build
    ahead the CI spent outgrows the time saved (docs/benchmarks.md)."""
    return (
        len(build.members) == 1
        and bool(verdict.failed)
        and build.retries >= config.flaky_retries
        and config.failure_depth == 0
        and undecided_ahead <= 1
    )


def _left_on_github(pull: QueuedPull) -> Dequeue | LeaveMerged | None:
    if not pull.found:
        return Dequeue(pull.number, DequeueReason.NOT_FOUND, None, remove_label=False)
    if pull.merged:
        return LeaveMerged(pull.number)
    if pull.state != "open":
        return Dequeue(pull.number, DequeueReason.CLOSED, None, remove_label=False)
    if pull.draft:
        return Dequeue(
            pull.number, DequeueReason.DRAFT, "Removed from the merge queue: it is a draft."
        )
    return None


def _next_batch(waiting: Sequence[QueuedPull], batch_size: int) -> list[QueuedPull]:
    group = waiting[0].group
    return list(takewhile(lambda p: p.group == group, waiting))[:batch_size]


def _failed(
    build: BuildView, verdict: CheckVerdict, ahead: Sequence[BuildView], config: ParallelConfig
) -> list[ParallelAction]:
    if len(build.members) > 1:
        half = (len(build.members) + 1) // 2
        first, second = build.numbers[:half], build.numbers[half:]
        return [Split(build.id, ((first, f"{build.id}a"), (second, f"{build.id}b")))]
    number = build.numbers[0]
    on = config.base_ref
    tested_with = [n for b in ahead for n in b.numbers]
    if tested_with:
        on += " with " + ", ".join(f"#{n}" for n in tested_with)
    if verdict.failed:
        by_name = {c.name: c for c in build.checks}
        named = []
        for name in verdict.failed:
            url = by_name[name].url if name in by_name else None
            named.append(f"`{name}` ({url})" if url else f"`{name}`")
        why = (
            f"Removed from the merge queue: required check failed on its staging build "
            f"`{build.branch}` (tested on {on}): {', '.join(named)}."
        )
        return [Dequeue(number, DequeueReason.CHECK_FAILED, why)]
    minutes = int(config.ci_timeout.total_seconds() // 60)
    pending = ", ".join(f"`{n}`" for n in verdict.pending)
    why = (
        f"Removed from the merge queue: checks on its staging build `{build.branch}` did not "
        f"finish within {minutes} min (still pending: {pending})."
    )
    return [Dequeue(number, DequeueReason.CI_TIMEOUT, why)]


def _why_dropped(
    build: BuildView, chain: Sequence[BuildView], failing: set[int], base_head: str
) -> str:
    if build.sha is None:
        return "making it did not finish"
    if chain and chain[-1].id in failing and build.parent_sha == chain[-1].sha:
        return f"a build ahead of it ({chain[-1].branch}) failed"
    if not chain and build.parent_sha != base_head:
        return "the base branch moved"
    return "what is queued ahead of it changed"


def _statuses(
    live: Sequence[QueuedPull],
    chain: Sequence[BuildView],
    verdicts: Sequence[CheckVerdict],
    config: ParallelConfig,
    starting: set[int],
    failing: set[int],
) -> list[SetStatus]:
    statuses: list[SetStatus] = []
    in_build: dict[int, tuple[BuildView, CheckVerdict]] = {}
    for build, verdict in zip(chain, verdicts, strict=True):
        for number in build.numbers:
            in_build[number] = (build, verdict)
    for pull in live:
        found = in_build.get(pull.number)
        if found is not None:
            build, verdict = found
            if build.id in failing:
                detail = (
                    f"failed in {build.branch}; leaves the queue once the builds ahead of "
                    "it pass (the builds behind it go on without it)"
                )
            elif verdict.all_passed and config.frozen is not None:
                detail = f"passed in {build.branch}; {config.base_ref} is frozen: {config.frozen}"
            elif verdict.all_passed:
                detail = f"passed in {build.branch}; lands when the builds ahead of it pass"
            else:
                detail = f"testing in {build.branch}: " + ", ".join(verdict.pending)
            statuses.append(
                SetStatus(pull.number, EntryStatus.BUILDING, detail, waiting_sha=pull.head_sha)
            )
        elif config.paused:
            statuses.append(
                SetStatus(
                    pull.number,
                    EntryStatus.PAUSED,
                    "the queue of this repository is paused",
                    stop_clock=True,
                )
            )
        elif pull.number in starting:
            # Its status is set once its build exists.
            continue
        else:
            statuses.append(
                SetStatus(
                    pull.number,
                    EntryStatus.WAITING,
                    f"waiting for a build ({len(chain)} of {config.max_builds} running)",
                )
            )
    return statuses


def _earliest(deadlines: Sequence[datetime]) -> datetime | None:
    return min(deadlines) if deadlines else None
