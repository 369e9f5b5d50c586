"""The queue engine's two Protocols in memory: GitHub and the store.

`MemoryGitHub` answers from the fake GitHub's state with the fake's own semantics
(`FakeGitHub.merge_state`, `update_branch`, `merge_pull`, ...: the same code the HTTP fake
answers with, which tests/github checks against GitHub's OpenAPI description), without
HTTP, JSON or a client in between. It records every call and can be told to fail some.

`MemoryStore` keeps queue entries and notices as plain (transient) ORM objects.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from mergequeue.github import RateLimited, Unavailable
from mergequeue.github.queue_adapter import (
    CHECK_NAME,
    CHECK_SUMMARY_LIMIT,
    REACTIONS,
    check_run_state,
    cut,
)
from mergequeue.models import (
    Build,
    BuildState,
    Notice,
    NoticeKind,
    Notification,
    QueueEntry,
    QueueEntryState,
    Repository,
)
from mergequeue.queue import notices
from mergequeue.queue.commands import finish
from mergequeue.queue.decide import Check, EntryStatus
from mergequeue.queue.ports import (
    Budget,
    CommandComment,
    Conflict,
    Publication,
    PullInfo,
    Refused,
    Role,
)
from mergequeue.queue.sizing import FAILED_OUTCOMES, PASSED_OUTCOMES, Measured, measured
from mergequeue.queue.store import ACTIVE_BUILD_STATES
from tests.fakegithub.state import ApiError, FakeGitHub

BOT = "mergequeue[bot]"
# Called before every call with its name; returns an exception to raise instead (a rate
# limit, an outage), or None to go ahead.
FaultHook = Callable[[str], BaseException | None]


@dataclass
class MemoryGitHub:
    fake: FakeGitHub
    full_name: str
    calls: list[str] = field(default_factory=list)
    fault: FaultHook | None = None
    # GitHub answers the fake does not model: a fork's branch the App may not push to,
    # a merge a repository rule refuses.
    refuse_update: dict[int, tuple[int, str]] = field(default_factory=dict)
    refuse_merge: dict[int, tuple[int, str]] = field(default_factory=dict)
    # Called before GitHub merges (number, head sha), and after it did.
    before_merge: Callable[[int, str], None] | None = None
    on_merge: Callable[[int, str], None] | None = None
    # The installation whose token it calls with (None: a static token, allowed anything).
    installation_id: int | None = None

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.fault is not None:
            error = self.fault(name)
            if error is not None:
                raise error

    def count(self, name: str) -> int:
        return self.calls.count(name)

    async def pull(self, number: int) -> PullInfo | None:
        self._call("pull")
        pr = self.fake.repo(self.full_name).pulls.get(number)
        if pr is None:
            return None
        mergeable, state, _ = self.fake.merge_state(full_name=self.full_name, number=number)
        return PullInfo(
            number=pr.number,
            state=pr.state,
            merged=pr.merged,
            draft=pr.draft,
            head_sha=pr.head_sha,
            base_ref=pr.base_ref,
            author=pr.user,
            mergeable=mergeable,
            mergeable_state=state,
            labels=tuple(pr.labels),
        )

    async def checks(self, sha: str) -> tuple[Check, ...]:
        self._call("checks")
        runs, statuses = self.fake.latest_checks(full_name=self.full_name, sha=sha)
        # The run's details_url, as the HTTP fake shows it and the REST adapter reads it.
        found = [Check(r.name, r.status, r.conclusion, r.details_url) for r in runs]
        for st in statuses:
            if st.state == "pending":
                found.append(Check(st.context, "in_progress", None))
            else:
                conclusion = "success" if st.state == "success" else "failure"
                found.append(Check(st.context, "completed", conclusion, st.target_url))
        return tuple(found)

    async def required_checks(self, branch: str) -> tuple[str, ...]:
        self._call("required_checks")
        return tuple(
            sorted(self.fake.required_check_names(full_name=self.full_name, branch=branch))
        )

    async def behind_by(self, base: str, head_sha: str) -> int:
        self._call("behind_by")
        return self.fake.behind_by(full_name=self.full_name, base=base, head_sha=head_sha)

    async def update_branch(self, number: int, expected_head_sha: str) -> None:
        self._call("update_branch")
        if number in self.refuse_update:
            raise Refused(*self.refuse_update[number])
        try:
            self.fake.update_branch(
                full_name=self.full_name, number=number, expected_head_sha=expected_head_sha
            )
        except ApiError as exc:
            raise Refused(exc.status, exc.message) from None

    async def merge(self, number: int, sha: str, method: str) -> str:
        self._call("merge")
        if number in self.refuse_merge:
            raise Refused(*self.refuse_merge[number])
        if (
            self.before_merge is not None
            and self.fake.merge_state(full_name=self.full_name, number=number)[2] is None
        ):
            self.before_merge(number, sha)
        try:
            merged = self.fake.merge_pull(
                full_name=self.full_name, number=number, sha=sha, method=method
            )
        except ApiError as exc:
            raise Refused(exc.status, exc.message) from None
        if self.on_merge is not None:
            self.on_merge(number, sha)
        return merged

    async def comment(self, number: int, body: str) -> None:
        self._call("comment")
        self.fake.create_comment(
            full_name=self.full_name,
            number=number,
            body=body,
            author=BOT,
            author_association="NONE",
        )

    async def remove_label(self, number: int, label: str) -> None:
        self._call("remove_label")
        try:
            self.fake.remove_label(full_name=self.full_name, number=number, label=label)
        except ApiError as exc:
            if exc.status != 404:
                raise Refused(exc.status, exc.message) from None

    async def role(self, username: str) -> Role:
        self._call("role")
        try:
            _, role = self.fake.permission_of(full_name=self.full_name, username=username)
        except ApiError:
            return Role.NONE
        return Role(role)

    async def labelled_open_pulls(self, label: str) -> tuple[int, ...]:
        self._call("labelled_open_pulls")
        pulls = self.fake.repo(self.full_name).pulls.values()
        return tuple(sorted(p.number for p in pulls if p.state == "open" and label in p.labels))

    async def recent_comments(self, limit: int) -> tuple[CommandComment, ...]:
        self._call("recent_comments")
        mine = [c for c in self.fake.comments if c.repo == self.full_name][-limit:]
        return tuple(
            CommandComment(c.id, c.number, c.author, c.author_association, c.body, c.created_at)
            for c in reversed(mine)
        )

    def budget(self) -> Budget | None:
        return None

    # -- staging branches (parallel mode): `StagingGitHub` over the fake's git ----------

    async def branch_head(self, branch: str) -> str | None:
        self._call("branch_head")
        try:
            return self.fake.get_ref(full_name=self.full_name, ref=f"heads/{branch}")
        except ApiError:
            return None

    async def create_branch(self, branch: str, sha: str) -> None:
        self._call("create_branch")
        try:
            self.fake.create_ref(full_name=self.full_name, ref=f"refs/heads/{branch}", sha=sha)
        except ApiError as exc:
            raise Refused(exc.status, exc.message) from None

    async def reset_branch(self, branch: str, sha: str) -> None:
        self._call("reset_branch")
        try:
            self.fake.update_ref(
                full_name=self.full_name, ref=f"heads/{branch}", sha=sha, force=True
            )
        except ApiError as exc:
            raise Refused(exc.status, exc.message) from None

    async def fast_forward(self, branch: str, sha: str) -> None:
        self._call("fast_forward")
        try:
            self.fake.update_ref(full_name=self.full_name, ref=f"heads/{branch}", sha=sha)
        except ApiError as exc:
            raise Refused(exc.status, exc.message) from None

    async def delete_branch(self, branch: str) -> None:
        self._call("delete_branch")
        try:
            self.fake.delete_ref(full_name=self.full_name, ref=f"heads/{branch}")
        except ApiError as exc:
            if exc.message != "Reference does not exist":
                raise Refused(exc.status, exc.message) from None

    async def merge_into(self, branch: str, head_sha: str, message: str) -> str:
        self._call("merge_into")
        try:
            merged = self.fake.merge_branches(
                full_name=self.full_name, base=branch, head=head_sha, commit_message=message
            )
        except ApiError as exc:
            if exc.status == 409:
                raise Conflict(exc.message) from None
            raise Refused(exc.status, exc.message) from None
        return merged if merged is not None else self.fake.repo(self.full_name).branches[branch]

    async def tree_of(self, sha: str) -> str:
        self._call("tree_of")
        try:
            return self.fake.git_commit(full_name=self.full_name, sha=sha).tree_sha
        except ApiError as exc:
            raise Refused(exc.status, exc.message) from None

    async def branches_with_prefix(self, prefix: str) -> tuple[str, ...]:
        self._call("branches_with_prefix")
        refs = self.fake.matching_refs(full_name=self.full_name, ref=f"heads/{prefix}")
        return tuple(sorted(ref.removeprefix("refs/heads/") for ref, _ in refs))

    async def rerun_failed_jobs(self, branch: str) -> int:
        self._call("rerun_failed_jobs")
        runs = self.fake.workflow_runs(full_name=self.full_name, branch=branch, status="failure")
        for run in runs:
            assert run.workflow_run_id is not None
            try:
                self.fake.rerun_failed_jobs(
                    full_name=self.full_name,
                    run_id=run.workflow_run_id,
                    installation_id=self.installation_id,
                )
            except ApiError as exc:
                raise Refused(exc.status, exc.message) from None
        return len(runs)

    async def cancel_workflow_runs(self, branch: str) -> int:
        self._call("cancel_workflow_runs")
        asked = 0
        for run in self.fake.workflow_runs(full_name=self.full_name, branch=branch):
            if run.status == "completed" or run.workflow_run_id is None:
                continue
            try:
                self.fake.cancel_workflow_run(
                    full_name=self.full_name,
                    run_id=run.workflow_run_id,
                    installation_id=self.installation_id,
                )
            except ApiError as exc:
                if exc.status != 409:
                    raise Refused(exc.status, exc.message) from None
                continue
            asked += 1
        return asked

    # -- showing the queue (`ShowingGitHub`), as the App: check runs, never statuses -------

    async def publish(
        self, head_sha: str, publication: Publication, check_run_id: int | None
    ) -> int | None:
        self._call("publish")
        status, conclusion = check_run_state(publication)
        fields = {
            "status": status,
            "conclusion": conclusion,
            "title": publication.title,
            "summary": cut(publication.summary, CHECK_SUMMARY_LIMIT),
            "details_url": publication.details_url,
        }
        try:
            if check_run_id is not None:
                try:
                    self.fake.update_check_run(
                        full_name=self.full_name, check_run_id=check_run_id, **fields
                    )
                except ApiError as exc:
                    if exc.status != 404:
                        raise
                else:
                    runs = self.fake.repo(self.full_name).check_runs
                    if next(r for r in runs if r.id == check_run_id).head_sha == head_sha:
                        return check_run_id
            return self.fake.create_check_run(
                full_name=self.full_name, head_sha=head_sha, name=CHECK_NAME, **fields
            )
        except ApiError as exc:
            raise Refused(exc.status, exc.message) from None

    async def upsert_comment(self, number: int, comment_id: int | None, body: str) -> int:
        self._call("upsert_comment")
        try:
            if comment_id is not None:
                try:
                    self.fake.update_comment(
                        full_name=self.full_name, comment_id=comment_id, body=body
                    )
                except ApiError as exc:
                    if exc.status != 404:
                        raise
                else:
                    return comment_id
            return self.fake.create_comment(
                full_name=self.full_name, number=number, body=body, author=BOT
            )
        except ApiError as exc:
            raise Refused(exc.status, exc.message) from None

    async def react(self, comment_id: int, content: str) -> None:
        self._call("react")
        if content not in REACTIONS:
            raise ValueError(f"unknown reaction {content!r}")
        try:
            self.fake.add_reaction(
                full_name=self.full_name, comment_id=comment_id, content=content, user=BOT
            )
        except ApiError as exc:
            if exc.status != 404:
                raise Refused(exc.status, exc.message) from None


def rate_limited(now: float) -> RateLimited:
    return RateLimited(retry_at=now + 60, kind="secondary", status=403, message="secondary limit")


def unavailable() -> Unavailable:
    return Unavailable(502, "Server Error")


@dataclass
class MemoryStore:
    """The queue's rows in memory. `pulls` is what webhooks told about each pull request
    (its base branch and whether it is open), as the database's pull_requests table."""

    repository: Repository
    pulls: dict[int, tuple[str, bool]] = field(default_factory=dict)
    entries: list[QueueEntry] = field(default_factory=list)
    numbers: dict[int, int] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    # Stored deliveries not yet applied: (repository full name, received at).
    inbox: list[tuple[str, datetime]] = field(default_factory=list)
    clock: Callable[[], datetime] | None = None
    handled: set[int] = field(default_factory=set)
    builds: list[Build] = field(default_factory=list)
    # check name -> (failures, contradicted)
    flakes: dict[str, tuple[int, int]] = field(default_factory=dict)
    commits: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _now(self) -> datetime:
        assert self.clock is not None, "MemoryStore needs a clock to create entries"
        return self.clock()

    def live(self, number: int) -> QueueEntry | None:
        for entry in self.entries:
            if self.numbers[entry.id] == number and entry.state == QueueEntryState.QUEUED:
                return entry
        return None

    def stays(self, number: int) -> list[QueueEntry]:
        return [e for e in self.entries if self.numbers[e.id] == number]

    async def queued(self, repository_id: int) -> list[tuple[QueueEntry, int]]:
        live = [
            e
            for e in self.entries
            if e.repository_id == repository_id and e.state == QueueEntryState.QUEUED
        ]
        live.sort(key=lambda e: (e.base_ref, -(e.priority or 0), e.enqueued_at, e.id))
        return [(e, self.numbers[e.id]) for e in live]

    async def earlier_delivery_pending(self, full_name: str, before: datetime) -> bool:
        return any(name == full_name and at < before for name, at in self.inbox)

    async def active_builds(self, repository_id: int, base_ref: str | None = None) -> list[Build]:
        return [
            b
            for b in self.builds
            if b.repository_id == repository_id
            and base_ref in (None, b.base_ref)
            and b.state in ACTIVE_BUILD_STATES
        ]

    async def add_build(self, build: Build) -> None:
        build.id = len(self.builds) + 1
        self.builds.append(build)

    async def finished_since(
        self, repository_id: int, since: datetime
    ) -> list[tuple[QueueEntry, int]]:
        done = [
            e
            for e in self.entries
            if e.repository_id == repository_id
            and e.state != QueueEntryState.QUEUED
            and e.finished_at is not None
            and e.finished_at >= since
        ]
        done.sort(key=lambda e: (e.finished_at or since, e.id))
        return [(e, self.numbers[e.id]) for e in done]

    async def count_check_failures(
        self, repository_id: int, names: tuple[str, ...], *, contradicted: bool
    ) -> None:
        for name in names:
            failures, flaky = self.flakes.get(name, (0, 0))
            self.flakes[name] = (failures + 1, flaky + int(contradicted))

    async def build_stats(self, repository_id: int, since: datetime) -> Measured:
        finished = [
            (b.outcome, b.created_at, b.finished_at)
            for b in self.builds
            if b.repository_id == repository_id
            and b.finished_at is not None
            and b.finished_at >= since
            and b.outcome in PASSED_OUTCOMES | FAILED_OUTCOMES
        ]
        arrivals = [
            e.enqueued_at
            for e in self.entries
            if e.repository_id == repository_id and e.enqueued_at >= since
        ]
        return measured(finished, arrivals, self._now())

    async def landing_times(self, repository_id: int, since: datetime) -> list[datetime]:
        return [
            e.finished_at
            for e in self.entries
            if e.repository_id == repository_id
            and e.state == QueueEntryState.MERGED
            and e.finished_at is not None
            and e.finished_at >= since
        ]

    async def landed_builds_since(
        self, repository_id: int, base_ref: str, since: datetime
    ) -> list[Build]:
        return [
            b
            for b in self.builds
            if b.repository_id == repository_id
            and b.base_ref == base_ref
            and b.state == BuildState.LANDED
            and b.finished_at is not None
            and b.finished_at >= since
        ]

    async def add_notice(self, notice: Notice) -> None:
        if any(n.key == notice.key for n in self.notices):
            return
        notice.id = next(self._ids)
        self.notices.append(notice)

    async def add_notification(self, notification: Notification) -> None:
        if any(
            (n.key, n.destination) == (notification.key, notification.destination)
            for n in self.notifications
        ):
            return
        notification.id = next(self._ids)
        self.notifications.append(notification)

    async def owed_unlabels(self, repository_id: int) -> set[int]:
        return {
            n.number
            for n in self.notices
            if n.repository_id == repository_id
            and n.kind == NoticeKind.REMOVE_LABEL
            and n.sent_at is None
        }

    async def prioritize(self, repository: Repository, number: int, priority: int) -> bool:
        entry = self.live(number)
        if entry is None:
            return False
        entry.priority = priority
        return True

    async def enqueue(
        self, repository: Repository, number: int, *, by: str, at: datetime, priority: int = 0
    ) -> bool:
        base_ref, is_open = self.pulls.get(number, (repository.default_branch, True))
        if not is_open or self.live(number) is not None:
            return False
        entry = QueueEntry(
            id=next(self._ids),
            repository_id=repository.id,
            pull_request_id=number,
            base_ref=base_ref,
            state=QueueEntryState.QUEUED,
            status=EntryStatus.WAITING,
            enqueued_by=by,
            enqueued_at=at,
            status_changed_at=self._now(),
            waited_seconds=0.0,
            priority=priority,
            status_comment_id=next(
                (
                    e.status_comment_id
                    for e in reversed(self.stays(number))
                    if e.status_comment_id is not None
                ),
                None,
            ),
        )
        self.entries.append(entry)
        self.numbers[entry.id] = number
        return True

    async def dequeue(
        self, repository: Repository, number: int, *, reason: str, remove_label: str | None
    ) -> bool:
        entry = self.live(number)
        if entry is None:
            return False
        finish(entry, QueueEntryState.DEQUEUED, reason)
        for notice in notices.for_dequeue(
            entry_id=entry.id,
            repository_id=repository.id,
            number=number,
            comment_body=None,
            label=remove_label,
        ):
            await self.add_notice(notice)
        return True

    async def leave_closed(self, repository: Repository, number: int, *, merged: bool) -> None:
        entry = self.live(number)
        if entry is not None:
            finish(
                entry,
                QueueEntryState.MERGED if merged else QueueEntryState.DEQUEUED,
                "merged_outside_queue" if merged else "closed",
            )

    async def pending_notices(self, repository_id: int) -> list[Notice]:
        return [n for n in self.notices if n.repository_id == repository_id and n.sent_at is None]

    async def claim_command(self, comment_id: int, repository_id: int) -> bool:
        if comment_id in self.handled:
            return False
        self.handled.add(comment_id)
        return True

    async def handled_commands(self, comment_ids: list[int]) -> set[int]:
        return self.handled & set(comment_ids)

    async def commit(self) -> None:
        self.commits += 1


@dataclass
class RecordedEvents:
    """`QueueEvents` that keep what happened, for assertions."""

    merges: list[tuple[str, float]] = field(default_factory=list)
    dequeues: list[tuple[str, str]] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    build_outcomes: list[str] = field(default_factory=list)
    in_flight: int = 0
    bisections: int = 0
    landings: int = 0
    flaky_checks: list[str] = field(default_factory=list)

    def merged(self, full_name: str, seconds_in_queue: float) -> None:
        self.merges.append((full_name, seconds_in_queue))

    def dequeued(self, full_name: str, reason: str) -> None:
        self.dequeues.append((full_name, reason))

    def build_started(self, full_name: str, size: int) -> None:
        self.batch_sizes.append(size)

    def build_ended(self, full_name: str, outcome: str) -> None:
        self.build_outcomes.append(outcome)

    def builds_in_flight(self, full_name: str, count: int) -> None:
        self.in_flight = count

    def bisected(self, full_name: str) -> None:
        self.bisections += 1

    def landed(self, full_name: str) -> None:
        self.landings += 1

    def flaky(self, full_name: str, check: str) -> None:
        self.flaky_checks.append(check)
