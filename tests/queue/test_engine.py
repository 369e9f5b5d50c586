"""The queue engine in process: the real engine, executor and store
rules against the in-memory GitHub with a simulated clock."""

from __future__ import annotations

import pytest

from mergequeue.github import RateLimited
from mergequeue.models import NoticeKind, QueueEntryState
from mergequeue.queue.decide import DequeueReason, EntryStatus
from mergequeue.queue.ports import Refused
from tests.queue.harness import FULL_NAME, LABEL, Harness
from tests.queue.memory import rate_limited


async def test_a_green_head_merges_and_leaves_with_its_label_alone() -> None:
    h = Harness()
    n = h.open_pull()
    await h.label(n)
    h.ci(n)
    await h.evaluate()
    assert h.merged(n) and h.entry(n).state == QueueEntryState.MERGED
    assert h.events.merges and h.comments(n) == []


async def test_an_update_branch_refused_for_a_fork_dequeues_with_update_failed() -> None:
    h = Harness()
    n = h.open_pull()
    await h.label(n)
    h.ci(n)
    h.push_base()
    h.github.refuse_update[n] = (403, "Resource not accessible by integration")
    await h.evaluate()
    entry = h.entry(n)
    assert entry.state == QueueEntryState.DEQUEUED
    assert entry.dequeue_reason == DequeueReason.UPDATE_FAILED
    [comment] = h.comments(n)
    assert "Resource not accessible by integration" in comment
    # The base branch's queue moves on: the next pull request is evaluated.
    m = h.open_pull()
    await h.label(m)
    await h.evaluate()
    assert h.entry(m).status == EntryStatus.WAITING_FOR_CHECKS


async def test_an_update_refused_because_the_head_moved_tries_the_new_head() -> None:
    h = Harness()
    n = h.open_pull()
    await h.label(n)
    h.push_base()
    real_update = h.github.update_branch

    async def author_pushed_meanwhile(number: int, expected: str) -> None:
        h.github.update_branch = real_update  # type: ignore[method-assign]
        h.fake.set_pull(full_name=FULL_NAME, number=number, head_sha="f" * 40)
        raise Refused(422, "expected_head_sha does not match the pull request's head")

    h.github.update_branch = author_pushed_meanwhile  # type: ignore[method-assign]
    await h.evaluate()
    assert h.entry(n).state == QueueEntryState.QUEUED
    assert h.entry(n).status == EntryStatus.UPDATING
    assert h.github.count("update_branch") == 1 and h.head(n) != "f" * 40


async def test_an_update_github_never_performs_times_out_instead_of_holding_the_queue() -> None:
    h = Harness(environ={})
    n = h.open_pull()
    await h.label(n)
    h.push_base()

    async def accepted_but_never_done(number: int, expected: str) -> None:
        h.github.calls.append("update_branch")

    h.github.update_branch = accepted_but_never_done  # type: ignore[method-assign]
    await h.evaluate()
    assert h.entry(n).status == EntryStatus.UPDATING
    h.advance(minutes=61)
    await h.evaluate()
    assert h.entry(n).dequeue_reason == DequeueReason.CI_TIMEOUT
    assert "did not update the branch" in h.comments(n)[0]


async def test_a_pause_longer_than_the_ci_timeout_does_not_time_out_the_head() -> None:
    h = Harness()
    n = h.open_pull()
    await h.label(n)
    await h.evaluate()
    h.advance(minutes=20)
    h.pause()
    await h.evaluate()
    h.advance(hours=3)
    await h.evaluate()
    h.pause(False)
    await h.evaluate()
    h.advance(minutes=5)
    h.ci(n)
    await h.evaluate()
    assert h.merged(n), h.entry(n).status_detail


async def test_after_a_pause_the_timeout_still_counts_the_waiting_before_it() -> None:
    h = Harness()
    n = h.open_pull()
    await h.label(n)
    await h.evaluate()
    h.advance(minutes=50)
    h.pause()
    await h.evaluate()
    h.advance(hours=3)
    h.pause(False)
    await h.evaluate()
    h.advance(minutes=11)
    await h.evaluate()
    assert h.entry(n).dequeue_reason == DequeueReason.CI_TIMEOUT


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (405, "Merge commits are not allowed on this repository."),
        (405, "Pull Request is not mergeable"),
        (409, "Head branch was modified. Review and try the merge again."),
    ],
)
async def test_a_merge_github_refuses_dequeues_at_once_with_merge_failed(
    status: int, message: str
) -> None:
    h = Harness()
    n = h.open_pull()
    await h.label(n)
    h.ci(n)
    h.github.refuse_merge[n] = (status, message)
    await h.evaluate()
    entry = h.entry(n)
    assert entry.dequeue_reason == DequeueReason.MERGE_FAILED
    assert message in h.comments(n)[0]
    # Re-read once after the refusal, then out: no retry loop until the CI timeout.
    assert h.github.count("merge") == 1 and h.github.count("pull") == 2


