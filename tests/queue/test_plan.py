"""Parallel mode's planner, promise by promise (pure: no GitHub, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mergequeue.queue.decide import (
    Check,
    Dequeue,
    DequeueReason,
    EntryStatus,
    LeaveMerged,
    SetStatus,
)
from mergequeue.queue.plan import (
    BuildView,
    Drop,
    Land,
    Member,
    ParallelConfig,
    QueuedPull,
    RecordLanded,
    Split,
    StartBuild,
    plan,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BASE = "b0"
OK = (Check("ci", "completed", "success"),)
BAD = (Check("ci", "completed", "failure", url="https://ci.example/run/9"),)
RUNNING = (Check("ci", "in_progress", None),)


def config(**changes: object) -> ParallelConfig:
    values: dict[str, object] = {
        "base_ref": "main",
        "max_builds": 4,
        "batch_size": 1,
        "batch_wait": timedelta(0),
        "ci_timeout": timedelta(hours=1),
        "paused": False,
        "required": ("ci",),
    }
    values.update(changes)
    return ParallelConfig(**values)  # type: ignore[arg-type]


def pulls(*numbers: int, group: str | None = None) -> list[QueuedPull]:
    return [QueuedPull(n, f"h{n}", T0 + timedelta(seconds=n), group) for n in numbers]


def build(
    ident: int, numbers: tuple[int, ...], parent: str, checks: tuple[Check, ...] = RUNNING
) -> BuildView:
    return BuildView(
        id=ident,
        branch=f"mergequeue/main/{ident}",
        members=tuple(Member(n, f"h{n}") for n in numbers),
        parent_sha=parent,
        sha=f"s{ident}",
        started_at=T0,
        checks=checks,
    )


def of(kind: type, actions: tuple[object, ...]) -> list[object]:
    return [a for a in actions if isinstance(a, kind)]


def test_builds_start_as_a_chain_each_on_the_one_before_up_to_the_limit() -> None:
    result = plan(pulls(1, 2, 3, 4, 5), [], BASE, config(max_builds=3), T0)
    starts = of(StartBuild, result.actions)
    assert starts == [
        StartBuild((Member(1, "h1"),), BASE, ()),
        StartBuild((Member(2, "h2"),), None, (Member(1, "h1"),)),
        StartBuild((Member(3, "h3"),), None, (Member(1, "h1"), Member(2, "h2"))),
    ]
    waiting = [a for a in of(SetStatus, result.actions) if a.number in (4, 5)]  # type: ignore[attr-defined]
    assert {a.status for a in waiting} == {EntryStatus.WAITING}  # type: ignore[attr-defined]


def test_a_batch_takes_up_to_batch_size_pull_requests() -> None:
    result = plan(pulls(1, 2, 3, 4, 5), [], BASE, config(batch_size=2), T0)
    assert [len(a.members) for a in of(StartBuild, result.actions)] == [2, 2, 1]  # type: ignore[attr-defined]


def test_a_partial_batch_waits_for_batch_wait_and_sets_a_deadline() -> None:
    cfg = config(batch_size=4, batch_wait=timedelta(minutes=5))
    early = plan(pulls(1, 2), [], BASE, cfg, T0 + timedelta(minutes=1))
    assert not of(StartBuild, early.actions)
    assert early.deadline == T0 + timedelta(seconds=1, minutes=5)
    later = plan(pulls(1, 2), [], BASE, cfg, T0 + timedelta(minutes=6))
    assert len(of(StartBuild, later.actions)) == 1


def test_the_longest_passed_prefix_lands_by_its_last_build() -> None:
    chain = [build(1, (1,), BASE, OK), build(2, (2,), "s1", OK), build(3, (3,), "s2")]
    result = plan(pulls(1, 2, 3), chain, BASE, config(), T0)
    assert of(Land, result.actions) == [Land(2, "s2")]


def test_a_passed_build_behind_a_running_one_waits() -> None:
    chain = [build(1, (1,), BASE), build(2, (2,), "s1", OK)]
    result = plan(pulls(1, 2), chain, BASE, config(), T0)
    assert not of(Land, result.actions)


def test_the_base_at_a_builds_commit_records_it_and_those_ahead_as_landed() -> None:
    chain = [build(1, (1,), BASE, OK), build(2, (2,), "s1", OK), build(3, (3,), "s2")]
    result = plan(pulls(1, 2, 3), chain, "s2", config(), T0)
    assert of(RecordLanded, result.actions) == [RecordLanded(1), RecordLanded(2)]
    assert not of(Drop, result.actions)
    assert not of(LeaveMerged, result.actions)


def test_a_base_branch_that_moved_drops_every_build() -> None:
    chain = [build(1, (1,), BASE, OK), build(2, (2,), "s1")]
    result = plan(pulls(1, 2), chain, "someone-pushed", config(), T0)
    assert {d.build_id for d in of(Drop, result.actions)} == {1, 2}  # type: ignore[attr-defined]
    assert of(StartBuild, result.actions)[0] == StartBuild((Member(1, "h1"),), "someone-pushed", ())


def test_a_failed_single_build_dequeues_its_pull_naming_the_check_and_link() -> None:
    chain = [build(1, (1,), BASE, OK), build(2, (2,), "s1", BAD), build(3, (3,), "s2")]
    result = plan(pulls(1, 2, 3), chain, BASE, config(), T0)
    (dequeue,) = of(Dequeue, result.actions)
    assert dequeue.reason == DequeueReason.CHECK_FAILED  # type: ignore[attr-defined]
    assert "`ci` (https://ci.example/run/9)" in dequeue.comment  # type: ignore[attr-defined]
    assert "main with #1" in dequeue.comment  # type: ignore[attr-defined]
    assert {d.build_id for d in of(Drop, result.actions)} == {2, 3}  # type: ignore[attr-defined]
    assert of(Land, result.actions) == [Land(1, "s1")]


def test_a_failure_behind_a_running_build_is_not_acted_on() -> None:
    chain = [build(1, (1,), BASE), build(2, (2,), "s1", BAD)]
    result = plan(pulls(1, 2), chain, BASE, config(), T0)
    assert not of(Dequeue, result.actions) and not of(Drop, result.actions)


def test_a_failed_batch_is_split_in_halves() -> None:
    chain = [build(1, (1, 2, 3), BASE, BAD), build(2, (4,), "s1")]
    result = plan(pulls(1, 2, 3, 4), chain, BASE, config(batch_size=3), T0)
    assert of(Split, result.actions) == [Split(1, (((1, 2), "1a"), ((3,), "1b")))]
    assert {d.build_id for d in of(Drop, result.actions)} == {1, 2}  # type: ignore[attr-defined]
    assert not of(Dequeue, result.actions)


def test_halves_are_built_apart_from_the_rest() -> None:
    queue = [*pulls(1, 2, group="1a"), *pulls(3, group="1b"), *pulls(4, 5)]
    result = plan(queue, [], BASE, config(batch_size=3), T0)
    batches = [tuple(m.number for m in a.members) for a in of(StartBuild, result.actions)]  # type: ignore[attr-defined]
    assert batches == [(1, 2), (3,), (4, 5)]


def test_a_build_over_the_ci_timeout_fails_as_timed_out() -> None:
    chain = [build(1, (1,), BASE)]
    result = plan(pulls(1), chain, BASE, config(), T0 + timedelta(hours=2))
    (dequeue,) = of(Dequeue, result.actions)
    assert dequeue.reason == DequeueReason.CI_TIMEOUT  # type: ignore[attr-defined]


def test_a_running_build_sets_its_timeout_as_the_deadline() -> None:
    result = plan(pulls(1), [build(1, (1,), BASE)], BASE, config(), T0)
    assert result.deadline == T0 + timedelta(hours=1, seconds=1)


def test_a_pull_that_left_drops_the_builds_that_contain_it() -> None:
    queue = pulls(1, 2, 3)
    queue[1] = QueuedPull(2, "h2", T0, state="closed")
    chain = [build(1, (1,), BASE), build(2, (2,), "s1"), build(3, (3,), "s2")]
    result = plan(queue, chain, BASE, config(), T0)
    assert {d.build_id for d in of(Drop, result.actions)} == {2, 3}  # type: ignore[attr-defined]
    assert of(StartBuild, result.actions) == [
        StartBuild((Member(3, "h3"),), "s1", (Member(1, "h1"),))
    ]


def test_a_new_head_on_a_queued_pull_is_rebuilt() -> None:
    queue = pulls(1)
    queue[0] = QueuedPull(1, "pushed", T0)
    result = plan(queue, [build(1, (1,), BASE)], BASE, config(), T0)
    assert of(Drop, result.actions) and of(StartBuild, result.actions) == [
        StartBuild((Member(1, "pushed"),), BASE, ())
    ]


def test_an_unfinished_build_is_dropped() -> None:
    unfinished = BuildView(1, "mergequeue/main/1", (Member(1, "h1"),), BASE, None, T0)
    result = plan(pulls(1), [unfinished], BASE, config(), T0)
    assert of(Drop, result.actions) == [Drop(1, "making it did not finish")]


def test_a_paused_queue_neither_lands_nor_starts() -> None:
    result = plan(pulls(1, 2), [build(1, (1,), BASE, OK)], BASE, config(paused=True), T0)
    assert not of(Land, result.actions) and not of(StartBuild, result.actions)


def test_a_failed_build_with_one_undecided_build_ahead_steps_aside_at_once() -> None:
    # #1 is still testing; #2's build failed. What follows is rebuilt on #1 without #2
    # now, rather than when #1 finishes.
    chain = [
        build(1, (1,), BASE),
        build(2, (2,), "s1", BAD),
        build(3, (3,), "s2"),
    ]
    result = plan(pulls(1, 2, 3, 4), chain, BASE, config(), T0)
    assert of(Drop, result.actions) == [Drop(3, "a build ahead of it (mergequeue/main/2) failed")]
    assert of(StartBuild, result.actions) == [
        StartBuild((Member(3, "h3"),), "s1", (Member(1, "h1"),)),
        StartBuild((Member(4, "h4"),), None, (Member(1, "h1"), Member(3, "h3"))),
    ]
    assert of(Dequeue, result.actions) == []
    status = {a.number: a for a in of(SetStatus, result.actions)}  # type: ignore[attr-defined]
    assert "failed in mergequeue/main/2" in status[2].detail  # type: ignore[attr-defined]


def test_a_stepped_aside_build_leaves_once_the_builds_ahead_pass_and_those_behind_stay() -> None:
    chain = [
        build(1, (1,), BASE, OK),
        build(2, (2,), "s1", BAD),
        build(3, (3,), "s1"),
    ]
    result = plan(pulls(1, 2, 3), chain, BASE, config(), T0)
    assert [a.number for a in of(Dequeue, result.actions)] == [2]  # type: ignore[attr-defined]
    assert of(Drop, result.actions) == [Drop(2, "ci", "failed", ("ci",))]
    assert of(Land, result.actions) == [Land(1, "s1")]
    # Once #1 landed, #3's build (made on it, without #2) is the chain.
    after = plan(pulls(3), [build(3, (3,), "s1", OK)], "s1", config(), T0)
    assert of(Land, after.actions) == [Land(3, "s3")]


def test_a_stepped_aside_pull_request_is_built_again_when_a_build_ahead_fails() -> None:
    # #2 stepped aside; then #1's own build failed too: #2's failure may have been #1's,
    # so #2 is rebuilt (not dequeued) and the builds made without it go.
    chain = [
        build(1, (1,), BASE, BAD),
        build(2, (2,), "s1", BAD),
        build(3, (3,), "s1"),
    ]
    result = plan(pulls(1, 2, 3), chain, BASE, config(), T0)
    assert [a.number for a in of(Dequeue, result.actions)] == [1]  # type: ignore[attr-defined]
    dropped = {d.build_id: d.outcome for d in of(Drop, result.actions)}  # type: ignore[attr-defined]
    assert dropped == {1: "failed", 2: "obsolete", 3: "obsolete"}


def test_a_failed_build_with_two_undecided_builds_ahead_waits_for_them() -> None:
    chain = [
        build(1, (1,), BASE),
        build(2, (2,), "s1"),
        build(3, (3,), "s2", BAD),
        build(4, (4,), "s3"),
    ]
    result = plan(pulls(1, 2, 3, 4), chain, BASE, config(), T0)
    assert of(Drop, result.actions) == []
    assert of(StartBuild, result.actions) == []


def test_a_failed_build_does_not_step_aside_while_a_build_behind_may_contradict_it() -> None:
    chain = [
        build(1, (1,), BASE),
        build(2, (2,), "s1", BAD),
        build(3, (3,), "s2"),
    ]
    result = plan(pulls(1, 2, 3), chain, BASE, config(failure_depth=1), T0)
    assert of(Drop, result.actions) == []


def test_only_the_builds_a_landed_commit_was_made_on_are_recorded_as_landed() -> None:
    # #2 stepped aside and #3 was made on #1; the base reached #3 (its failure was acted
    # on by a worker that died before recording it): #2 did not land.
    chain = [
        build(1, (1,), BASE, OK),
        build(2, (2,), "s1", BAD),
        build(3, (3,), "s1", OK),
    ]
    result = plan(pulls(1, 2, 3), chain, "s3", config(), T0)
    assert of(RecordLanded, result.actions) == [RecordLanded(1), RecordLanded(3)]
    assert of(Drop, result.actions)[0] == Drop(2, "the base branch moved past it")


def test_the_build_limit_counts_only_the_builds_ci_is_testing() -> None:
    # #2 passed and waits for #1 to land: it runs no CI, so a build starts for #3.
    chain = [build(1, (1,), BASE), build(2, (2,), "s1", OK)]
    result = plan(pulls(1, 2, 3, 4), chain, BASE, config(max_builds=2), T0)
    assert of(StartBuild, result.actions) == [
        StartBuild((Member(3, "h3"),), "s2", (Member(1, "h1"), Member(2, "h2")))
    ]
