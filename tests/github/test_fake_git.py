"""The fake's git model: trees, commits, ancestry, three-way merges and compare, and the
GitHub semantics built on it (mergeability, update-branch, merging pulls, refs, merges)."""

from __future__ import annotations

import pytest

from tests.fakegithub import ApiError, FakeGitHub
from tests.fakegithub.git import Git, Tree, merge_trees

REPO = "octo/hello"


@pytest.fixture
def gh() -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_repo(full_name=REPO)
    return fake


def refused(call: object, *args: object, **kwargs: object) -> tuple[int, str]:
    assert callable(call)
    with pytest.raises(ApiError) as error:
        call(*args, **kwargs)
    return error.value.status, error.value.message


# -- the model ----------------------------------------------------------------------------


def test_tree_and_commit_shas_are_stable_hashes_of_their_contents() -> None:
    assert Tree({"a": "1", "b": "2"}).sha == Tree([("b", "2"), ("a", "1")]).sha
    assert Tree({"a": "1"}).sha != Tree({"a": "2"}).sha
    one, two = Git(), Git()
    for git in (one, two):
        root = git.commit(tree={"a": "1"}, message="root")
        git.commit(tree={"a": "2"}, parents=[root.sha], message="next")
    assert one.commits.keys() == two.commits.keys()
    assert one.commit(tree={"a": "1"}, message="root", sha="c" * 40).sha == "c" * 40


def test_a_tree_is_immutable_and_changed_makes_a_new_one() -> None:
    tree = Tree({"a": "1", "b": "2"})
    changed = tree.changed({"a": None, "c": "3"})
    assert dict(tree) == {"a": "1", "b": "2"} and dict(changed) == {"b": "2", "c": "3"}
    with pytest.raises(TypeError):
        tree["a"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    ("base", "ours", "theirs", "merged", "conflicts"),
    [
        ({"f": "1"}, {"f": "2"}, {"f": "1"}, {"f": "2"}, []),  # changed on our side only
        ({"f": "1"}, {"f": "1"}, {"f": "3"}, {"f": "3"}, []),  # on theirs only
        ({"f": "1"}, {"f": "2"}, {"f": "2"}, {"f": "2"}, []),  # the same change on both
        ({"f": "1"}, {"f": "2"}, {"f": "3"}, {}, ["f"]),  # different changes: conflict
        ({"f": "1"}, {}, {"f": "3"}, {}, ["f"]),  # deleted here, changed there
        ({"f": "1"}, {}, {"f": "1"}, {}, []),  # deleted on one side only
        ({}, {"n": "1"}, {"n": "2"}, {}, ["n"]),  # added on both, differently
        ({}, {"a": "1"}, {"b": "2"}, {"a": "1", "b": "2"}, []),
    ],
)
def test_three_way_merge_per_path(
    base: dict[str, str],
    ours: dict[str, str],
    theirs: dict[str, str],
    merged: dict[str, str],
    conflicts: list[str],
) -> None:
    items, found = merge_trees(base, ours, theirs)
    assert found == conflicts
    if not conflicts:
        assert items == merged


def test_ancestry_merge_base_and_compare_follow_parents() -> None:
    git = Git()
    root = git.commit(tree={"r": "0"}, message="root").sha
    a1 = git.commit(tree={"r": "0", "a": "1"}, parents=[root], message="a1").sha
    a2 = git.commit(tree={"r": "0", "a": "2"}, parents=[a1], message="a2").sha
    b1 = git.commit(tree={"r": "0", "b": "1"}, parents=[root], message="b1").sha
    merge = git.commit(tree={"r": "0", "a": "2", "b": "1"}, parents=[a2, b1], message="m").sha
    assert git.ancestors(merge) == {root, a1, a2, b1, merge}
    assert git.is_ancestor(b1, merge) and not git.is_ancestor(merge, b1)
    assert git.merge_base(a2, b1) == root
    assert git.merge_base(merge, b1) == b1
    found = git.compare(b1, a2)
    assert found is not None
    assert (found.status, found.ahead_by, found.behind_by) == ("diverged", 2, 1)
    assert found.commits == (a1, a2) and found.merge_base_sha == root
    assert git.compare(a2, merge) is not None
    assert git.compare(merge, merge).status == "identical"  # type: ignore[union-attr]
    assert git.compare(b1, merge).status == "ahead"  # type: ignore[union-attr]
    assert git.compare(merge, b1).status == "behind"  # type: ignore[union-attr]
    unrelated = git.commit(tree={"u": "1"}, message="other root").sha
    assert git.merge_base(unrelated, a2) is None and git.compare(a2, unrelated) is None


