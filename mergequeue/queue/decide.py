"""What to do with the head of a queue: a pure function of its state and GitHub's answers.

`decide(entry, pull, config, now)` returns the actions to take; the worker performs them.
No I/O here, so every path is tested directly (tests/queue/test_decide.py) and by a
randomized simulation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class DequeueReason(StrEnum):
    CLOSED = "closed"
    UNLABELED = "unlabeled"
    CANCELLED = "cancelled"
    API = "api"
    CHECK_FAILED = "check_failed"
    CONFLICT = "conflict"
    CI_TIMEOUT = "ci_timeout"
    BLOCKED = "blocked"
    DRAFT = "draft"
    NOT_FOUND = "not_found"
    MERGE_FAILED = "merge_failed"


# GitHub computes mergeability after the checks finish: "blocked" with every required check
# green is believed only once it has lasted this long.
BLOCKED_GRACE = timedelta(seconds=60)
CONFIRMING = "confirming_blocked"

# Conclusions that let a required check pass, as GitHub's branch protection counts them.
PASSING = frozenset({"success", "neutral", "skipped"})


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # queued / in_progress / completed
    conclusion: str | None  # success, failure, neutral, cancelled, timed_out, ...


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
    required: tuple[str, ...]  # names of the required checks


@dataclass(frozen=True)
class EntrySnapshot:
    """What the queue remembers about the entry."""

    number: int
    status: str
    # The head sha the entry is waiting on, and since when (for the CI timeout).
    waiting_sha: str | None
    waiting_since: datetime | None
    # The head sha an update-branch was requested for (so it is not requested twice).
    updated_from_sha: str | None
    # When the entry's status last changed (None: unknown).
    status_changed_at: datetime | None = None


@dataclass(frozen=True)
class QueueConfig:
    merge_method: str
    ci_timeout: timedelta
    paused: bool


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
    status: str
    detail: str | None = None
    waiting_sha: str | None = None
    updated_from_sha: str | None = None


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
    """Required checks by outcome; a required check that has not reported yet is pending."""
    by_name = {c.name: c for c in checks}
    failed: list[str] = []
    pending: list[str] = []
    passed: list[str] = []
    for name in required:
        check = by_name.get(name)
        if check is None or check.status != "completed":
            pending.append(name)
        elif check.conclusion in PASSING:
            passed.append(name)
        else:
            failed.append(name)
    return CheckVerdict(tuple(failed), tuple(pending), tuple(passed))


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
        return [SetStatus(number, "paused", "the queue of this repository is paused")]
    if pull.draft:
        return [_dequeue(number, DequeueReason.DRAFT, "it is a draft")]
    if pull.mergeable_state == "dirty" or (
        pull.mergeable is False
        and pull.mergeable_state
        in {
            "dirty",
            "unknown",
        }
    ):
        return [_dequeue(number, DequeueReason.CONFLICT, "it conflicts with its base branch")]

    verdict = judge_checks(pull.checks, pull.required)
    if verdict.failed:
        names = ", ".join(verdict.failed)
        return [_dequeue(number, DequeueReason.CHECK_FAILED, f"required check failed: {names}")]

    if pull.mergeable_state == "behind":
        if entry.updated_from_sha == pull.head_sha:
            # Asked already; GitHub has not moved the head yet.
            return [SetStatus(number, "updating", f"waiting for GitHub to update {_short(pull)}")]
        return [
            UpdateBranch(number, pull.head_sha),
            SetStatus(
                number,
                "updating",
                f"updating {_short(pull)} with {pull.base_ref}",
                updated_from_sha=pull.head_sha,
            ),
        ]

    waiting_since = entry.waiting_since if entry.waiting_sha == pull.head_sha else None
    if waiting_since is not None and now - waiting_since > config.ci_timeout:
        pending = ", ".join(verdict.pending) or "mergeability"
        minutes = int(config.ci_timeout.total_seconds() // 60)
        return [
            _dequeue(
                number,
                DequeueReason.CI_TIMEOUT,
                f"checks did not finish within {minutes} min (still pending: {pending})",
            )
        ]

    if verdict.all_passed:
        if pull.mergeable is None or pull.mergeable_state == "unknown":
            return [_waiting(number, pull, "waiting for GitHub to compute mergeability")]
        if pull.mergeable and pull.mergeable_state in {"clean", "unstable", "has_hooks"}:
            return [
                SetStatus(number, "merging", f"merging {_short(pull)}", waiting_sha=pull.head_sha),
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


def _waiting(number: int, pull: PullSnapshot, detail: str) -> SetStatus:
    return SetStatus(number, "waiting_for_checks", detail, waiting_sha=pull.head_sha)


def _dequeue(number: int, reason: DequeueReason, why: str) -> Dequeue:
    return Dequeue(number, reason, f"Removed from the merge queue: {why}.")


def _short(pull: PullSnapshot) -> str:
    return f"#{pull.number} ({pull.head_sha[:7]})"
