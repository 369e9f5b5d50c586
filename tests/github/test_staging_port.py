"""Parallel mode's `StagingGitHub`, kept alike by the REST adapter and the in-memory one.

Every test runs twice over the same fake: through `RestRepositoryGitHub` (HTTP, the
client, GitHub's shapes) and through `MemoryGitHub` (the fake's methods directly), so the
queue's simulation sees what the real service would.
"""

from __future__ import annotations

import pytest

from mergequeue.github import GitHubClient, Unavailable
from mergequeue.github.queue_adapter import RestRepositoryGitHub
from mergequeue.queue.ports import Conflict, Refused, StagingGitHub
from tests.fakegithub import FakeGitHub
from tests.github.conftest import FULL_NAME, INSTALLATION_ID, OWNER, REPO
from tests.queue.memory import MemoryGitHub

STAGING = "mergequeue/main/1"


def test_both_implementations_are_staging_githubs(gh: GitHubClient, fake: FakeGitHub) -> None:
    # mypy checks the Protocol here (run `mypy tests/github/test_staging_port.py`).
    rest: StagingGitHub = RestRepositoryGitHub(gh, owner=OWNER, repo=REPO)
    memory: StagingGitHub = MemoryGitHub(fake, FULL_NAME)
    for port in (rest, memory):
        for name in (
            "branch_head",
            "create_branch",
            "reset_branch",
            "delete_branch",
            "merge_into",
            "tree_of",
            "branches_with_prefix",
            "cancel_workflow_runs",
        ):
            assert callable(getattr(port, name)), name


@pytest.fixture(params=["rest", "memory"])
def port(request: pytest.FixtureRequest, gh: GitHubClient, fake: FakeGitHub) -> StagingGitHub:
    if request.param == "rest":
        return RestRepositoryGitHub(gh, owner=OWNER, repo=REPO)
    return MemoryGitHub(fake, FULL_NAME, installation_id=INSTALLATION_ID)


def main(fake: FakeGitHub) -> str:
    return fake.repo(FULL_NAME).branches["main"]


async def test_a_staging_branch_is_built_from_merges(port: StagingGitHub, fake: FakeGitHub) -> None:
    one = fake.add_pull(full_name=FULL_NAME)
    two = fake.add_pull(full_name=FULL_NAME)
    assert await port.branch_head(STAGING) is None
    await port.create_branch(STAGING, main(fake))
    assert await port.branch_head(STAGING) == main(fake)
    first = await port.merge_into(STAGING, one["head_sha"], "Stage #1")
    second = await port.merge_into(STAGING, two["head_sha"], "Stage #2")
    assert await port.branch_head(STAGING) == second != first
    commit = fake.commit_json(full_name=FULL_NAME, sha=second)
    assert commit["parents"] == [first, two["head_sha"]] and commit["message"] == "Stage #2"
    assert {"changes/1.txt", "changes/2.txt"} <= set(commit["tree"])
    # Merging what the branch has already leaves it where it is.
    assert await port.merge_into(STAGING, one["head_sha"], "again") == second
    assert await port.branch_head(STAGING) == second


async def test_creating_an_existing_branch_is_refused_422(
    port: StagingGitHub, fake: FakeGitHub
) -> None:
    await port.create_branch(STAGING, main(fake))
    with pytest.raises(Refused) as refused:
        await port.create_branch(STAGING, main(fake))
    assert (refused.value.status, refused.value.message) == (422, "Reference already exists")


async def test_a_conflicting_head_is_a_conflict_and_the_branch_stays(
    port: StagingGitHub, fake: FakeGitHub
) -> None:
    one = fake.add_pull(full_name=FULL_NAME, files={"app.py": "one\n"})
    two = fake.add_pull(full_name=FULL_NAME, files={"app.py": "two\n"})
    await port.create_branch(STAGING, main(fake))
    staged = await port.merge_into(STAGING, one["head_sha"], "Stage #1")
    with pytest.raises(Conflict) as conflict:
        await port.merge_into(STAGING, two["head_sha"], "Stage #2")
    assert conflict.value.message == "Merge conflict"
    assert await port.branch_head(STAGING) == staged


