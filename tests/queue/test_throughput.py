"""Throughput capabilities, in process: optimistic validation of failed builds (flaky
failures), freezes, and urgent pull requests."""

from __future__ import annotations

from datetime import timedelta

from mergequeue.models import BuildState, QueueEntryState
from mergequeue.queue.decide import EntryStatus
from mergequeue.webhooks.events import LabelChanged
from tests.queue.harness import FULL_NAME, Harness
from tests.queue.memory import BOT


def parallel(**settings: object) -> Harness:
    h = Harness()
    h.configure(queue_mode="parallel", batch_wait_seconds=0, **settings)
    return h


def report(h: Harness, build_index: int, conclusion: str) -> None:
    """CI reports on a staging build (no scripted CI here: each outcome is the test's)."""
    build = h.store.builds[build_index]
    assert build.sha is not None
    h.fake.add_check_run(full_name=FULL_NAME, head_sha=build.sha, name="ci", conclusion=conclusion)


async def queue(h: Harness, count: int) -> list[int]:
    numbers = [h.open_pull() for _ in range(count)]
    for number in numbers:
        await h.label(number)
        h.advance(seconds=1)
    return numbers


def main_head(h: Harness) -> str:
    return h.fake.repo(FULL_NAME).branches["main"]


async def test_a_failed_build_contradicted_by_a_later_pass_lands_everything_up_to_it() -> None:
    h = parallel(failure_depth=2, max_parallel_builds=3)
    numbers = await queue(h, 3)
    await h.evaluate()
    report(h, 0, "failure")  # a flake: the builds behind hold the same changes and pass
    await h.evaluate()
    assert not any(h.merged(n) for n in numbers)  # not acted on yet: those behind decide
    report(h, 1, "success")
    await h.evaluate()
    assert main_head(h) == h.store.builds[1].sha
    assert [h.merged(n) for n in numbers] == [True, True, False]
    assert h.store.builds[0].outcome == "flaky"
    assert h.store.flakes == {"ci": (1, 1)}
    assert h.events.flaky_checks == ["ci"]


async def test_with_failure_depth_a_failure_stands_once_those_behind_failed_too() -> None:
    h = parallel(failure_depth=1, max_parallel_builds=2)
    first, second = await queue(h, 2)
    await h.evaluate()
    report(h, 0, "failure")
    report(h, 1, "failure")
    await h.evaluate()
    assert h.entry(first).dequeue_reason == "check_failed"
    assert h.store.flakes == {"ci": (1, 0)}
    # The other is built again without it.
    assert h.store.live(second) is not None
    assert [b.state for b in h.store.builds][-1] == BuildState.TESTING


async def test_without_failure_depth_a_failure_is_acted_on_at_once() -> None:
    h = parallel(max_parallel_builds=2)
    first, _ = await queue(h, 2)
    await h.evaluate()
    report(h, 0, "failure")
    await h.evaluate()
    assert h.entry(first).dequeue_reason == "check_failed"


async def test_a_frozen_base_keeps_building_and_lands_nothing_until_the_freeze_ends() -> None:
    h = parallel()
    ends = h.now + timedelta(hours=2)
    h.configure(frozen_reason="release 2.0", frozen_until=ends)
    (number,) = await queue(h, 1)
    await h.evaluate()
    report(h, 0, "success")
    await h.evaluate()
    assert not h.merged(number)
    assert "frozen: release 2.0" in (h.entry(number).status_detail or "")
    assert h.repository.deadline_at == ends + timedelta(seconds=1)
    h.advance(hours=2)
    await h.evaluate()
    assert h.merged(number)


async def test_a_serial_head_waits_out_a_freeze_without_timing_out() -> None:
    h = Harness()
    h.configure(frozen_reason="end of quarter", ci_timeout_seconds=600)
    (number,) = await queue(h, 1)
    h.ci(number)
    await h.evaluate()
    assert h.entry(number).status == EntryStatus.FROZEN
    h.advance(hours=3)
    await h.evaluate()
    assert h.store.live(number) is not None and not h.merged(number)
    h.configure(frozen_reason=None)
    await h.evaluate()
    assert h.merged(number)


