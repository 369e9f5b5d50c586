"""Parallel mode, in process: the real engine, planner and executor on the fake GitHub's git
model with its scripted CI, a simulated clock, and the memory store."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from mergequeue.github import Unavailable
from mergequeue.models import BuildState, Installation, QueueEntryState
from mergequeue.queue.parallel import clean_orphans
from mergequeue.queue.runs import REFUSALS
from tests.queue.harness import FULL_NAME, Harness
from tests.queue.memory import unavailable

pytestmark = pytest.mark.asyncio


def parallel(batch_size: int = 1, builds: int = 4, bad: Iterable[str] = ()) -> Harness:
    h = Harness()
    h.configure(
        queue_mode="parallel",
        batch_size=batch_size,
        max_parallel_builds=builds,
        batch_wait_seconds=0,
    )
    h.fake.set_ci(full_name=FULL_NAME, bad_paths=list(bad))
    return h


def main_head(h: Harness) -> str:
    return h.fake.repo(FULL_NAME).branches["main"]


def trees_that_passed(h: Harness) -> set[str]:
    return {
        run["tree_sha"]
        for run in h.fake.ci_runs_json(full_name=FULL_NAME)
        if run["status"] == "completed" and run["conclusion"] == "success"
    }


def tree(h: Harness, sha: str) -> str:
    return str(h.fake.commit_json(full_name=FULL_NAME, sha=sha)["tree_sha"])


def staging_branches(h: Harness) -> list[str]:
    return sorted(b for b in h.fake.repo(FULL_NAME).branches if b.startswith("mergequeue"))


async def settle(h: Harness, *, steps: int = 60) -> list[str]:
    """Evaluate, let CI finish what runs, and again, until the queue is empty; returns the
    base branch's heads in the order the queue moved it."""
    heads = [main_head(h)]
    for _ in range(steps):
        await h.evaluate()
        if main_head(h) != heads[-1]:
            heads.append(main_head(h))
        if not await h.store.queued(h.repository.id):
            return heads
        h.fake.complete_ci(full_name=FULL_NAME)
        h.advance(minutes=1)
    raise AssertionError("the queue did not empty")


async def queue_all(h: Harness, count: int, **files: dict[str, str]) -> list[int]:
    numbers = []
    for _ in range(count):
        number = len(numbers) + 1
        extra = files.get(f"pr{number}")
        numbers.append(h.open_pull(files=extra) if extra else h.open_pull())
    for number in numbers:
        await h.label(number)
        h.advance(seconds=1)
    return numbers


def merged_order(h: Harness) -> list[int]:
    merged = [e for e in h.store.entries if e.state == QueueEntryState.MERGED]
    merged.sort(key=lambda e: (e.finished_at, e.enqueued_at))
    return [h.store.numbers[e.id] for e in merged]


async def test_ten_pulls_one_bad_one_conflicting_land_the_other_eight_in_order() -> None:
    h = parallel(batch_size=2, builds=4, bad=["changes/4.txt"])
    numbers = await queue_all(h, 10, pr2={"shared.txt": "two\n"}, pr6={"shared.txt": "six\n"})
    heads = await settle(h)

    assert merged_order(h) == [n for n in numbers if n not in (4, 6)]
    assert all(h.merged(n) for n in numbers if n not in (4, 6))
    assert not h.merged(4) and not h.merged(6)
    assert h.entry(4).dequeue_reason == "check_failed"
    assert h.entry(6).dequeue_reason == "conflict"
    assert "#2" in h.comments(6)[-1]
    assert "https://ci.example.com/runs/" in h.comments(4)[-1]
    assert h.events.bisections >= 1
    # Every tree the base branch held after a landing had passed CI.
    log = h.fake.branch_log_json(full_name=FULL_NAME, branch="main")
    assert [m["sha"] for m in log[1:]] == heads[1:]
    assert all(m["tree_sha"] in trees_that_passed(h) for m in log[1:])
    assert staging_branches(h) == []


