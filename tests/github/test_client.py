"""Every GitHubClient method round-trips against the fake, and sends what GitHub expects."""

from __future__ import annotations

import httpx
import pytest

from mergequeue.github import (
    Conflict,
    GitHubClient,
    GitHubError,
    NotFound,
    NotMergeable,
    RequiredCheck,
    StaticTokenAuth,
    Unprocessable,
)
from tests.fakegithub import FakeGitHub
from tests.github import openapi
from tests.github.conftest import (
    BASE_URL,
    FULL_NAME,
    OTHER_REPO,
    OWNER,
    REPO,
    STATIC_TOKEN,
    KeyPair,
    Observed,
    make_client,
)

Q = {"owner": OWNER, "repo": REPO}


async def test_get_pull_request(gh: GitHubClient, fake: FakeGitHub) -> None:
    pr = fake.add_pull(full_name=FULL_NAME, labels=["mergequeue", "bug"], title="Fix it")
    got = await gh.get_pull_request(**Q, number=1)
    assert got.number == 1
    assert got.head_sha == pr["head_sha"]
    assert got.head_ref == pr["head_ref"]
    assert got.base_ref == "main"
    assert got.base_sha == fake.repo(FULL_NAME).branches["main"]
    assert got.labels == ("mergequeue", "bug")
    assert got.title == "Fix it"
    assert got.author == "octocat"
    assert (got.mergeable, got.mergeable_state) == (True, "clean")
    assert got.is_open and not got.merged and not got.from_fork


async def test_pull_request_states(gh: GitHubClient, fake: FakeGitHub) -> None:
    fake.add_pull(full_name=FULL_NAME)
    fake.protect(full_name=FULL_NAME, branch="main", contexts=["ci"])
    assert (await gh.get_pull_request(**Q, number=1)).mergeable_state == "blocked"
    fake.set_pull(full_name=FULL_NAME, number=1, conflict=True)
    got = await gh.get_pull_request(**Q, number=1)
    assert (got.mergeable, got.mergeable_state) == (False, "dirty")
    fake.set_pull(full_name=FULL_NAME, number=1, mergeable=None)
    got = await gh.get_pull_request(**Q, number=1)
    assert (got.mergeable, got.mergeable_state) == (None, "unknown")