def test_merge_of_two_commits_uses_their_best_common_ancestor() -> None:
    git = Git()
    root = git.commit(tree={"f": "1", "g": "1"}, message="root").sha
    ours = git.commit(tree={"f": "2", "g": "1"}, parents=[root], message="ours").sha
    theirs = git.commit(tree={"f": "1", "g": "2"}, parents=[root], message="theirs").sha
    clash = git.commit(tree={"f": "3", "g": "1"}, parents=[root], message="clash").sha
    outcome = git.merge(ours, theirs)
    assert outcome.clean and dict(outcome.tree or {}) == {"f": "2", "g": "2"}
    assert outcome.merge_base == root
    conflict = git.merge(ours, clash)
    assert conflict.tree is None and conflict.conflicts == ("f",)


def test_long_histories_do_not_recurse() -> None:
    git = Git()
    sha = git.commit(tree={}, message="0").sha
    for i in range(5000):
        sha = git.commit(tree={"n": str(i)}, parents=[sha], message=str(i)).sha
    assert len(git.ancestors(sha)) == 5001 and git.generation(sha) == 5000


# -- GitHub's semantics on it ---------------------------------------------------------------


def test_a_pull_head_is_one_commit_on_its_base_changing_a_file_of_its_own(gh: FakeGitHub) -> None:
    base = gh.repo(REPO).branches["main"]
    pr = gh.add_pull(full_name=REPO, title="Add cogs")
    head = gh.commit_json(full_name=REPO, sha=pr["head_sha"])
    assert head["parents"] == [base] and head["message"] == "Add cogs"
    assert head["tree"]["changes/1.txt"] == "change 1\n"
    assert gh.repo(REPO).branches["feature-1"] == pr["head_sha"]


def test_explicit_shas_become_those_commits(gh: FakeGitHub) -> None:
    pr = gh.add_pull(full_name=REPO, head_sha="a" * 40)
    assert pr["head_sha"] == "a" * 40
    assert gh.commit_json(full_name=REPO, sha="a" * 40)["parents"] == [
        gh.repo(REPO).branches["main"]
    ]
    gh.set_pull(full_name=REPO, number=1, head_sha="b" * 40)
    assert gh.commit_json(full_name=REPO, sha="b" * 40)["parents"] == ["a" * 40]
    pushed = gh.push(full_name=REPO, branch="main", sha="d" * 40)
    assert pushed == gh.repo(REPO).branches["main"] == "d" * 40


def test_pulls_touching_the_same_path_conflict_once_one_lands(gh: FakeGitHub) -> None:
    one = gh.add_pull(full_name=REPO, files={"app.py": "one\n"})
    gh.add_pull(full_name=REPO, files={"app.py": "two\n"})
    assert gh.merge_state(full_name=REPO, number=2)[:2] == (True, "clean")
    gh.merge_pull(full_name=REPO, number=1, sha=one["head_sha"], method="squash")
    assert gh.merge_state(full_name=REPO, number=2) == (
        False,
        "dirty",
        "Pull Request is not mergeable",
    )
    assert refused(gh.update_branch, full_name=REPO, number=2, expected_head_sha=None) == (
        422,
        "merge conflict between base and head",
    )
    assert refused(gh.merge_pull, full_name=REPO, number=2, sha=None, method="merge")[0] == 405


def test_the_conflict_flag_still_overrides_the_trees(gh: FakeGitHub) -> None:
    pr = gh.add_pull(full_name=REPO, conflict=True)
    assert gh.merge_state(full_name=REPO, number=1)[:2] == (False, "dirty")
    gh.push(full_name=REPO, branch="mergequeue/main/1")
    assert refused(
        gh.merge_branches, full_name=REPO, base="mergequeue/main/1", head=pr["head_sha"]
    ) == (409, "Merge conflict")