async def test_builds_run_in_parallel_up_to_the_limit_and_batches_share_one() -> None:
    h = parallel(batch_size=2, builds=3)
    await queue_all(h, 9)
    await h.evaluate()
    testing = [b for b in h.store.builds if b.state == BuildState.TESTING]
    assert [len(b.members) for b in testing] == [2, 2, 2]
    assert len(staging_branches(h)) == 3
    # Each build holds the one before it.
    assert [b.parent_sha for b in testing[1:]] == [b.sha for b in testing[:-1]]
    assert h.events.batch_sizes == [2, 2, 2]


async def test_passed_builds_land_together_by_fast_forwarding_to_the_last() -> None:
    h = parallel(builds=3)
    await queue_all(h, 3)
    await h.evaluate()
    last = h.store.builds[-1]
    h.fake.complete_ci(full_name=FULL_NAME)
    await h.evaluate()
    assert main_head(h) == last.sha
    assert h.github.count("fast_forward") == 1
    assert all(h.merged(n) for n in (1, 2, 3))
    assert h.events.landings == 1


async def test_a_failed_single_build_dequeues_its_pull_and_rebuilds_those_behind() -> None:
    h = parallel(bad=["changes/2.txt"])
    await queue_all(h, 3)
    await settle(h)
    assert [h.merged(n) for n in (1, 2, 3)] == [True, False, True]
    comment = h.comments(2)[-1]
    assert "required check failed" in comment and "`ci`" in comment
    assert "https://ci.example.com/runs/" in comment
    assert h.labels(2) == []


async def test_a_push_to_the_base_drops_every_build_and_nothing_untested_lands() -> None:
    h = parallel(builds=3)
    await queue_all(h, 3)
    await h.evaluate()
    first = [b.id for b in h.store.builds]
    h.fake.complete_ci(full_name=FULL_NAME)
    h.fake.push(full_name=FULL_NAME, branch="main")
    pushed = main_head(h)
    heads = await settle(h)
    assert {b.outcome for b in h.store.builds if b.id in first} == {"obsolete"}
    assert heads[0] == pushed
    for head in heads[1:]:
        assert tree(h, head) in trees_that_passed(h)
    assert all(h.merged(n) for n in (1, 2, 3))


async def test_a_new_commit_on_a_queued_pull_rebuilds_with_it() -> None:
    h = parallel(builds=2)
    await queue_all(h, 2)
    await h.evaluate()
    h.fake.push(full_name=FULL_NAME, branch="feature-1")
    new_head = h.head(1)
    await settle(h)
    assert h.merged(1) and h.merged(2)
    landed = [b for b in h.store.builds if b.state == BuildState.LANDED]
    assert [1, new_head] in landed[0].members


async def test_a_pull_closed_while_building_leaves_and_its_build_is_dropped() -> None:
    h = parallel(builds=2)
    await queue_all(h, 2)
    await h.evaluate()
    h.fake.set_pull(full_name=FULL_NAME, number=1, state="closed")
    await settle(h)
    assert h.entry(1).dequeue_reason == "closed"
    assert h.merged(2) and not h.merged(1)
    assert staging_branches(h) == []


async def test_a_build_over_the_ci_timeout_counts_as_failed() -> None:
    h = parallel()
    await queue_all(h, 1)
    await h.evaluate()
    h.advance(hours=2)
    await h.evaluate()
    assert h.entry(1).dequeue_reason == "ci_timeout"
    assert staging_branches(h) == []


async def test_a_worker_dying_while_making_a_build_leaves_no_second_branch() -> None:
    h = parallel(batch_size=2, builds=1)
    await queue_all(h, 2)
    calls = 0

    def die_on_second_merge(name: str) -> BaseException | None:
        nonlocal calls
        calls += name == "merge_into"
        return unavailable() if name == "merge_into" and calls == 2 else None

    h.github.fault = die_on_second_merge
    with pytest.raises(Unavailable):
        await h.evaluate()
    h.github.fault = None
    await settle(h)
    assert h.merged(1) and h.merged(2)
    assert [b.outcome for b in h.store.builds] == ["obsolete", "passed"]
    assert staging_branches(h) == []


