"""Parallel mode for one base branch: read GitHub, plan (`mergequeue.queue.plan`), act.

Staging builds are made out of sight of CI first, on `mergequeue-making/<base>/<id>`, and
only the finished commit is put on `mergequeue/<base>/<id>`: CI configured for
`mergequeue/**` runs once per build, never on a half-made one.

Every step that changes GitHub is preceded by a commit of what the database knows, so a
worker that dies at any point leaves a state the next evaluation reads correctly: a build
still "making" is dropped and made again under a new id (its branches are deleted), a
landing that happened is recognised from the base branch's head.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from mergequeue.github import GitHubError
from mergequeue.models import Build, BuildState, QueueEntry
from mergequeue.queue.decide import Dequeue, DequeueReason, EntryStatus, LeaveMerged, SetStatus
from mergequeue.queue.effective import MAX_PARALLEL_BUILDS, EffectiveSettings
from mergequeue.queue.executor import Executor, set_status
from mergequeue.queue.plan import (
    BuildView,
    Contradicted,
    Drop,
    Land,
    Member,
    ParallelAction,
    ParallelConfig,
    QueuedPull,
    RecordLanded,
    Rerun,
    Split,
    StartBuild,
    plan,
)
from mergequeue.queue.ports import QUEUE_CHECK_NAME, Conflict, Refused, StagingGitHub
from mergequeue.queue.runs import cancel_runs
from mergequeue.queue.sizing import DEFAULT_CI_BUDGET, WINDOW, auto_builds
from mergequeue.queue.snapshot import own_check_aside
from mergequeue.queue.store import QueueStore

log = logging.getLogger("mergequeue.queue")

STAGING_PREFIX = "mergequeue/"
# Pull requests tried one by one to name what a conflicting one conflicts with.
MAX_SUSPECTS = 10
MAKING_PREFIX = "mergequeue-making/"


def _numbers(numbers: Sequence[int]) -> str:
    return ", ".join(f"#{n}" for n in numbers)


def staging_branch(base_ref: str, build_id: int) -> str:
    return f"{STAGING_PREFIX}{base_ref}/{build_id}"


def making_branch(base_ref: str, build_id: int) -> str:
    return f"{MAKING_PREFIX}{base_ref}/{build_id}"


@dataclass(frozen=True)
class BranchOutcome:
    changed: bool
    deadline: datetime | None


@dataclass
class ParallelBranch:
    """One evaluation round of one base branch's queue in parallel mode."""

    store: QueueStore
    github: StagingGitHub
    executor: Executor
    settings: EffectiveSettings
    clock: Callable[[], datetime]
    vouch: Callable[[str, str], Awaitable[None]] | None = None

    @property
    def repository_id(self) -> int:
        return self.executor.target.id

    @property
    def full_name(self) -> str:
        return self.executor.target.full_name

    async def round(self, base_ref: str, rows: Sequence[tuple[QueueEntry, int]]) -> BranchOutcome:
        base_head = await self.github.branch_head(base_ref)
        if base_head is None:
            log.warning("base branch not found", extra={"branch": base_ref})
            return BranchOutcome(False, None)
        entries = {number: entry for entry, number in rows}
        queue: list[QueuedPull] = []
        for entry, number in rows:
            pull = await self.github.pull(number)
            if pull is not None and pull.state == "open" and pull.base_ref != entry.base_ref:
                entry.base_ref = pull.base_ref  # retargeted: it queues on the other branch
                return BranchOutcome(True, None)
            queue.append(
                QueuedPull(
                    number=number,
                    head_sha=pull.head_sha if pull else "",
                    enqueued_at=entry.enqueued_at,
                    group=entry.batch_group,
                    state=pull.state if pull else "closed",
                    merged=pull.merged if pull else False,
                    draft=pull.draft if pull else False,
                    found=pull is not None,
                )
            )
        builds = await self.store.active_builds(self.repository_id, base_ref)
        required = self.settings.required_checks
        if required is None:
            required = await self.github.required_checks(base_ref)
        required = tuple(n for n in required if n != QUEUE_CHECK_NAME)
        views = [await self._view(b) for b in builds]
        max_builds = self.settings.max_parallel_builds
        if self.settings.auto_builds:
            stats = await self.store.build_stats(self.repository_id, self.clock() - WINDOW)
            max_builds = auto_builds(
                stats,
                budget=DEFAULT_CI_BUDGET,
                limit=MAX_PARALLEL_BUILDS,
                fallback=max_builds,
                waiting=len(rows),
            )
        config = ParallelConfig(
            base_ref=base_ref,
            max_builds=max_builds,
            batch_size=self.settings.batch_size,
            batch_wait=self.settings.batch_wait,
            ci_timeout=self.settings.ci_timeout,
            paused=self.settings.paused,
            required=required,
            failure_depth=self.settings.failure_depth,
            flaky_retries=self.settings.flaky_retries
            if self.settings.flaky_retries_in_effect
            else 0,
            frozen=self.settings.frozen(self.clock(), base_ref),
        )
        decided = plan(queue, views, base_head, config, self.clock())
        by_id = {b.id: b for b in builds}
        changed = False
        made_sha: str | None = None
        for action in decided.actions:
            if isinstance(action, StartBuild):
                parent = action.parent_sha if action.parent_sha is not None else made_sha
                if parent is None:
                    # The build it was to be made on could not be made: plan afresh.
                    changed = True
                    break
                made_sha = await self._start(action, parent, base_ref, entries)
                changed = True
                continue
            changed |= await self._act(action, base_ref, entries, by_id)
        await self.store.commit()
        in_flight = len(await self.store.active_builds(self.repository_id, base_ref))
        self.executor.events.builds_in_flight(self.full_name, in_flight)
        return BranchOutcome(changed, decided.deadline)

    async def _view(self, build: Build) -> BuildView:
        checks = own_check_aside(await self.github.checks(build.sha)) if build.sha else ()
        return BuildView(
            id=build.id,
            branch=build.branch,
            members=tuple(Member(int(n), str(sha)) for n, sha in build.members),
            parent_sha=build.parent_sha,
            sha=build.sha if build.state == BuildState.TESTING else None,
            started_at=build.created_at,
            checks=checks,
            retries=build.retries or 0,
        )

    async def _act(
        self,
        action: ParallelAction,
        base_ref: str,
        entries: dict[int, QueueEntry],
        builds: dict[int, Build],
    ) -> bool:
        match action:
            case SetStatus():
                entry = entries.get(action.number)
                if entry is not None:
                    set_status(entry, action, self.clock())
                return False
            case Dequeue() | LeaveMerged():
                entry = entries.get(action.number)
                if entry is None:
                    return False
                return await self.executor.run(entry, action.number, [action])
            case RecordLanded():
                await self._landed(builds[action.build_id], entries)
                return True
            case Land():
                return await self._land(action, base_ref, builds, entries)
            case Drop():
                await self._drop(builds[action.build_id], action)
                return True
            case Split():
                for numbers, group in action.groups:
                    for number in numbers:
                        if number in entries:
                            entries[number].batch_group = group
                self.executor.events.bisected(self.full_name)
                log.info(
                    "bisecting", extra={"repository": self.full_name, "build": action.build_id}
                )
                return True
            case Rerun():
                build = builds[action.build_id]
                build.retries = (build.retries or 0) + 1
                # Counted before asking: a re-run GitHub never hears of is not retried
                # forever, the failure then stands at the next evaluation.
                await self.store.commit()
                try:
                    rerun = await self.github.rerun_failed_jobs(build.branch)
                except (Refused, GitHubError) as exc:
                    log.info(
                        "could not re-run a failed build",
                        extra={"repository": self.full_name, "build": build.id, "why": str(exc)},
                    )
                    return True
                log.info(
                    "re-running a failed build's failed jobs",
                    extra={"repository": self.full_name, "build": build.id, "runs": rerun},
                )
                return rerun > 0
            case Contradicted():
                build = builds[action.build_id]
                build.outcome = "flaky"
                build.outcome_detail = (
                    "failed " + ", ".join(action.checks) + "; a later build passed"
                )
                await self.store.count_check_failures(
                    self.repository_id, action.checks, contradicted=True
                )
                for name in action.checks:
                    self.executor.events.flaky(self.full_name, name)
                log.info(
                    "a failed build was contradicted by a later one",
                    extra={
                        "repository": self.full_name,
                        "build": build.id,
                        "checks": action.checks,
                    },
                )
                return False
            case StartBuild():
                raise AssertionError("builds are started by round()")

    async def _landed(self, build: Build, entries: dict[int, QueueEntry]) -> None:
        flaky = build.outcome == "flaky"
        self._end(build, BuildState.LANDED, "flaky" if flaky else "passed", build.outcome_detail)
        for number, _ in build.members:
            entry = entries.get(int(number))
            if entry is not None:
                entry.status = EntryStatus.MERGING
                await self.executor.run(entry, int(number), [LeaveMerged(int(number))])
        await self.store.commit()
        await self.github.delete_branch(build.branch)

    async def _land(
        self, action: Land, base_ref: str, builds: dict[int, Build], entries: dict[int, QueueEntry]
    ) -> bool:
        await self.store.commit()
        if self.vouch is not None:
            # The tested commit carries the queue's own check: a base that requires it
            # takes the fast-forward.
            await self.vouch(action.sha, base_ref)
        try:
            await self.github.fast_forward(base_ref, action.sha)
        except Refused as exc:
            # Someone pushed to the base branch: the next round drops every build.
            log.info("landing refused", extra={"repository": self.full_name, "why": exc.message})
            return True
        self.executor.events.landed(self.full_name)
        log.info(
            "landed",
            extra={"repository": self.full_name, "build": action.build_id, "sha": action.sha},
        )
        for build in sorted(builds.values(), key=lambda b: b.id):
            if build.id <= action.build_id and build.state == BuildState.TESTING:
                await self._landed(build, entries)
        return True

    async def _drop(self, build: Build, action: Drop) -> None:
        self._end(build, BuildState.DROPPED, action.outcome, action.why)
        if action.failed_checks:
            await self.store.count_check_failures(
                self.repository_id, action.failed_checks, contradicted=False
            )
        await self.store.commit()
        if self.settings.cancel_workflow_runs:
            await cancel_runs(self.github, build.branch, self.full_name)
        await self.github.delete_branch(making_branch(build.base_ref, build.id))
        await self.github.delete_branch(build.branch)
        log.info(
            "build dropped",
            extra={"repository": self.full_name, "build": build.id, "why": action.why},
        )

    def _end(self, build: Build, state: BuildState, outcome: str, detail: str | None) -> None:
        end_build(self.executor, build, state, outcome, detail)

    async def _start(
        self,
        action: StartBuild,
        parent: str,
        base_ref: str,
        entries: dict[int, QueueEntry],
    ) -> str | None:
        """Make the build; returns its commit (None when every member conflicted)."""
        build = Build(
            repository_id=self.repository_id,
            base_ref=base_ref,
            branch="",
            state=BuildState.MAKING,
            members=[[m.number, m.head_sha] for m in action.members],
            parent_sha=parent,
            created_at=self.clock(),
        )
        await self.store.add_build(build)
        build.branch = staging_branch(base_ref, build.id)
        await self.store.commit()

        making = making_branch(base_ref, build.id)
        await self._put_branch(making, parent)
        kept: list[Member] = []
        ahead = list(action.ahead)
        sha = parent
        for member in action.members:
            try:
                sha = await self.github.merge_into(
                    making, member.head_sha, f"Merge #{member.number} into {build.branch}"
                )
            except Conflict:
                await self._conflicted(member, ahead, base_ref, entries)
                continue
            kept.append(member)
            ahead.append(member)
        if not kept:
            self._end(build, BuildState.DROPPED, "conflict", "every pull request conflicted")
            await self.store.commit()
            await self.github.delete_branch(making)
            return None
        await self._put_branch(build.branch, sha)
        await self.github.delete_branch(making)
        build.members = [[m.number, m.head_sha] for m in kept]
        build.sha = sha
        build.state = BuildState.TESTING
        self.executor.events.build_started(self.full_name, len(kept))
        now = self.clock()
        for member in kept:
            entry = entries.get(member.number)
            if entry is not None:
                set_status(
                    entry,
                    SetStatus(
                        member.number,
                        EntryStatus.BUILDING,
                        f"testing in {build.branch}",
                        waiting_sha=member.head_sha,
                    ),
                    now,
                )
        await self.store.commit()
        log.info(
            "build started",
            extra={
                "repository": self.full_name,
                "build": build.id,
                "pulls": [m.number for m in kept],
            },
        )
        return sha

    async def _put_branch(self, branch: str, sha: str) -> None:
        try:
            await self.github.create_branch(branch, sha)
        except Refused:
            # Left by a worker that died making it: it is ours, rewrite it.
            await self.github.reset_branch(branch, sha)

    async def _conflicted(
        self,
        member: Member,
        ahead: list[Member],
        base_ref: str,
        entries: dict[int, QueueEntry],
    ) -> None:
        entry = entries.get(member.number)
        if entry is None:
            return
        landed = [
            Member(int(number), str(sha))
            for build in await self.store.landed_builds_since(
                self.repository_id, base_ref, entry.enqueued_at
            )
            for number, sha in build.members
        ]
        queued = await self._culprits(member, ahead[-MAX_SUSPECTS:])
        merged = await self._culprits(member, landed[-MAX_SUSPECTS:])
        named: list[str] = []
        if queued:
            named.append(_numbers(queued) + " queued ahead of it")
        if merged:
            named.append(_numbers(merged) + f" merged into `{base_ref}` since it was queued")
        if named:
            why = f"Removed from the merge queue: it conflicts with {' and '.join(named)}."
        else:
            why = f"Removed from the merge queue: it conflicts with `{base_ref}`."
        await self.executor.run(
            entry, member.number, [Dequeue(member.number, DequeueReason.CONFLICT, why)]
        )
        await self.store.commit()

    async def _culprits(self, member: Member, suspects: Sequence[Member]) -> list[int]:
        """Which of `suspects` the pull request conflicts with, each tried on its own: a
        probe branch at the suspect's head, the pull request merged into it. Conflicts are
        rare; this costs three calls per suspect."""
        found = []
        probe = f"{MAKING_PREFIX}probe/{member.number}"
        for suspect in suspects:
            await self._put_branch(probe, suspect.head_sha)
            try:
                await self.github.merge_into(probe, member.head_sha, "conflict probe")
            except Conflict:
                found.append(suspect.number)
            finally:
                await self.github.delete_branch(probe)
        return found