async def test_merging_into_a_missing_branch_is_refused_404(
    port: StagingGitHub, fake: FakeGitHub
) -> None:
    pr = fake.add_pull(full_name=FULL_NAME)
    with pytest.raises(Refused) as refused:
        await port.merge_into(STAGING, pr["head_sha"], "Stage #1")
    assert refused.value.status == 404


async def test_reset_rewrites_a_branch_and_delete_forgets_it(
    port: StagingGitHub, fake: FakeGitHub
) -> None:
    pr = fake.add_pull(full_name=FULL_NAME)
    await port.create_branch(STAGING, main(fake))
    await port.merge_into(STAGING, pr["head_sha"], "Stage #1")
    await port.reset_branch(STAGING, main(fake))  # not a fast forward: forced
    assert await port.branch_head(STAGING) == main(fake)
    await port.delete_branch(STAGING)
    assert await port.branch_head(STAGING) is None
    await port.delete_branch(STAGING)  # not there: not an error
    with pytest.raises(Refused):
        await port.reset_branch(STAGING, main(fake))


async def test_equal_trees_are_equal_contents(port: StagingGitHub, fake: FakeGitHub) -> None:
    one = fake.add_pull(full_name=FULL_NAME)
    two = fake.add_pull(full_name=FULL_NAME)
    await port.create_branch(STAGING, main(fake))
    await port.merge_into(STAGING, one["head_sha"], "Stage #1")
    tested = await port.merge_into(STAGING, two["head_sha"], "Stage #2")
    # The same pulls merged in the other order: other commits, the same tree.
    await port.create_branch("mergequeue/main/2", main(fake))
    await port.merge_into("mergequeue/main/2", two["head_sha"], "Stage #2")
    other = await port.merge_into("mergequeue/main/2", one["head_sha"], "Stage #1")
    assert other != tested
    assert await port.tree_of(other) == await port.tree_of(tested)
    assert await port.tree_of(one["head_sha"]) != await port.tree_of(tested)
    with pytest.raises(Refused) as refused:
        await port.tree_of("0" * 40)
    assert refused.value.status == 404


async def test_branches_with_prefix_lists_branch_names(
    port: StagingGitHub, fake: FakeGitHub
) -> None:
    for branch in ("mergequeue/main/2", "mergequeue/main/10", "mergequeue/mainline/1"):
        await port.create_branch(branch, main(fake))
    assert await port.branches_with_prefix("mergequeue/main/") == (
        "mergequeue/main/10",
        "mergequeue/main/2",
    )
    assert await port.branches_with_prefix("mergequeue/nothing/") == ()


async def test_landing_the_tested_commit_merges_its_pulls(
    port: StagingGitHub, fake: FakeGitHub
) -> None:
    """Parallel mode's landing: the base fast-forwards to the tested staging commit."""
    fake.set_ci(full_name=FULL_NAME)
    one, two = fake.add_pull(full_name=FULL_NAME), fake.add_pull(full_name=FULL_NAME)
    await port.create_branch(STAGING, main(fake))
    await port.merge_into(STAGING, one["head_sha"], "Stage #1")
    tip = await port.merge_into(STAGING, two["head_sha"], "Stage #2")
    [run] = fake.complete_ci(full_name=FULL_NAME, sha=tip)
    assert run["conclusion"] == "success"
    fake.update_ref(full_name=FULL_NAME, ref="heads/main", sha=tip)
    assert await port.tree_of(main(fake)) == run["tree_sha"]
    assert await port.pull(1) is not None and (await port.pull(1)).merged  # type: ignore[union-attr]
    assert (await port.pull(2)).merged  # type: ignore[union-attr]


async def test_fast_forward_moves_a_branch_forward_and_never_over_a_push(
    port: StagingGitHub, fake: FakeGitHub
) -> None:
    one = fake.add_pull(full_name=FULL_NAME)
    await port.create_branch(STAGING, main(fake))
    tip = await port.merge_into(STAGING, one["head_sha"], "Stage #1")
    fake.push(full_name=FULL_NAME, branch="main")  # someone pushed meanwhile
    with pytest.raises(Refused) as refused:
        await port.fast_forward("main", tip)
    assert refused.value.status == 422
    assert main(fake) != tip
    await port.reset_branch(STAGING, main(fake))
    tip = await port.merge_into(STAGING, one["head_sha"], "Stage #1")
    await port.fast_forward("main", tip)
    assert main(fake) == tip
    assert (await port.pull(1)).merged  # type: ignore[union-attr]