async def test_a_landing_whose_answer_was_lost_is_recognised_from_the_base() -> None:
    h = parallel(builds=2)
    await queue_all(h, 2)
    await h.evaluate()
    h.fake.complete_ci(full_name=FULL_NAME)

    real = h.github.fast_forward

    async def lands_then_dies(branch: str, sha: str) -> None:
        await real(branch, sha)
        raise unavailable()

    h.github.fast_forward = lands_then_dies  # type: ignore[method-assign]
    with pytest.raises(Unavailable):
        await h.evaluate()
    h.github.fast_forward = real  # type: ignore[method-assign]
    await h.evaluate()
    assert [b.state for b in h.store.builds] == [BuildState.LANDED, BuildState.LANDED]
    assert merged_order(h) == [1, 2]
    assert h.events.merges and len(h.events.merges) == 2


async def test_orphaned_staging_branches_are_deleted_and_owned_ones_kept() -> None:
    h = parallel()
    await queue_all(h, 1)
    await h.evaluate()
    h.fake.create_ref(full_name=FULL_NAME, ref="refs/heads/mergequeue/main/99", sha=main_head(h))
    h.fake.create_ref(
        full_name=FULL_NAME, ref="refs/heads/mergequeue-making/main/98", sha=main_head(h)
    )
    deleted = await clean_orphans(h.store, h.github, h.repository.id)
    assert sorted(deleted) == ["mergequeue-making/main/98", "mergequeue/main/99"]
    assert staging_branches(h) == [h.store.builds[0].branch]


async def test_leaving_parallel_mode_drops_the_builds() -> None:
    h = parallel(builds=2)
    await queue_all(h, 2)
    await h.evaluate()
    h.configure(queue_mode="serial")
    await h.evaluate()
    assert {b.state for b in h.store.builds} == {BuildState.DROPPED}
    assert staging_branches(h) == []


@pytest.fixture(autouse=True)
def _forget_refusals() -> Iterable[None]:
    REFUSALS.clear()
    yield
    REFUSALS.clear()


def installed(h: Harness, *, stored: bool, granted: bool) -> None:
    """The repository's installation: `stored`, whether the database says it granted
    `actions: write`; `granted`, whether GitHub (the fake) lets its token cancel runs."""
    h.fake.add_installation(installation_id=7, account="acme", repositories=[FULL_NAME])
    h.fake.set_installation_permissions(
        installation_id=7, permissions={"actions": "write" if granted else "read"}
    )
    h.github.installation_id = 7
    h.installation = Installation(id=7, account_login="acme", suspended=False, actions_write=stored)


async def first_fails_second_obsolete(h: Harness) -> str:
    """#1 (bad) and #2 built at once; #1's CI fails: #2's build is dropped with its CI
    still running. Returns #2's first build's branch."""
    await queue_all(h, 2)
    await h.evaluate()
    first, second = h.store.builds
    assert first.sha is not None
    h.fake.complete_ci(full_name=FULL_NAME, sha=first.sha)
    await h.evaluate()
    assert (first.outcome, second.outcome) == ("failed", "obsolete")
    return second.branch


def runs_on(h: Harness, branch: str) -> list[tuple[str, str]]:
    return [
        (r["status"], r["conclusion"] if r["status"] == "completed" else "")
        for r in h.fake.ci_runs_json(full_name=FULL_NAME)
        if r["branch"] == branch
    ]