def end_build(
    executor: Executor, build: Build, state: BuildState, outcome: str, detail: str | None
) -> None:
    """Record how a build ended, and count it."""
    build.state = state
    build.outcome = outcome
    build.outcome_detail = detail
    build.finished_at = executor.clock()
    executor.events.build_ended(executor.target.full_name, outcome)


async def drop_builds(
    store: QueueStore, github: StagingGitHub, executor: Executor, repository_id: int
) -> None:
    """Drop every active build (the repository left parallel mode)."""
    builds = await store.active_builds(repository_id)
    for build in builds:
        end_build(
            executor, build, BuildState.DROPPED, "obsolete", "the repository left parallel mode"
        )
    if builds:
        await store.commit()
    for build in builds:
        await github.delete_branch(making_branch(build.base_ref, build.id))
        await github.delete_branch(build.branch)


async def clean_orphans(store: QueueStore, github: StagingGitHub, repository_id: int) -> list[str]:
    """Delete staging branches no active build owns (left by a crash, or by a build dropped
    while GitHub was unreachable); returns their names.

    The branches are listed before the builds are read: a build is recorded before its
    branches exist, so a branch listed here whose build is active is always seen as owned.
    """
    found = [
        *await github.branches_with_prefix(STAGING_PREFIX),
        *await github.branches_with_prefix(MAKING_PREFIX),
    ]
    if not found:
        return []
    owned: set[str] = set()
    for build in await store.active_builds(repository_id):
        owned.add(build.branch)
        owned.add(making_branch(build.base_ref, build.id))
    orphans = [name for name in found if name not in owned]
    for name in orphans:
        await github.delete_branch(name)
    return orphans
