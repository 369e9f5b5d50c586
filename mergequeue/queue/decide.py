"""What to do with the head of a queue: a pure function of its state and GitHub's answers.

`decide(entry, pull, config, now)` returns the actions to take; the executor performs them.
No I/O here, so every path is tested directly (tests/queue/test_decide.py) and by a
randomized simulation (tests/queue/test_simulation.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal


class DequeueReason(StrEnum):
    CLOSED = "closed"
    UNLABELED = "unlabeled"
    CANCELLED = "cancelled"
    API = "api"
    DASHBOARD = "dashboard"  # a signed-in person pressed "Dequeue" on the dashboard
    CHECK_FAILED = "check_failed"
    CONFLICT = "conflict"
    CI_TIMEOUT = "ci_timeout"
    BLOCKED = "blocked"
    DRAFT = "draft"
    NOT_FOUND = "not_found"
    MERGE_FAILED = "merge_failed"
    UPDATE_FAILED = "update_failed"


class EntryStatus(StrEnum):
    """What the queue is doing with an entry (stored in `queue_entries.status`)."""

    WAITING = "waiting"  # queued behind others
    PAUSED = "paused"
    FROZEN = "frozen"  # tested and ready, held until the base branch's freeze ends
    UPDATING = "updating"
    WAITING_FOR_CHECKS = "waiting_for_checks"
    CONFIRMING_BLOCKED = "confirming_blocked"
    MERGING = "merging"
    BUILDING = "building"  # parallel mode: in a staging build
    MERGED = "merged"
    DEQUEUED = "dequeued"


# GitHub computes mergeability after the checks finish: "blocked" with every required check
# green is believed only once it has lasted this long.
BLOCKED_GRACE = timedelta(seconds=60)
CONFIRMING = EntryStatus.CONFIRMING_BLOCKED

# Conclusions that let a required check pass, as GitHub's branch protection counts them.
PASSING = frozenset({"success", "neutral", "skipped"})
# The pending name shown while no check at all has reported on a head whose repository
# requires none: then every check that reports must pass, and at least one must.
ANY_CHECK = "(any check)"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # queued / in_progress / completed
    conclusion: str | None  # success, failure, neutral, cancelled, timed_out, ...
    # Where its result is shown (a check run's details, a status's target), if anywhere;
    # not part of what the check says.
    url: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PullSnapshot:
    """The pull request as GitHub reports it now."""

    number: int
    state: str  # open / closed
    merged: bool
    draft: bool
    head_sha: str
    base_ref: str
    mergeable: bool | None  # None: GitHub is still computing
    mergeable_state: str  # behind / clean / dirty / blocked / unstable / unknown / draft ...
    checks: tuple[Check, ...]  # check runs and commit statuses on head_sha
    # Names of the required checks; empty: none is configured anywhere, so every check
    # that reported on the head must pass (and at least one must have reported).
    required: tuple[str, ...]
    # Commits of the base branch the head lacks (GitHub's compare). Branch protection's
    # "up to date" rule is not needed for the queue to test against the current base.
    behind_by: int = 0
    # The base requires the queue's own check: GitHub blocks the merge until the queue
    # marks the head as tested.
    own_check_required: bool = False


@dataclass(frozen=True)
class Refusal:
    """GitHub refused an update or merge of this head; seen again, the entry leaves."""

    action: Literal["update", "merge"]
    sha: str
    message: str


@dataclass(frozen=True)
class EntrySnapshot:
    """What the queue remembers about the entry."""

    number: int
    status: str
    # The head sha the entry is waiting on, since when (the current unpaused stretch), and
    # how long it waited on that sha before (stretches that ended with a pause).
    waiting_sha: str | None
    waiting_since: datetime | None
    # The head sha an update-branch was requested for (so it is not requested twice).
    updated_from_sha: str | None
    # When the entry's status last changed (None: unknown).
    status_changed_at: datetime | None = None
    waited: timedelta = timedelta(0)
    refusal: Refusal | None = None


@dataclass(frozen=True)
class QueueConfig:
    merge_method: str
    ci_timeout: timedelta
    paused: bool
    # Why the base branch is frozen (nothing lands until it ends); None: not frozen.
    frozen: str | None = None


@dataclass(frozen=True)
class Merge:
    number: int
    sha: str
    method: str


@dataclass(frozen=True)
class UpdateBranch:
    number: int
    expected_head_sha: str


@dataclass(frozen=True)
class Dequeue:
    number: int
    reason: DequeueReason
    comment: str | None
    remove_label: bool = True


@dataclass(frozen=True)
class LeaveMerged:
    """Merged on GitHub (by us in an earlier attempt, or by someone): the stay is over."""

    number: int


@dataclass(frozen=True)
class SetStatus:
    number: int
    status: EntryStatus
    detail: str | None = None
    waiting_sha: str | None = None
    updated_from_sha: str | None = None
    # Paused: the CI timeout's clock stops until the queue waits again.
    stop_clock: bool = False


Action = Merge | UpdateBranch | Dequeue | LeaveMerged | SetStatus


@dataclass(frozen=True)
class CheckVerdict:
    failed: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    passed: tuple[str, ...] = field(default_factory=tuple)

    @property
    def all_passed(self) -> bool:
        return not self.failed and not self.pending


def judge_checks(checks: Sequence[Check], required: Sequence[str]) -> CheckVerdict:
    """Required checks by outcome; a required check that has not reported yet is pending.

    With nothing required, every reported check counts, and none reported is pending:
    an unprotected repository never merges on no evidence at all.
    """
    by_name = {c.name: c for c in checks}
    names = list(required) if required else sorted(by_name)
    if not names:
        return CheckVerdict(pending=(ANY_CHECK,))
    failed: list[str] = []
    pending: list[str] = []
    passed: list[str] = []
    for name in names:
        check = by_name.get(name)
        if check is None or check.status != "completed":
            pending.append(name)
        elif check.conclusion in PASSING:
            passed.append(name)
        else:
            failed.append(name)
    return CheckVerdict(tuple(failed), tuple(pending), tuple(passed))


def waited_on(entry: EntrySnapshot, head_sha: str, now: datetime) -> timedelta:
    """How long the queue has waited, unpaused, on this head."""
    if entry.waiting_sha != head_sha:
        return timedelta(0)
    current = now - entry.waiting_since if entry.waiting_since is not None else timedelta(0)
    return entry.waited + current


def decide(
    entry: EntrySnapshot, pull: PullSnapshot | None, config: QueueConfig, now: datetime
) -> list[Action]:
    number = entry.number
    if pull is None:
        return [Dequeue(number, DequeueReason.NOT_FOUND, None, remove_label=False)]
    if pull.merged:
        return [LeaveMerged(number)]
    if pull.state != "open":
        return [Dequeue(number, DequeueReason.CLOSED, None, remove_label=False)]
    if config.paused:
        return [
            SetStatus(
                number,
                EntryStatus.PAUSED,
                "the queue of this repository is paused",
                stop_clock=True,
            )
        ]
    if pull.draft:
        return [_dequeue(number, DequeueReason.DRAFT, "it is a draft")]
    if pull.mergeable_state == "dirty" or (
        pull.mergeable is False and pull.mergeable_state in {"dirty", "unknown"}
    ):
        return [_dequeue(number, DequeueReason.CONFLICT, "it conflicts with its base branch")]

    verdict = judge_checks(pull.checks, pull.required)
    if verdict.failed:
        names = ", ".join(verdict.failed)
        return [_dequeue(number, DequeueReason.CHECK_FAILED, f"required check failed: {names}")]

    # Every waiting state counts against the timeout, updating included: a head GitHub
    # never updates must not hold the whole base branch's queue.
    if waited_on(entry, pull.head_sha, now) > config.ci_timeout:
        return [_timed_out(entry, verdict, config)]

    refused = entry.refusal if entry.refusal and entry.refusal.sha == pull.head_sha else None
    if pull.behind_by > 0 or pull.mergeable_state == "behind":
        if refused is not None and refused.action == "update":
            why = f"GitHub refused to update the branch: {refused.message}"
            return [_dequeue(number, DequeueReason.UPDATE_FAILED, why)]
        if entry.updated_from_sha == pull.head_sha:
            # Asked already; GitHub has not moved the head yet.
            return [
                SetStatus(
                    number,
                    EntryStatus.UPDATING,
                    f"waiting for GitHub to update {_short(pull)}",
                    waiting_sha=pull.head_sha,
                )
            ]
        return [
            UpdateBranch(number, pull.head_sha),
            SetStatus(
                number,
                EntryStatus.UPDATING,
                f"updating {_short(pull)} with {pull.base_ref}",
                waiting_sha=pull.head_sha,
                updated_from_sha=pull.head_sha,
            ),
        ]

    if verdict.all_passed:
        if pull.mergeable is None or pull.mergeable_state == "unknown":
            return [_waiting(number, pull, "waiting for GitHub to compute mergeability")]
        if pull.mergeable and pull.mergeable_state in {"clean", "unstable", "has_hooks"}:
            if refused is not None and refused.action == "merge":
                why = f"GitHub refused to merge it: {refused.message}"
                return [_dequeue(number, DequeueReason.MERGE_FAILED, why)]
            if config.frozen is not None:
                # Ready, held: the wait is the freeze's, not the checks', so no timeout.
                return [
                    SetStatus(
                        number,
                        EntryStatus.FROZEN,
                        f"tested; {pull.base_ref} is frozen: {config.frozen}",
                        stop_clock=True,
                    )
                ]
            return [
                SetStatus(
                    number,
                    EntryStatus.MERGING,
                    f"merging {_short(pull)}",
                    waiting_sha=pull.head_sha,
                ),
                Merge(number, pull.head_sha, config.merge_method),
            ]
        if pull.mergeable_state == "blocked":
            confirmed_since = entry.status_changed_at if entry.status == CONFIRMING else None
            if confirmed_since is not None and now - confirmed_since > BLOCKED_GRACE:
                return [
                    _dequeue(
                        number,
                        DequeueReason.BLOCKED,
                        "branch protection blocks merging although every required check "
                        "passed (a review may be missing)",
                    )
                ]
            return [
                SetStatus(
                    number,
                    CONFIRMING,
                    "GitHub reports merging blocked although every required check passed; "
                    "checking again",
                    waiting_sha=pull.head_sha,
                )
            ]
        return [_waiting(number, pull, f"waiting: GitHub says {pull.mergeable_state}")]

    return [_waiting(number, pull, "waiting for checks: " + ", ".join(verdict.pending))]


def _timed_out(entry: EntrySnapshot, verdict: CheckVerdict, config: QueueConfig) -> Dequeue:
    minutes = int(config.ci_timeout.total_seconds() // 60)
    if entry.status == EntryStatus.UPDATING:
        why = f"GitHub did not update the branch within {minutes} min"
    else:
        pending = ", ".join(verdict.pending) or "mergeability"
        why = f"checks did not finish within {minutes} min (still pending: {pending})"
    return _dequeue(entry.number, DequeueReason.CI_TIMEOUT, why)


def _waiting(number: int, pull: PullSnapshot, detail: str) -> SetStatus:
    return SetStatus(number, EntryStatus.WAITING_FOR_CHECKS, detail, waiting_sha=pull.head_sha)


def _dequeue(number: int, reason: DequeueReason, why: str) -> Dequeue:
    return Dequeue(number, reason, f"Removed from the merge queue: {why}.")


def _short(pull: PullSnapshot) -> str:
    return f"#{pull.number} ({pull.head_sha[:7]})"