def test_update_branch_merges_the_base_into_the_head(gh: FakeGitHub) -> None:
    pr = gh.add_pull(full_name=REPO)
    base = gh.push(full_name=REPO, branch="main", files={"base.txt": "moved\n"})
    gh.update_branch(full_name=REPO, number=1, expected_head_sha=pr["head_sha"])
    head = gh.commit_json(full_name=REPO, sha=gh.repo(REPO).pulls[1].head_sha)
    assert head["parents"] == [pr["head_sha"], base]
    assert head["tree"]["base.txt"] == "moved\n" and "changes/1.txt" in head["tree"]
    assert gh.compare(full_name=REPO, base="main", head=head["sha"]) == ("ahead", 2, 0)


@pytest.mark.parametrize(
    ("method", "parents", "message"),
    [
        ("merge", 2, "Merge pull request #1 from octo/feature-1\n\nAdd cogs"),
        ("squash", 1, "Add cogs (#1)"),
        ("rebase", 1, "Add cogs"),
    ],
)
def test_merging_a_pull_makes_the_commit_its_method_makes(
    gh: FakeGitHub, method: str, parents: int, message: str
) -> None:
    gh.push(full_name=REPO, branch="main", files={"other.txt": "x\n"})
    before = gh.repo(REPO).branches["main"]
    pr = gh.add_pull(full_name=REPO, title="Add cogs")
    gh.push(full_name=REPO, branch="main", files={"late.txt": "y\n"})
    sha = gh.merge_pull(full_name=REPO, number=1, sha=pr["head_sha"], method=method)
    landed = gh.commit_json(full_name=REPO, sha=sha)
    assert len(landed["parents"]) == parents and landed["message"] == message
    assert landed["parents"][0] != before  # on top of the base's current head
    assert {"other.txt", "late.txt", "changes/1.txt"} <= set(landed["tree"])
    assert gh.repo(REPO).branches["main"] == sha


def test_compare_is_real_ancestry(gh: FakeGitHub) -> None:
    pr = gh.add_pull(full_name=REPO)
    for _ in range(3):
        gh.push(full_name=REPO, branch="main")
    found = gh.comparison(full_name=REPO, base="main", head=pr["head_sha"])
    assert (found.status, found.ahead_by, found.behind_by) == ("diverged", 1, 3)
    assert found.commits == (pr["head_sha"],)
    assert found.merge_base_sha == gh.commit_json(full_name=REPO, sha=pr["head_sha"])["parents"][0]
    assert refused(gh.compare, full_name=REPO, base="main", head="e" * 40) == (404, "Not Found")


def test_refs_create_move_and_delete_branches(gh: FakeGitHub) -> None:
    main = gh.repo(REPO).branches["main"]
    assert gh.create_ref(full_name=REPO, ref="refs/heads/mergequeue/main/1", sha=main) == main
    assert gh.get_ref(full_name=REPO, ref="heads/mergequeue/main/1") == main
    assert refused(gh.create_ref, full_name=REPO, ref="refs/heads/mergequeue/main/1", sha=main) == (
        422,
        "Reference already exists",
    )
    assert refused(gh.create_ref, full_name=REPO, ref="refs/heads/x", sha="0" * 40) == (
        422,
        "Object does not exist",
    )
    gh.create_ref(full_name=REPO, ref="refs/heads/mergequeue/main/2", sha=main)
    gh.create_ref(full_name=REPO, ref="refs/heads/mergequeue/mainline/1", sha=main)
    assert [r for r, _ in gh.matching_refs(full_name=REPO, ref="heads/mergequeue/main/")] == [
        "refs/heads/mergequeue/main/1",
        "refs/heads/mergequeue/main/2",
    ]
    ahead = gh.push(full_name=REPO, branch="mergequeue/main/2")
    assert gh.update_ref(full_name=REPO, ref="heads/mergequeue/main/1", sha=ahead) == ahead
    assert refused(gh.update_ref, full_name=REPO, ref="heads/mergequeue/main/1", sha=main) == (
        422,
        "Update is not a fast forward",
    )
    gh.update_ref(full_name=REPO, ref="heads/mergequeue/main/1", sha=main, force=True)
    gh.delete_ref(full_name=REPO, ref="heads/mergequeue/main/1")
    assert refused(gh.get_ref, full_name=REPO, ref="heads/mergequeue/main/1") == (404, "Not Found")
    assert refused(gh.delete_ref, full_name=REPO, ref="heads/mergequeue/main/1") == (
        422,
        "Reference does not exist",
    )