async def test_unknown_and_invisible_pull_requests_are_not_found(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    fake.add_pull(full_name=OTHER_REPO)
    with pytest.raises(NotFound):
        await gh.get_pull_request(**Q, number=99)
    with pytest.raises(NotFound):
        await gh.get_pull_request(owner="octo", repo="secret", number=1)


async def test_list_check_runs_follows_pages(gh: GitHubClient, fake: FakeGitHub) -> None:
    pr = fake.add_pull(full_name=FULL_NAME)
    for i in range(130):
        fake.add_check_run(full_name=FULL_NAME, head_sha=pr["head_sha"], name=f"job-{i}")
    fake.add_check_run(
        full_name=FULL_NAME,
        head_sha=pr["head_sha"],
        name="job-0",
        status="completed",
        conclusion="failure",
        app_id=77,
        app_slug="other-ci",
    )
    fake.add_check_run(full_name=FULL_NAME, head_sha=pr["head_sha"], name="slow", status="queued")
    fake.clear_calls()
    runs = await gh.list_check_runs(**Q, ref=pr["head_sha"])
    assert len(runs) == 132
    assert len(fake.calls_to("/repos/{owner}/{repo}/commits/{ref}/check-runs")) == 2
    by_app = {(r.name, r.app_slug): r for r in runs}
    assert by_app[("job-0", "other-ci")].conclusion == "failure"
    assert by_app[("job-0", "other-ci")].app_id == 77
    assert by_app[("slow", "github-actions")].status == "queued"
    assert by_app[("slow", "github-actions")].conclusion is None


async def test_latest_check_run_per_name(gh: GitHubClient, fake: FakeGitHub) -> None:
    pr = fake.add_pull(full_name=FULL_NAME)
    fake.add_check_run(
        full_name=FULL_NAME, head_sha=pr["head_sha"], name="ci", conclusion="failure"
    )
    fake.add_check_run(full_name=FULL_NAME, head_sha=pr["head_sha"], name="ci")
    runs = await gh.list_check_runs(**Q, ref=pr["head_sha"])
    assert [(r.name, r.conclusion) for r in runs] == [("ci", "success")]


async def test_combined_status(gh: GitHubClient, fake: FakeGitHub) -> None:
    pr = fake.add_pull(full_name=FULL_NAME)
    sha = pr["head_sha"]
    assert (await gh.get_combined_status(**Q, ref=sha)).state == "pending"
    fake.add_status(full_name=FULL_NAME, sha=sha, context="ci/a", state="pending")
    fake.add_status(full_name=FULL_NAME, sha=sha, context="ci/a", state="success")
    fake.add_status(
        full_name=FULL_NAME, sha=sha, context="ci/b", state="success", target_url="https://x/1"
    )
    status = await gh.get_combined_status(**Q, ref=sha)
    assert status.sha == sha
    assert status.state == "success"
    assert {(s.context, s.state) for s in status.statuses} == {
        ("ci/a", "success"),
        ("ci/b", "success"),
    }
    fake.add_status(full_name=FULL_NAME, sha=sha, context="ci/c", state="error")
    assert (await gh.get_combined_status(**Q, ref=sha)).state == "failure"


async def test_update_branch(gh: GitHubClient, fake: FakeGitHub) -> None:
    pr = fake.add_pull(full_name=FULL_NAME)
    with pytest.raises(Unprocessable):
        await gh.update_branch(**Q, number=1, expected_head_sha=pr["head_sha"])
    fake.push(full_name=FULL_NAME, branch="main")
    with pytest.raises(Unprocessable):
        await gh.update_branch(**Q, number=1, expected_head_sha="0" * 40)
    await gh.update_branch(**Q, number=1, expected_head_sha=pr["head_sha"])
    updated = await gh.get_pull_request(**Q, number=1)
    assert updated.head_sha != pr["head_sha"]
    assert updated.mergeable_state == "clean"


async def test_merge(gh: GitHubClient, fake: FakeGitHub) -> None:
    pr = fake.add_pull(full_name=FULL_NAME)
    with pytest.raises(Conflict):
        await gh.merge(**Q, number=1, method="squash", sha="0" * 40)
    result = await gh.merge(
        **Q, number=1, method="squash", sha=pr["head_sha"], commit_title="A change (#1)"
    )
    assert result.merged
    assert fake.repo(FULL_NAME).branches["main"] == result.sha
    merged = await gh.get_pull_request(**Q, number=1)
    assert merged.merged and not merged.is_open and merged.merge_commit_sha == result.sha
    body = fake.calls_to(method="PUT")[-1].body
    assert body == {
        "merge_method": "squash",
        "sha": pr["head_sha"],
        "commit_title": "A change (#1)",
    }


async def test_merge_refused(gh: GitHubClient, fake: FakeGitHub) -> None:
    fake.add_pull(full_name=FULL_NAME)
    fake.protect(full_name=FULL_NAME, branch="main", contexts=["ci"])
    with pytest.raises(NotMergeable) as refused:
        await gh.merge(**Q, number=1, method="merge", sha=None)
    assert refused.value.status == 405
    assert "ci" in refused.value.message


async def test_behind_pull_request_merges_after_update(gh: GitHubClient, fake: FakeGitHub) -> None:
    """The merge queue's loop in miniature: behind -> update -> checks -> merge."""
    fake.protect(full_name=FULL_NAME, branch="main", contexts=["ci"], strict=True)
    fake.add_pull(full_name=FULL_NAME)
    fake.push(full_name=FULL_NAME, branch="main")
    pr = await gh.get_pull_request(**Q, number=1)
    assert pr.mergeable_state == "behind"
    await gh.update_branch(**Q, number=1, expected_head_sha=pr.head_sha)
    pr = await gh.get_pull_request(**Q, number=1)
    assert pr.mergeable_state == "blocked"
    fake.add_check_run(full_name=FULL_NAME, head_sha=pr.head_sha, name="ci")
    pr = await gh.get_pull_request(**Q, number=1)
    assert pr.mergeable_state == "clean"
    assert (await gh.merge(**Q, number=1, method="rebase", sha=pr.head_sha)).merged


async def test_create_comment(gh: GitHubClient, fake: FakeGitHub) -> None:
    fake.add_pull(full_name=FULL_NAME)
    comment = await gh.create_comment(**Q, number=1, body="Merged by the queue.")
    assert comment.id > 0
    assert comment.html_url.endswith(f"#issuecomment-{comment.id}")
    assert [(c.number, c.body) for c in fake.comments] == [(1, "Merged by the queue.")]


async def test_labels(gh: GitHubClient, fake: FakeGitHub) -> None:
    fake.add_pull(full_name=FULL_NAME, labels=["bug"])
    assert await gh.add_labels(**Q, number=1, labels=["mergequeue"]) == ("bug", "mergequeue")
    assert await gh.add_labels(**Q, number=1, labels=["mergequeue"]) == ("bug", "mergequeue")
    assert await gh.remove_label(**Q, number=1, label="mergequeue") is True
    assert await gh.remove_label(**Q, number=1, label="mergequeue") is False
    assert fake.repo(FULL_NAME).pulls[1].labels == ["bug"]


async def test_label_names_are_escaped(gh: GitHubClient, fake: FakeGitHub) -> None:
    fake.add_pull(full_name=FULL_NAME, labels=["merge/queue ready"])
    assert await gh.remove_label(**Q, number=1, label="merge/queue ready") is True
    assert fake.calls[-1].route == "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}"


async def test_remove_label_from_unknown_pull_request_raises(gh: GitHubClient) -> None:
    with pytest.raises(NotFound):
        await gh.remove_label(**Q, number=5, label="x")


async def test_required_status_checks(gh: GitHubClient, fake: FakeGitHub) -> None:
    assert await gh.get_required_status_checks(**Q, branch="main") is None
    fake.protect(
        full_name=FULL_NAME,
        branch="main",
        contexts=["ci/legacy"],
        checks=[("build", 15368)],
        strict=True,
    )
    required = await gh.get_required_status_checks(**Q, branch="main")
    assert required is not None
    assert required.strict
    assert required.names == {"ci/legacy", "build"}
    assert RequiredCheck("build", 15368) in required.checks
    with pytest.raises(NotFound):
        await gh.get_required_status_checks(**Q, branch="no-such-branch")


async def test_get_branch(gh: GitHubClient, fake: FakeGitHub) -> None:
    branch = await gh.get_branch(**Q, branch="main")
    assert (branch.name, branch.sha, branch.protected) == (
        "main",
        fake.repo(FULL_NAME).branches["main"],
        False,
    )
    fake.add_branch(full_name=FULL_NAME, branch="release/1.x")
    fake.protect(full_name=FULL_NAME, branch="release/1.x", contexts=["ci"])
    branch = await gh.get_branch(**Q, branch="release/1.x")
    assert branch.name == "release/1.x" and branch.protected
    assert (await gh.get_required_status_checks(**Q, branch="release/1.x")) is not None


async def test_list_installation_repositories(gh: GitHubClient, fake: FakeGitHub) -> None:
    names = [f"octo/repo-{i:03}" for i in range(120)]
    fake.add_installation(installation_id=5, account=OWNER, repositories=[FULL_NAME, *names])
    repos = await gh.list_installation_repositories()
    assert [r.full_name for r in repos] == [FULL_NAME, *names]
    first = repos[0]
    assert (first.owner, first.name, first.default_branch) == (OWNER, REPO, "main")
    assert not first.private and not first.archived


async def test_static_token_mode(fake: FakeGitHub, app_keys: KeyPair, observed: Observed) -> None:
    fake.add_pull(full_name=FULL_NAME)
    async with make_client(fake, app_keys, observed, auth=StaticTokenAuth(STATIC_TOKEN)) as gh:
        assert (await gh.get_pull_request(**Q, number=1)).number == 1
        # A personal token is not an installation: GitHub's plain 403, not a rate limit.
        with pytest.raises(GitHubError) as denied:
            await gh.list_installation_repositories()
    assert denied.value.status == 403
    assert fake.minted == 0
    assert {c.authorization for c in fake.calls} == {f"Bearer {STATIC_TOKEN}"}
    assert observed.limits[0][0] == "token"


async def test_requests_carry_githubs_headers(gh: GitHubClient, fake: FakeGitHub) -> None:
    captured: list[httpx.Request] = []

    async def capture(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(404, json={"message": "Not Found"})

    client = GitHubClient(
        auth=StaticTokenAuth("t"), base_url=BASE_URL, transport=httpx.MockTransport(capture)
    )
    async with client:
        with pytest.raises(NotFound):
            await client.get_branch(**Q, branch="main")
    headers = captured[0].headers
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["user-agent"] == "mergequeue"
    assert headers["authorization"] == "Bearer t"


async def test_request_bodies_match_githubs_openapi(gh: GitHubClient, fake: FakeGitHub) -> None:
    pr = fake.add_pull(full_name=FULL_NAME, labels=["mergequeue"])
    fake.push(full_name=FULL_NAME, branch="main")
    await gh.update_branch(**Q, number=1, expected_head_sha=pr["head_sha"])
    fake.push(full_name=FULL_NAME, branch="main")
    await gh.update_branch(**Q, number=1, expected_head_sha=None)
    await gh.add_labels(**Q, number=1, labels=["queued"])
    await gh.remove_label(**Q, number=1, label="queued")
    await gh.create_comment(**Q, number=1, body="hi")
    head = (await gh.get_pull_request(**Q, number=1)).head_sha
    await gh.merge(**Q, number=1, method="merge", sha=head, commit_message="body")
    assert fake.calls
    for call in fake.calls:
        assert openapi.request_errors(call.method, call.route, call.body) == [], call


async def test_token_login_names_whom_a_single_token_authenticates() -> None:
    def github(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer good":
            return httpx.Response(200, json={"login": "mergebot", "id": 1})
        return httpx.Response(401, json={"message": "Bad credentials"})

    for token, expected in (("good", "mergebot"), ("bad", None)):
        client = GitHubClient(
            auth=StaticTokenAuth(token), transport=httpx.MockTransport(github), max_attempts=1
        )
        try:
            if expected is None:
                with pytest.raises(GitHubError, match="Bad credentials"):
                    await client.token_login()
            else:
                assert await client.token_login() == expected
        finally:
            await client.aclose()
