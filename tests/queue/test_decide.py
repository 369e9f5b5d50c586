"""mergequeue/queue/decide.py: every rule of the queue's head, without I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mergequeue.queue.decide import (
    ANY_CHECK,
    BLOCKED_GRACE,
    CONFIRMING,
    Check,
    Dequeue,
    DequeueReason,
    EntrySnapshot,
    EntryStatus,
    LeaveMerged,
    Merge,
    PullSnapshot,
    QueueConfig,
    Refusal,
    SetStatus,
    UpdateBranch,
    decide,
    judge_checks,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CONFIG = QueueConfig(merge_method="squash", ci_timeout=timedelta(minutes=30), paused=False)
ENTRY = EntrySnapshot(
    number=7, status="waiting", waiting_sha=None, waiting_since=None, updated_from_sha=None
)
GREEN = (Check("ci", "completed", "success"),)
PULL = PullSnapshot(
    number=7,
    state="open",
    merged=False,
    draft=False,
    head_sha="a" * 40,
    base_ref="main",
    mergeable=True,
    mergeable_state="clean",
    checks=GREEN,
    required=("ci",),
)


def kinds(actions: list[object]) -> list[type]:
    return [type(a) for a in actions]


def test_green_and_clean_merges_the_head_sha_with_the_configured_method() -> None:
    actions = decide(ENTRY, PULL, CONFIG, NOW)
    assert actions[-1] == Merge(7, PULL.head_sha, "squash")
    assert isinstance(actions[0], SetStatus) and actions[0].status == "merging"


def test_unstable_but_required_checks_green_still_merges() -> None:
    pull = replace(
        PULL, mergeable_state="unstable", checks=(*GREEN, Check("lint", "completed", "failure"))
    )
    assert Merge in kinds(decide(ENTRY, pull, CONFIG, NOW))


def test_a_failed_required_check_dequeues_with_its_name() -> None:
    pull = replace(PULL, checks=(Check("ci", "completed", "failure"),), mergeable_state="blocked")
    [action] = decide(ENTRY, pull, CONFIG, NOW)
    assert isinstance(action, Dequeue) and action.reason is DequeueReason.CHECK_FAILED
    assert action.comment and "ci" in action.comment and action.remove_label


@pytest.mark.parametrize(
    "conclusion", ["failure", "cancelled", "timed_out", "action_required", "stale"]
)
def test_every_non_passing_conclusion_fails_a_required_check(conclusion: str) -> None:
    pull = replace(PULL, checks=(Check("ci", "completed", conclusion),))
    assert kinds(decide(ENTRY, pull, CONFIG, NOW)) == [Dequeue]


@pytest.mark.parametrize("conclusion", ["success", "neutral", "skipped"])
def test_passing_conclusions_let_it_merge(conclusion: str) -> None:
    pull = replace(PULL, checks=(Check("ci", "completed", conclusion),))
    assert Merge in kinds(decide(ENTRY, pull, CONFIG, NOW))


def test_a_failing_check_that_is_not_required_does_not_matter() -> None:
    pull = replace(PULL, checks=(*GREEN, Check("optional", "completed", "failure")))
    assert Merge in kinds(decide(ENTRY, pull, CONFIG, NOW))


@pytest.mark.parametrize(
    "checks", [(), (Check("ci", "in_progress", None),), (Check("ci", "queued", None),)]
)
def test_pending_or_missing_required_checks_wait_and_start_the_timeout(
    checks: tuple[Check, ...],
) -> None:
    pull = replace(PULL, checks=checks, mergeable_state="blocked")
    [action] = decide(ENTRY, pull, CONFIG, NOW)
    assert isinstance(action, SetStatus) and action.status == "waiting_for_checks"
    assert action.waiting_sha == PULL.head_sha and "ci" in (action.detail or "")


def test_waiting_longer_than_the_ci_timeout_on_the_same_head_dequeues() -> None:
    entry = replace(ENTRY, waiting_sha=PULL.head_sha, waiting_since=NOW - timedelta(minutes=31))
    pull = replace(PULL, checks=(), mergeable_state="blocked")
    [action] = decide(entry, pull, CONFIG, NOW)
    assert isinstance(action, Dequeue) and action.reason is DequeueReason.CI_TIMEOUT


def test_the_timeout_restarts_when_the_head_changes() -> None:
    entry = replace(ENTRY, waiting_sha="b" * 40, waiting_since=NOW - timedelta(hours=5))
    pull = replace(PULL, checks=(), mergeable_state="blocked")
    assert kinds(decide(entry, pull, CONFIG, NOW)) == [SetStatus]


def test_a_behind_pull_request_is_updated_once_for_its_head() -> None:
    pull = replace(PULL, mergeable_state="behind")
    actions = decide(ENTRY, pull, CONFIG, NOW)
    assert actions[0] == UpdateBranch(7, PULL.head_sha)
    assert isinstance(actions[1], SetStatus) and actions[1].updated_from_sha == PULL.head_sha
    asked = replace(ENTRY, updated_from_sha=PULL.head_sha)
    assert kinds(decide(asked, pull, CONFIG, NOW)) == [SetStatus]


def test_a_behind_pull_request_with_a_failed_check_is_dequeued_not_updated() -> None:
    pull = replace(PULL, mergeable_state="behind", checks=(Check("ci", "completed", "failure"),))
    assert kinds(decide(ENTRY, pull, CONFIG, NOW)) == [Dequeue]


def test_a_conflict_dequeues() -> None:
    pull = replace(PULL, mergeable=False, mergeable_state="dirty")
    [action] = decide(ENTRY, pull, CONFIG, NOW)
    assert isinstance(action, Dequeue) and action.reason is DequeueReason.CONFLICT


def test_mergeability_still_computing_waits() -> None:
    pull = replace(PULL, mergeable=None, mergeable_state="unknown")
    [action] = decide(ENTRY, pull, CONFIG, NOW)
    assert isinstance(action, SetStatus) and "mergeability" in (action.detail or "")


def test_blocked_with_green_checks_is_rechecked_before_dequeueing() -> None:
    # GitHub's mergeability lags behind the checks: "blocked" right after they turn green
    # is often stale, so it is believed only once it has lasted the grace period.
    pull = replace(PULL, mergeable=False, mergeable_state="blocked")
    [first] = decide(ENTRY, pull, CONFIG, NOW)
    assert isinstance(first, SetStatus) and first.status == CONFIRMING
    recent = replace(ENTRY, status=CONFIRMING, status_changed_at=NOW - timedelta(seconds=30))
    assert kinds(decide(recent, pull, CONFIG, NOW)) == [SetStatus]
    lasting = replace(recent, status_changed_at=NOW - BLOCKED_GRACE - timedelta(seconds=1))
    [action] = decide(lasting, pull, CONFIG, NOW)
    assert isinstance(action, Dequeue) and action.reason is DequeueReason.BLOCKED


def test_blocked_that_clears_merges() -> None:
    confirming = replace(ENTRY, status=CONFIRMING, status_changed_at=NOW - timedelta(hours=1))
    assert Merge in kinds(decide(confirming, PULL, CONFIG, NOW))


def test_paused_never_merges() -> None:
    [action] = decide(ENTRY, PULL, replace(CONFIG, paused=True), NOW)
    assert isinstance(action, SetStatus) and action.status == "paused"


def test_merged_on_github_leaves_the_queue() -> None:
    assert decide(ENTRY, replace(PULL, merged=True, state="closed"), CONFIG, NOW) == [
        LeaveMerged(7)
    ]


def test_closed_leaves_without_touching_the_label() -> None:
    [action] = decide(ENTRY, replace(PULL, state="closed"), CONFIG, NOW)
    assert isinstance(action, Dequeue) and action.reason is DequeueReason.CLOSED
    assert not action.remove_label and action.comment is None


def test_a_vanished_pull_request_leaves() -> None:
    [action] = decide(ENTRY, None, CONFIG, NOW)
    assert isinstance(action, Dequeue) and action.reason is DequeueReason.NOT_FOUND


def test_a_draft_is_dequeued() -> None:
    [action] = decide(ENTRY, replace(PULL, draft=True), CONFIG, NOW)
    assert isinstance(action, Dequeue) and action.reason is DequeueReason.DRAFT


def test_no_required_checks_anywhere_means_every_reported_check_must_pass() -> None:
    failing = (*GREEN, Check("lint", "completed", "failure"))
    [action] = decide(ENTRY, replace(PULL, required=(), checks=failing), CONFIG, NOW)
    assert isinstance(action, Dequeue) and action.reason is DequeueReason.CHECK_FAILED
    assert "lint" in (action.comment or "")
    assert Merge in kinds(decide(ENTRY, replace(PULL, required=(), checks=GREEN), CONFIG, NOW))


def test_no_required_checks_and_none_reported_never_merges() -> None:
    [action] = decide(ENTRY, replace(PULL, required=(), checks=()), CONFIG, NOW)
    assert isinstance(action, SetStatus) and action.status == EntryStatus.WAITING_FOR_CHECKS
    assert ANY_CHECK in (action.detail or "")


def test_a_head_behind_its_base_by_compare_is_updated_though_github_says_clean() -> None:
    actions = decide(ENTRY, replace(PULL, behind_by=2, mergeable_state="clean"), CONFIG, NOW)
    assert UpdateBranch(7, PULL.head_sha) in actions and Merge not in kinds(actions)


def test_updating_is_not_exempt_from_the_ci_timeout() -> None:
    stuck = replace(
        ENTRY,
        status=EntryStatus.UPDATING,
        updated_from_sha=PULL.head_sha,
        waiting_sha=PULL.head_sha,
        waiting_since=NOW - timedelta(hours=2),
    )
    [action] = decide(stuck, replace(PULL, behind_by=1), CONFIG, NOW)
    assert isinstance(action, Dequeue) and action.reason is DequeueReason.CI_TIMEOUT
    assert "did not update the branch" in (action.comment or "")


def test_a_refused_update_of_the_same_head_dequeues_with_githubs_reason() -> None:
    refused = replace(ENTRY, refusal=Refusal("update", PULL.head_sha, "push access denied"))
    [action] = decide(refused, replace(PULL, behind_by=1), CONFIG, NOW)
    assert isinstance(action, Dequeue) and action.reason is DequeueReason.UPDATE_FAILED
    assert "push access denied" in (action.comment or "")


def test_a_refusal_of_an_earlier_head_is_forgotten() -> None:
    refused = replace(ENTRY, refusal=Refusal("update", "b" * 40, "head moved"))
    assert UpdateBranch in kinds(decide(refused, replace(PULL, behind_by=1), CONFIG, NOW))


def test_a_refused_merge_of_the_same_head_dequeues_as_merge_failed() -> None:
    refused = replace(
        ENTRY, refusal=Refusal("merge", PULL.head_sha, "Merge commits are not allowed")
    )
    [action] = decide(refused, PULL, CONFIG, NOW)
    assert isinstance(action, Dequeue) and action.reason is DequeueReason.MERGE_FAILED
    assert "Merge commits are not allowed" in (action.comment or "")


def test_the_ci_timeout_counts_unpaused_waiting_only() -> None:
    # Waited 20 of 30 minutes, then a long pause ended a moment ago.
    resumed = replace(
        ENTRY,
        waiting_sha=PULL.head_sha,
        waiting_since=NOW - timedelta(minutes=1),
        waited=timedelta(minutes=20),
    )
    pending = replace(PULL, checks=(Check("ci", "in_progress", None),))
    [action] = decide(resumed, pending, CONFIG, NOW)
    assert isinstance(action, SetStatus) and action.status == EntryStatus.WAITING_FOR_CHECKS
    later = replace(resumed, waiting_since=NOW - timedelta(minutes=11))
    [action] = decide(later, pending, CONFIG, NOW)
    assert isinstance(action, Dequeue) and action.reason is DequeueReason.CI_TIMEOUT


def test_pausing_stops_the_ci_timeout_clock() -> None:
    [action] = decide(ENTRY, PULL, replace(CONFIG, paused=True), NOW)
    assert isinstance(action, SetStatus) and action.stop_clock


def test_judge_checks_sorts_required_checks_by_outcome() -> None:
    verdict = judge_checks(
        [
            Check("a", "completed", "success"),
            Check("b", "completed", "failure"),
            Check("c", "in_progress", None),
        ],
        ["a", "b", "c", "d"],
    )
    assert (verdict.passed, verdict.failed, verdict.pending) == (("a",), ("b",), ("c", "d"))
    assert not verdict.all_passed