def test_moving_the_base_through_refs_makes_pulls_behind(gh: FakeGitHub) -> None:
    gh.protect(full_name=REPO, branch="main", strict=True)
    gh.add_pull(full_name=REPO)
    ahead = gh.push(full_name=REPO, branch="elsewhere")
    gh.update_ref(full_name=REPO, ref="heads/main", sha=ahead)
    assert gh.merge_state(full_name=REPO, number=1)[1] == "behind"


def test_a_pull_whose_head_lands_in_its_base_is_merged(gh: FakeGitHub) -> None:
    one = gh.add_pull(full_name=REPO)
    gh.add_pull(full_name=REPO)
    main = gh.repo(REPO).branches["main"]
    gh.create_ref(full_name=REPO, ref="refs/heads/mergequeue/main/1", sha=main)
    staged = gh.merge_branches(full_name=REPO, base="mergequeue/main/1", head=one["head_sha"])
    assert staged is not None
    gh.update_ref(full_name=REPO, ref="heads/main", sha=staged)
    assert gh.pull_json(full_name=REPO, number=1)["merged"] is True
    assert gh.pull_json(full_name=REPO, number=1)["merge_commit_sha"] == staged
    assert gh.pull_json(full_name=REPO, number=2)["state"] == "open"


def test_merges_endpoint_semantics(gh: FakeGitHub) -> None:
    one = gh.add_pull(full_name=REPO, files={"f": "one\n"})
    two = gh.add_pull(full_name=REPO, files={"f": "two\n"})
    three = gh.add_pull(full_name=REPO)
    main = gh.repo(REPO).branches["main"]
    gh.create_ref(full_name=REPO, ref="refs/heads/staging", sha=main)
    first = gh.merge_branches(full_name=REPO, base="staging", head=one["head_sha"])
    assert first is not None
    assert gh.commit_json(full_name=REPO, sha=first)["parents"] == [main, one["head_sha"]]
    assert gh.merge_branches(full_name=REPO, base="staging", head=one["head_sha"]) is None
    assert refused(gh.merge_branches, full_name=REPO, base="staging", head=two["head_sha"]) == (
        409,
        "Merge conflict",
    )
    assert gh.repo(REPO).branches["staging"] == first  # unchanged by the conflict
    second = gh.merge_branches(
        full_name=REPO, base="staging", head="feature-3", commit_message="Stage #3"
    )
    assert second is not None
    landed = gh.commit_json(full_name=REPO, sha=second)
    assert landed["message"] == "Stage #3" and landed["parents"] == [first, three["head_sha"]]
    assert landed["tree"]["f"] == "one\n" and "changes/3.txt" in landed["tree"]
    assert refused(gh.merge_branches, full_name=REPO, base="nope", head="main") == (
        404,
        "Base does not exist",
    )
    assert refused(gh.merge_branches, full_name=REPO, base="staging", head="nope") == (
        404,
        "Head does not exist",
    )


def test_deleting_a_pulls_head_branch_keeps_the_pull(gh: FakeGitHub) -> None:
    pr = gh.add_pull(full_name=REPO)
    gh.delete_ref(full_name=REPO, ref="heads/feature-1")
    assert gh.merge_state(full_name=REPO, number=1)[:2] == (True, "clean")
    gh.merge_pull(full_name=REPO, number=1, sha=pr["head_sha"], method="squash")
    assert refused(gh.delete_ref, full_name=REPO, ref="heads/main")[0] == 422