async def test_a_build_dropped_because_one_ahead_failed_has_its_pending_runs_cancelled() -> None:
    h = parallel(builds=2, bad=["changes/1.txt"])
    installed(h, stored=True, granted=True)
    dropped = await first_fails_second_obsolete(h)
    assert runs_on(h, dropped) == [("completed", "cancelled")]
    assert h.github.count("cancel_workflow_runs") == 2  # the failed build and the obsolete
    assert dropped not in staging_branches(h)
    await settle(h)
    assert h.merged(2) and not h.merged(1)


async def test_without_the_actions_permission_no_cancel_call_is_made() -> None:
    h = parallel(builds=2, bad=["changes/1.txt"])
    installed(h, stored=False, granted=False)
    dropped = await first_fails_second_obsolete(h)
    assert h.github.count("cancel_workflow_runs") == 0
    assert runs_on(h, dropped) == [("in_progress", "")]


async def test_a_403_anyway_does_not_stop_the_queue(caplog: pytest.LogCaptureFixture) -> None:
    h = parallel(builds=3, bad=["changes/1.txt"])
    # The database says it may; GitHub (the permission revoked since) refuses.
    installed(h, stored=True, granted=False)
    await queue_all(h, 3)
    await h.evaluate()
    first = h.store.builds[0]
    assert first.sha is not None
    h.fake.complete_ci(full_name=FULL_NAME, sha=first.sha)
    await h.evaluate()
    dropped = [b for b in h.store.builds if b.outcome == "obsolete"]
    assert len(dropped) == 2
    for build in dropped:
        assert runs_on(h, build.branch) == [("in_progress", "")]
        assert build.branch not in staging_branches(h)
    await settle(h)
    assert h.merged(2) and h.merged(3) and not h.merged(1)
    assert h.entry(1).dequeue_reason == "check_failed"
    # The builds behind the failure are dropped first: the first was refused, and the
    # repository is not asked again (within the hour), for the other or the failed one.
    assert h.github.count("cancel_workflow_runs") == 1
    refusals = [r for r in caplog.records if "refused to cancel" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].levelname == "WARNING"


async def test_a_failure_to_cancel_never_stops_the_queue() -> None:
    h = parallel(builds=2, bad=["changes/1.txt"])
    installed(h, stored=True, granted=True)
    h.github.fault = lambda name: unavailable() if name == "cancel_workflow_runs" else None
    dropped = await first_fails_second_obsolete(h)
    assert dropped not in staging_branches(h)
    await settle(h)
    assert h.merged(2) and not h.merged(1)


async def test_a_failed_build_has_its_failed_jobs_rerun_once_and_a_pass_then_lands() -> None:
    h = parallel(builds=1)
    h.configure(flaky_retries=1)
    installed(h, stored=True, granted=True)
    await queue_all(h, 1)
    await h.evaluate()
    h.fake.ci_runs[-1].conclusion = "failure"  # this attempt fails by chance
    h.fake.complete_ci(full_name=FULL_NAME)
    await h.evaluate()
    assert h.github.count("rerun_failed_jobs") == 1
    assert not h.merged(1) and h.store.live(1) is not None
    h.fake.complete_ci(full_name=FULL_NAME)  # the second attempt passes
    await h.evaluate()
    assert h.merged(1)
    assert h.store.builds[0].retries == 1


async def test_a_failure_that_fails_again_after_its_rerun_stands() -> None:
    h = parallel(builds=1, bad=["changes/1.txt"])
    h.configure(flaky_retries=1)
    installed(h, stored=True, granted=True)
    await queue_all(h, 1)
    await settle(h)
    assert h.github.count("rerun_failed_jobs") == 1
    assert h.entry(1).dequeue_reason == "check_failed"


async def test_without_the_actions_permission_failed_jobs_are_not_rerun() -> None:
    h = parallel(builds=1, bad=["changes/1.txt"])
    h.configure(flaky_retries=1)
    installed(h, stored=False, granted=False)
    await queue_all(h, 1)
    await settle(h)
    assert h.github.count("rerun_failed_jobs") == 0
    assert h.entry(1).dequeue_reason == "check_failed"