async def test_a_protected_base_takes_only_a_commit_whose_required_checks_passed(
    port: StagingGitHub, fake: FakeGitHub
) -> None:
    fake.protect(full_name=FULL_NAME, branch="main", contexts=["ci"])
    one = fake.add_pull(full_name=FULL_NAME)
    await port.create_branch(STAGING, main(fake))
    tip = await port.merge_into(STAGING, one["head_sha"], "Stage #1")
    with pytest.raises(Refused) as refused:
        await port.fast_forward("main", tip)
    assert refused.value.message == 'Required status check "ci" is expected.'
    fake.add_check_run(full_name=FULL_NAME, head_sha=tip, name="ci", conclusion="success")
    await port.fast_forward("main", tip)
    assert main(fake) == tip


async def test_memory_counts_calls_and_takes_faults(fake: FakeGitHub) -> None:
    memory = MemoryGitHub(fake, FULL_NAME)
    memory.fault = lambda name: Unavailable(502, "Server Error") if name == "merge_into" else None
    await memory.create_branch(STAGING, main(fake))
    with pytest.raises(Unavailable):
        await memory.merge_into(STAGING, main(fake), "x")
    assert [memory.count(n) for n in ("create_branch", "merge_into")] == [1, 1]


async def test_rest_outages_pass_through_for_the_engine_to_defer(
    fake: FakeGitHub, gh: GitHubClient
) -> None:
    adapter = RestRepositoryGitHub(gh, owner=OWNER, repo=REPO)
    fake.fail(status=502, times=None, route="/repos/{owner}/{repo}/merges")
    await adapter.create_branch(STAGING, main(fake))
    with pytest.raises(Unavailable):
        await adapter.merge_into(STAGING, main(fake), "x")


def staged_with_ci(fake: FakeGitHub, *, actions: str | None) -> None:
    """Two builds' branches with a pending GitHub Actions run each; the installation was
    granted `actions` access."""
    fake.set_installation_permissions(
        installation_id=INSTALLATION_ID, permissions={"actions": actions}
    )
    fake.set_ci(full_name=FULL_NAME)
    for branch in (STAGING, "mergequeue/main/2"):
        fake.create_ref(full_name=FULL_NAME, ref=f"refs/heads/{branch}", sha=main(fake))
        fake.push(full_name=FULL_NAME, branch=branch)


def run_states(fake: FakeGitHub, branch: str) -> list[tuple[str, str]]:
    return [
        (r["status"], r["conclusion"] if r["status"] == "completed" else "")
        for r in fake.ci_runs_json(full_name=FULL_NAME)
        if r["branch"] == branch
    ]


async def test_cancelling_workflow_runs_cancels_those_of_the_branch_not_yet_completed(
    port: StagingGitHub, fake: FakeGitHub
) -> None:
    staged_with_ci(fake, actions="write")
    # The branch's first run completed: only the second is left to cancel.
    [first, _] = [r for r in fake.ci_runs_json(full_name=FULL_NAME) if r["branch"] == STAGING]
    fake.complete_ci(full_name=FULL_NAME, sha=first["sha"])
    assert await port.cancel_workflow_runs(STAGING) == 1
    assert run_states(fake, STAGING) == [("completed", "success"), ("completed", "cancelled")]
    # Another build's runs are untouched (its first, on the same commit, completed too);
    # a branch with nothing pending asks nothing.
    assert run_states(fake, "mergequeue/main/2") == [("completed", "success"), ("in_progress", "")]
    assert await port.cancel_workflow_runs(STAGING) == 0
    assert await port.cancel_workflow_runs("mergequeue/main/404") == 0


async def test_cancelling_workflow_runs_without_actions_write_is_refused_403(
    port: StagingGitHub, fake: FakeGitHub
) -> None:
    staged_with_ci(fake, actions="read")
    with pytest.raises(Refused) as refused:
        await port.cancel_workflow_runs(STAGING)
    assert (refused.value.status, refused.value.message) == (
        403,
        "Resource not accessible by integration",
    )
    assert run_states(fake, STAGING) == [("in_progress", ""), ("in_progress", "")]