async def test_a_merge_refused_because_the_head_moved_is_tried_on_the_new_head() -> None:
    h = Harness()
    n = h.open_pull()
    await h.label(n)
    h.ci(n)
    real_merge = h.github.merge

    async def someone_pushed(number: int, sha: str, method: str) -> str:
        h.fake.set_pull(full_name=FULL_NAME, number=n, head_sha="e" * 40)
        h.github.merge = real_merge  # type: ignore[method-assign]
        raise Refused(409, "Head branch was modified. Review and try the merge again.")

    h.github.merge = someone_pushed  # type: ignore[method-assign]
    await h.evaluate()
    assert h.entry(n).state == QueueEntryState.QUEUED
    assert h.entry(n).status == EntryStatus.WAITING_FOR_CHECKS
    h.ci(n)
    await h.evaluate()
    assert h.merged(n)


async def test_required_checks_of_rulesets_count_on_a_branch_without_classic_protection() -> None:
    h = Harness(required=())
    h.fake.add_ruleset(full_name=FULL_NAME, branches=["main"], required_checks=["ci"])
    n = h.open_pull()
    await h.label(n)
    h.ci(n, "failure")
    await h.evaluate()
    assert h.entry(n).dequeue_reason == DequeueReason.CHECK_FAILED
    assert "ci" in h.comments(n)[0]


async def test_with_no_required_checks_anywhere_a_failing_check_is_never_merged() -> None:
    h = Harness(required=())
    n = h.open_pull()
    await h.label(n)
    await h.evaluate()
    assert not h.merged(n), "merged on no evidence at all"
    h.ci(n, name="build")
    h.ci(n, "failure", name="lint")
    await h.evaluate()
    assert not h.merged(n)
    assert h.entry(n).dequeue_reason == DequeueReason.CHECK_FAILED


async def test_a_head_behind_its_base_is_updated_before_merging_without_strict_protection() -> None:
    h = Harness(strict=False)
    n = h.open_pull()
    await h.label(n)
    h.ci(n)
    h.push_base()
    await h.evaluate()
    assert not h.merged(n)
    assert h.github.count("update_branch") == 1
    h.ci(n)  # CI on the updated head
    await h.evaluate()
    assert h.merged(n)


async def test_a_dequeue_comment_is_posted_once_when_the_label_removal_is_rate_limited() -> None:
    h = Harness()
    n = h.open_pull()
    await h.label(n)
    h.ci(n, "failure")
    limited = {"remove_label": 1}

    def fault(name: str) -> BaseException | None:
        if limited.get(name):
            limited[name] -= 1
            return rate_limited(0)
        return None

    h.github.fault = fault
    with pytest.raises(RateLimited):
        await h.evaluate()
    # The job is retried later; the comment is not posted again, the label goes.
    await h.evaluate()
    assert len(h.comments(n)) == 1
    assert LABEL not in h.labels(n)
    assert all(notice.sent_at is not None for notice in h.store.notices)


async def test_a_head_is_not_landed_while_an_earlier_delivery_is_unapplied() -> None:
    h = Harness()
    first, second = h.open_pull(), h.open_pull()
    h.ci(first)
    h.ci(second)
    landed: list[int] = []
    h.github.on_merge = lambda number, sha: landed.append(number)
    # The delivery labelling `first` was received first, but another worker applies it.
    first_received = h.now
    h.store.inbox.append((FULL_NAME, first_received))
    h.advance(seconds=1)
    await h.label(second)
    evaluation = await h.evaluate()
    assert evaluation.held == 1 and landed == []
    h.store.inbox.clear()
    await h.label(first, received_at=first_received)
    await h.evaluate()
    assert landed == [first]
    assert h.entry(second).state == QueueEntryState.QUEUED


async def test_a_dequeue_through_the_cancel_command_takes_the_label_off() -> None:
    h = Harness()
    n = h.open_pull()
    await h.label(n)
    await h.apply(h.command(n, "cancel", author="alice", association="OWNER"))
    await h.evaluate()
    assert h.entry(n).dequeue_reason == DequeueReason.CANCELLED
    assert LABEL not in h.labels(n)
    kinds = [(notice.kind, notice.text) for notice in h.store.notices]
    assert kinds == [(NoticeKind.REMOVE_LABEL, LABEL), (NoticeKind.REACTION, "+1")]
