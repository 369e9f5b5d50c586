"""The fake's GitHub semantics called directly, as an in-memory fake calls them."""

from __future__ import annotations

import pytest

from tests.fakegithub import ApiError, FakeGitHub

REPO = "octo/hello"


@pytest.fixture
def gh() -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_repo(full_name=REPO)
    return fake


def test_ruleset_required_check_blocks_the_merge_until_it_passes(gh: FakeGitHub) -> None:
    pr = gh.add_pull(full_name=REPO)
    gh.add_ruleset(full_name=REPO, branches=["~DEFAULT_BRANCH"], required_checks=["ci"])
    assert gh.merge_state(full_name=REPO, number=1) == (
        True,
        "blocked",
        'Required status check "ci" is expected.',
    )
    gh.add_check_run(full_name=REPO, head_sha=pr["head_sha"], name="ci")
    assert gh.merge_state(full_name=REPO, number=1)[1] == "clean"


def test_required_check_names_unite_protection_and_active_matching_rulesets(
    gh: FakeGitHub,
) -> None:
    gh.protect(full_name=REPO, branch="release/1", contexts=["build"])
    gh.add_ruleset(full_name=REPO, branches=["release/*"], required_checks=["ci", "build"])
    gh.add_ruleset(full_name=REPO, branches=["main"], required_checks=["main-only"])
    gh.add_ruleset(
        full_name=REPO, branches=["~ALL"], required_checks=["dry-run"], enforcement="evaluate"
    )
    assert gh.required_check_names(full_name=REPO, branch="release/1") == {"build", "ci"}
    assert gh.required_check_names(full_name=REPO, branch="main") == {"main-only"}


def test_behind_by_counts_base_commits_since_the_pull_was_based(gh: FakeGitHub) -> None:
    pr = gh.add_pull(full_name=REPO)
    assert gh.behind_by(full_name=REPO, base="main", head_sha=pr["head_sha"]) == 0
    gh.push(full_name=REPO, branch="main")
    gh.push(full_name=REPO, branch="main")
    assert gh.behind_by(full_name=REPO, base="main", head_sha=pr["head_sha"]) == 2
    assert gh.compare(full_name=REPO, base="main", head=pr["head_sha"]) == ("diverged", 1, 2)


def test_update_branch_brings_the_pull_level_with_its_base(gh: FakeGitHub) -> None:
    gh.add_pull(full_name=REPO)
    gh.push(full_name=REPO, branch="main")
    gh.update_branch(full_name=REPO, number=1, expected_head_sha=None)
    head = gh.repo(REPO).pulls[1].head_sha
    assert gh.behind_by(full_name=REPO, base="main", head_sha=head) == 0
    with pytest.raises(ApiError) as refused:
        gh.update_branch(full_name=REPO, number=1, expected_head_sha=head)
    assert (refused.value.status, refused.value.message) == (
        422,
        "There are no new commits on the base branch.",
    )


def test_merge_pull_returns_the_merge_commit_the_base_now_points_at(gh: FakeGitHub) -> None:
    pr = gh.add_pull(full_name=REPO)
    sha = gh.merge_pull(full_name=REPO, number=1, sha=pr["head_sha"], method="squash")
    assert gh.repo(REPO).branches["main"] == sha
    with pytest.raises(ApiError) as refused:
        gh.merge_pull(full_name=REPO, number=1, sha=None, method="squash")
    assert refused.value.status == 405


def test_unknown_pull_is_404(gh: FakeGitHub) -> None:
    with pytest.raises(ApiError) as missing:
        gh.merge_state(full_name=REPO, number=9)
    assert (missing.value.status, missing.value.message) == (404, "Not Found")


def test_removing_an_absent_label_is_404_label_does_not_exist(gh: FakeGitHub) -> None:
    gh.add_pull(full_name=REPO, labels=["mergequeue"])
    gh.remove_label(full_name=REPO, number=1, label="mergequeue")
    with pytest.raises(ApiError) as absent:
        gh.remove_label(full_name=REPO, number=1, label="mergequeue")
    assert (absent.value.status, absent.value.message) == (404, "Label does not exist")


@pytest.mark.parametrize(
    ("role", "permission"),
    [
        ("admin", "admin"),
        ("maintain", "write"),
        ("write", "write"),
        ("triage", "read"),
        ("read", "read"),
        ("none", "none"),
    ],
)
def test_permission_follows_githubs_role_to_permission_mapping(
    gh: FakeGitHub, role: str, permission: str
) -> None:
    gh.set_permission(full_name=REPO, username="alice", role_name=role)
    assert gh.permission_of(full_name=REPO, username="alice") == (permission, role)


def test_known_non_collaborator_reads_public_but_not_private_repositories(
    gh: FakeGitHub,
) -> None:
    gh.add_repo(full_name="octo/private", private=True)
    gh.add_user(login="bob")
    assert gh.permission_of(full_name=REPO, username="bob") == ("read", "read")
    assert gh.permission_of(full_name="octo/private", username="bob") == ("none", "none")
    with pytest.raises(ApiError) as unknown:
        gh.permission_of(full_name=REPO, username="nobody-at-all")
    assert unknown.value.status == 404


def test_latest_checks_keep_the_newest_run_per_name_and_app_and_status_per_context(
    gh: FakeGitHub,
) -> None:
    sha = gh.add_pull(full_name=REPO)["head_sha"]
    gh.add_check_run(full_name=REPO, head_sha=sha, name="ci", conclusion="failure")
    newest = gh.add_check_run(full_name=REPO, head_sha=sha, name="ci")
    other_app = gh.add_check_run(full_name=REPO, head_sha=sha, name="ci", app_id=1)
    gh.add_status(full_name=REPO, sha=sha, context="legacy", state="pending")
    gh.add_status(full_name=REPO, sha=sha, context="legacy", state="success")
    runs, statuses = gh.latest_checks(full_name=REPO, sha=sha)
    assert [r.id for r in runs] == [other_app, newest]
    assert [(s.context, s.state) for s in statuses] == [("legacy", "success")]
