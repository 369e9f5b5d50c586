"""The client's git calls for parallel mode: references, merges and commits, against the
fake (whose answers the conformance tests hold to GitHub's OpenAPI description)."""

from __future__ import annotations

import pytest

from mergequeue.github import (
    Conflict,
    GitCommit,
    GitHubClient,
    GitRef,
    MergeConflict,
    NotFound,
    Unprocessable,
    endpoint_template,
)
from tests.fakegithub import FakeGitHub
from tests.github import openapi
from tests.github.conftest import FULL_NAME, OWNER, REPO, Observed

Q = {"owner": OWNER, "repo": REPO}
STAGING = "mergequeue/main/1"


def main(fake: FakeGitHub) -> str:
    return fake.repo(FULL_NAME).branches["main"]


async def test_create_read_move_and_delete_a_staging_branch(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    created = await gh.create_ref(**Q, ref=f"refs/heads/{STAGING}", sha=main(fake))
    assert created == GitRef(ref=f"refs/heads/{STAGING}", sha=main(fake))
    assert created.branch == STAGING
    assert await gh.get_ref(**Q, ref=f"heads/{STAGING}") == created
    ahead = fake.push(full_name=FULL_NAME, branch="elsewhere")
    moved = await gh.update_ref(owner=OWNER, repo=REPO, ref=f"heads/{STAGING}", sha=ahead)
    assert moved.sha == ahead == fake.repo(FULL_NAME).branches[STAGING]
    with pytest.raises(Unprocessable) as not_ff:
        await gh.update_ref(owner=OWNER, repo=REPO, ref=f"heads/{STAGING}", sha=main(fake))
    assert not_ff.value.message == "Update is not a fast forward"
    forced = await gh.update_ref(
        owner=OWNER, repo=REPO, ref=f"heads/{STAGING}", sha=main(fake), force=True
    )
    assert forced.sha == main(fake)
    assert await gh.delete_ref(**Q, ref=f"heads/{STAGING}") is True
    assert await gh.delete_ref(**Q, ref=f"heads/{STAGING}") is False
    with pytest.raises(NotFound):
        await gh.get_ref(**Q, ref=f"heads/{STAGING}")


async def test_creating_an_existing_ref_is_unprocessable(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    await gh.create_ref(**Q, ref=f"refs/heads/{STAGING}", sha=main(fake))
    with pytest.raises(Unprocessable) as exists:
        await gh.create_ref(**Q, ref=f"refs/heads/{STAGING}", sha=main(fake))
    assert exists.value.message == "Reference already exists"


async def test_matching_refs_come_from_every_page(gh: GitHubClient, fake: FakeGitHub) -> None:
    for n in range(130):
        fake.create_ref(full_name=FULL_NAME, ref=f"refs/heads/mergequeue/main/{n}", sha=main(fake))
    fake.create_ref(full_name=FULL_NAME, ref="refs/heads/mergequeue/mainline/1", sha=main(fake))
    refs = await gh.list_matching_refs(**Q, prefix="heads/mergequeue/main/")
    assert sorted(r.branch or "" for r in refs) == sorted(
        f"mergequeue/main/{n}" for n in range(130)
    )
    assert await gh.list_matching_refs(**Q, prefix="heads/nothing/") == []


async def test_merge_branches_gives_the_commit_none_or_a_merge_conflict(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    one = fake.add_pull(full_name=FULL_NAME, files={"app.py": "one\n"})
    two = fake.add_pull(full_name=FULL_NAME, files={"app.py": "two\n"})
    await gh.create_ref(**Q, ref=f"refs/heads/{STAGING}", sha=main(fake))
    merged = await gh.merge_branches(
        **Q, base=STAGING, head=one["head_sha"], commit_message="Stage #1"
    )
    assert merged is not None
    assert merged.parents == (main(fake), one["head_sha"]) and merged.message == "Stage #1"
    assert merged.sha == fake.repo(FULL_NAME).branches[STAGING]
    assert merged.tree_sha == fake.commit_json(full_name=FULL_NAME, sha=merged.sha)["tree_sha"]
    assert await gh.merge_branches(**Q, base=STAGING, head=one["head_sha"]) is None
    with pytest.raises(MergeConflict) as conflict:
        await gh.merge_branches(**Q, base=STAGING, head=two["head_sha"])
    assert isinstance(conflict.value, Conflict) and conflict.value.message == "Merge conflict"
    with pytest.raises(NotFound):
        await gh.merge_branches(**Q, base="no-such-branch", head=one["head_sha"])


async def test_git_commit_gives_tree_and_parents(gh: GitHubClient, fake: FakeGitHub) -> None:
    pr = fake.add_pull(full_name=FULL_NAME, title="Add cogs")
    commit = await gh.get_git_commit(**Q, sha=pr["head_sha"])
    expected = fake.commit_json(full_name=FULL_NAME, sha=pr["head_sha"])
    assert commit == GitCommit(
        sha=pr["head_sha"], tree_sha=expected["tree_sha"], parents=(main(fake),), message="Add cogs"
    )
    with pytest.raises(NotFound):
        await gh.get_git_commit(**Q, sha="0" * 40)


async def test_reads_of_refs_and_commits_are_conditional(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    sha = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    for _ in range(2):
        await gh.get_git_commit(**Q, sha=sha)
        await gh.get_ref(**Q, ref="heads/main")
    second = fake.calls[-2:]
    assert [c.status for c in second] == [304, 304]
    assert not any(c.counted for c in second)


async def test_refs_go_out_with_their_slashes_and_are_labelled_by_route(
    gh: GitHubClient, fake: FakeGitHub, observed: Observed
) -> None:
    fake.create_ref(full_name=FULL_NAME, ref=f"refs/heads/{STAGING}", sha=main(fake))
    await gh.get_ref(**Q, ref=f"heads/{STAGING}")
    await gh.list_matching_refs(**Q, prefix="heads/mergequeue/")
    await gh.update_ref(owner=OWNER, repo=REPO, ref=f"heads/{STAGING}", sha=main(fake), force=True)
    await gh.delete_ref(**Q, ref=f"heads/{STAGING}")
    paths = [c.path for c in fake.calls]
    assert f"/repos/{FULL_NAME}/git/ref/heads/{STAGING}" in paths
    assert f"/repos/{FULL_NAME}/git/matching-refs/heads/mergequeue/" in paths
    endpoints = {e for _, e, _ in observed.labels()}
    assert {
        "/repos/{owner}/{repo}/git/ref/{ref}",
        "/repos/{owner}/{repo}/git/matching-refs/{ref}",
        "/repos/{owner}/{repo}/git/refs/{ref}",
    } <= endpoints
    assert endpoint_template("/repos/o/r/git/commits/abc") == (
        "/repos/{owner}/{repo}/git/commits/{commit_sha}"
    )


async def test_git_request_bodies_match_githubs_openapi(gh: GitHubClient, fake: FakeGitHub) -> None:
    pr = fake.add_pull(full_name=FULL_NAME)
    await gh.create_ref(**Q, ref=f"refs/heads/{STAGING}", sha=main(fake))
    await gh.merge_branches(**Q, base=STAGING, head=pr["head_sha"])
    await gh.merge_branches(**Q, base=STAGING, head=pr["head_sha"], commit_message="again")
    await gh.update_ref(owner=OWNER, repo=REPO, ref=f"heads/{STAGING}", sha=main(fake), force=True)
    for call in fake.calls:
        assert openapi.request_errors(call.method, call.route, call.body) == [], call