async def test_a_scheduled_freeze_starts_and_ends_by_itself() -> None:
    h = Harness()
    h.configure(
        frozen_reason="deploy window",
        frozen_from=h.now + timedelta(hours=1),
        frozen_until=h.now + timedelta(hours=2),
    )
    first, second = await queue(h, 2)
    h.ci(first)
    await h.evaluate()
    assert h.merged(first)  # before the window
    h.advance(hours=1)
    h.ci(second)
    await h.evaluate()
    assert not h.merged(second)
    h.advance(hours=1)
    await h.evaluate()
    assert h.merged(second)


async def test_an_urgent_pull_request_lands_next_in_serial_mode() -> None:
    h = Harness()
    first, second, urgent = await queue(h, 3)
    await h.evaluate()  # the first is being tested
    h.fake.repo(FULL_NAME).pulls[urgent].labels.append("mergequeue:urgent")
    await h.apply(LabelChanged(h.repository.id, urgent, "mergequeue:urgent", True, "alice"))
    h.ci(urgent)
    h.ci(first)
    h.ci(second)
    await h.evaluate()
    # The urgent one went ahead of the head being tested; the others wait their turn.
    assert h.merged(urgent)
    assert not h.merged(first) and not h.merged(second)
    assert h.entry(first).state == QueueEntryState.QUEUED


async def test_an_urgent_pull_request_restarts_the_builds_behind_its_place() -> None:
    h = parallel(max_parallel_builds=2)
    first, second = await queue(h, 2)
    await h.evaluate()
    urgent = h.open_pull()
    await h.label(urgent)
    await h.apply(LabelChanged(h.repository.id, urgent, "mergequeue:urgent", True, "alice"))
    await h.evaluate()
    dropped = [b for b in h.store.builds if b.state == BuildState.DROPPED]
    assert {b.outcome for b in dropped} == {"obsolete"} and len(dropped) == 2
    testing = [b for b in h.store.builds if b.state == BuildState.TESTING]
    assert testing[0].members[0][0] == urgent
    del first, second


async def test_the_status_comment_says_the_freeze() -> None:
    h = Harness()
    h.configure(frozen_reason="release")
    (number,) = await queue(h, 1)
    h.ci(number)
    await h.evaluate()
    [comment] = [c.body for c in h.fake.comments if c.author == BOT]
    assert comment.startswith("**mergequeue**: Frozen")


async def test_a_freeze_on_one_base_branch_holds_only_that_branch_in_serial_mode() -> None:
    h = Harness()
    h.push_base("release")
    h.configure(frozen_reason="release 2.0 going out", frozen_branch="release")
    on_main = h.open_pull()
    on_release = h.open_pull(base="release")
    for number in (on_main, on_release):
        await h.label(number)
        h.ci(number)
    await h.evaluate()
    assert h.merged(on_main)
    assert not h.merged(on_release)
    assert h.entry(on_release).status == EntryStatus.FROZEN
    h.configure(frozen_reason=None, frozen_branch=None)
    await h.evaluate()
    assert h.merged(on_release)


async def test_a_freeze_on_one_base_branch_holds_only_that_branch_in_parallel_mode() -> None:
    h = parallel()
    h.push_base("release")
    h.configure(frozen_reason="release 2.0 going out", frozen_branch="release")
    on_main = h.open_pull()
    on_release = h.open_pull(base="release")
    for number in (on_main, on_release):
        await h.label(number)
    await h.evaluate()
    for index in range(len(h.store.builds)):
        report(h, index, "success")
    await h.evaluate()
    assert h.merged(on_main)
    assert not h.merged(on_release)
    assert "release is frozen: release 2.0 going out" in (h.entry(on_release).status_detail or "")
