"""The REST adapter keeps each promise of the queue engine's `RepositoryGitHub`."""

from __future__ import annotations

import time

import httpx
import pytest

from mergequeue.github import GitHubClient, RateLimited, StaticTokenAuth, Unavailable
from mergequeue.github.queue_adapter import RestRepositoryGitHub
from mergequeue.queue.decide import Check
from mergequeue.queue.ports import Budget, PullInfo, Refused, RepositoryGitHub, Role
from tests.fakegithub import FakeGitHub
from tests.github.conftest import BASE_URL, FULL_NAME, INSTALLATION_ID, OWNER, REPO

UPDATE = "/repos/{owner}/{repo}/pulls/{pull_number}/update-branch"


@pytest.fixture
def adapter(gh: GitHubClient) -> RestRepositoryGitHub:
    return RestRepositoryGitHub(gh, owner=OWNER, repo=REPO)


def test_the_adapter_is_a_repository_github(adapter: RestRepositoryGitHub) -> None:
    port: RepositoryGitHub = adapter  # mypy checks the Protocol here
    assert port is adapter


async def test_pull_gives_the_fields_the_queue_reads(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    pr = fake.add_pull(full_name=FULL_NAME, labels=["mergequeue"], user="alice", draft=True)
    assert await adapter.pull(1) == PullInfo(
        number=1,
        state="open",
        merged=False,
        draft=True,
        head_sha=pr["head_sha"],
        base_ref="main",
        author="alice",
        mergeable=True,
        mergeable_state="draft",
        labels=("mergequeue",),
    )


async def test_an_unknown_pull_is_none(adapter: RestRepositoryGitHub) -> None:
    assert await adapter.pull(404) is None


async def test_checks_are_the_latest_runs_and_statuses_mapped_to_checks(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    sha = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    fake.add_check_run(full_name=FULL_NAME, head_sha=sha, name="build", conclusion="failure")
    fake.add_check_run(full_name=FULL_NAME, head_sha=sha, name="build")
    fake.add_check_run(full_name=FULL_NAME, head_sha=sha, name="lint", status="in_progress")
    for context, state in [("ok", "success"), ("bad", "failure"), ("broken", "error")]:
        fake.add_status(full_name=FULL_NAME, sha=sha, context=context, state=state)
    fake.add_status(full_name=FULL_NAME, sha=sha, context="slow", state="pending")
    assert sorted(await adapter.checks(sha), key=lambda c: c.name) == [
        Check("bad", "completed", "failure"),
        Check("broken", "completed", "failure"),
        Check("build", "completed", "success"),
        Check("lint", "in_progress", None),
        Check("ok", "completed", "success"),
        Check("slow", "in_progress", None),
    ]


async def test_checks_come_from_every_page(adapter: RestRepositoryGitHub, fake: FakeGitHub) -> None:
    sha = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    for i in range(120):
        fake.add_check_run(full_name=FULL_NAME, head_sha=sha, name=f"run-{i}")
        fake.add_status(full_name=FULL_NAME, sha=sha, context=f"status-{i}", state="success")
    assert len(await adapter.checks(sha)) == 240


async def test_required_checks_unite_protection_and_rulesets_sorted(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    fake.protect(full_name=FULL_NAME, branch="main", contexts=["zeta"], checks=[("build", 1)])
    fake.add_ruleset(full_name=FULL_NAME, branches=["main"], required_checks=["alpha", "build"])
    assert await adapter.required_checks("main") == ("alpha", "build", "zeta")


async def test_required_checks_of_a_ruleset_only_branch(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    fake.add_ruleset(full_name=FULL_NAME, branches=["~DEFAULT_BRANCH"], required_checks=["ci"])
    assert await adapter.required_checks("main") == ("ci",)


async def test_no_required_checks_is_empty(adapter: RestRepositoryGitHub) -> None:
    assert await adapter.required_checks("main") == ()


async def test_behind_by_counts_the_base_commits_the_head_lacks(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    head = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    fake.push(full_name=FULL_NAME, branch="main")
    fake.push(full_name=FULL_NAME, branch="main")
    assert await adapter.behind_by("main", head) == 2


async def test_update_branch_merges_the_base_into_the_head(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    head = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    fake.push(full_name=FULL_NAME, branch="main")
    await adapter.update_branch(1, head)
    new_head = fake.repo(FULL_NAME).pulls[1].head_sha
    assert new_head != head and await adapter.behind_by("main", new_head) == 0


async def test_update_branch_of_a_moved_head_is_refused_422(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    fake.push(full_name=FULL_NAME, branch="main")
    with pytest.raises(Refused) as refused:
        await adapter.update_branch(1, "0" * 40)
    assert refused.value.status == 422


async def test_update_branch_the_app_may_not_push_is_refused_403(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    head = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    fake.set_pull(full_name=FULL_NAME, number=1, from_fork=True)
    fake.push(full_name=FULL_NAME, branch="main")
    with pytest.raises(Refused) as refused:
        await adapter.update_branch(1, head)
    assert refused.value.status == 403
    assert "permission" in refused.value.message


async def test_a_secondary_rate_limit_on_update_branch_is_not_a_refusal(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    head = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    fake.push(full_name=FULL_NAME, branch="main")
    fake.rate_limit_secondary(retry_after=30, status=403, route=UPDATE)
    with pytest.raises(RateLimited):
        await adapter.update_branch(1, head)


async def test_merge_returns_the_merge_commit_sha(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    head = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    sha = await adapter.merge(1, head, "squash")
    assert sha == fake.repo(FULL_NAME).branches["main"]


async def test_merge_github_will_not_do_is_refused_405(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    head = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    fake.protect(full_name=FULL_NAME, branch="main", contexts=["ci"])
    with pytest.raises(Refused) as refused:
        await adapter.merge(1, head, "merge")
    assert (refused.value.status, refused.value.message) == (
        405,
        'Required status check "ci" is expected.',
    )


async def test_merge_of_a_moved_head_is_refused_409(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    with pytest.raises(Refused) as refused:
        await adapter.merge(1, "0" * 40, "merge")
    assert refused.value.status == 409


async def test_a_primary_rate_limit_propagates(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    head = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    fake.rate_limit_primary(until=int(time.time()) + 600, installation_id=INSTALLATION_ID)
    with pytest.raises(RateLimited):
        await adapter.merge(1, head, "merge")


async def test_an_outage_propagates_as_unavailable(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    fake.fail(status=502, times=None)
    with pytest.raises(Unavailable):
        await adapter.pull(1)


async def test_comment_posts_on_the_pull_request(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    await adapter.comment(1, "Merged.")
    assert [(c.number, c.body) for c in fake.comments] == [(1, "Merged.")]


async def test_removing_an_absent_label_is_not_an_error(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    fake.add_pull(full_name=FULL_NAME, labels=["mergequeue"])
    await adapter.remove_label(1, "mergequeue")
    await adapter.remove_label(1, "mergequeue")
    assert fake.repo(FULL_NAME).pulls[1].labels == []


@pytest.mark.parametrize("role", list(Role))
async def test_role_is_the_collaborators_role(
    adapter: RestRepositoryGitHub, fake: FakeGitHub, role: Role
) -> None:
    fake.set_permission(full_name=FULL_NAME, username="alice", role_name=role.value)
    assert await adapter.role("alice") is role


async def test_an_unknown_user_has_no_role(adapter: RestRepositoryGitHub) -> None:
    assert await adapter.role("no-such-user") is Role.NONE


async def test_a_custom_role_counts_as_its_base_permission() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"permission": "write", "role_name": "release-manager", "user": None}
        )

    async with GitHubClient(
        auth=StaticTokenAuth("t"), base_url=BASE_URL, transport=httpx.MockTransport(answer)
    ) as client:
        adapter = RestRepositoryGitHub(client, owner=OWNER, repo=REPO)
        assert await adapter.role("carol") is Role.WRITE


async def test_labelled_open_pulls_are_the_open_ones_with_the_label(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    fake.add_pull(full_name=FULL_NAME, labels=["mergequeue"])
    fake.add_pull(full_name=FULL_NAME, labels=["other"])
    fake.add_pull(full_name=FULL_NAME, labels=["mergequeue", "bug"])
    fake.add_pull(full_name=FULL_NAME, labels=["mergequeue"])
    fake.set_pull(full_name=FULL_NAME, number=4, state="closed")
    assert sorted(await adapter.labelled_open_pulls("mergequeue")) == [1, 3]


async def test_recent_comments_are_command_comments_newest_first(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    fake.add_comment(full_name=FULL_NAME, number=1, body="hello", user="bob")
    ident = fake.add_comment(
        full_name=FULL_NAME,
        number=1,
        body="/mergequeue merge",
        user="alice",
        author_association="MEMBER",
    )
    [newest] = await adapter.recent_comments(1)
    assert (newest.id, newest.number, newest.author, newest.author_association) == (
        ident,
        1,
        "alice",
        "MEMBER",
    )
    assert newest.body == "/mergequeue merge" and newest.created_at > 0


async def test_budget_is_the_installations_last_rate_limit_headers(
    adapter: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    assert adapter.budget() is None
    await adapter.pull(1)
    window = fake.windows[str(INSTALLATION_ID)]
    assert adapter.budget() == Budget(
        remaining=window.limit - window.used, limit=window.limit, reset_at=float(window.reset)
    )
