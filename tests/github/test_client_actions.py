"""The client's GitHub Actions calls (cancelling the runs of dropped staging builds) and the
permissions it learns from installation tokens, against the fake (whose answers the
conformance tests hold to GitHub's OpenAPI description)."""

from __future__ import annotations

import pytest

from mergequeue.github import Forbidden, GitHubClient, Installation, WorkflowRun
from tests.fakegithub import FakeGitHub
from tests.github.conftest import FULL_NAME, INSTALLATION_ID, OWNER, REPO

Q = {"owner": OWNER, "repo": REPO}
STAGING = "mergequeue/main/1"


def staged(fake: FakeGitHub, *, actions: str | None = "write") -> list[int]:
    """A staging branch whose CI (GitHub Actions) ran twice, the first run completed."""
    fake.set_installation_permissions(
        installation_id=INSTALLATION_ID, permissions={"actions": actions}
    )
    fake.set_ci(full_name=FULL_NAME)
    main = fake.repo(FULL_NAME).branches["main"]
    fake.create_ref(full_name=FULL_NAME, ref=f"refs/heads/{STAGING}", sha=main)
    fake.complete_ci(full_name=FULL_NAME)
    fake.push(full_name=FULL_NAME, branch=STAGING)
    return [int(r.workflow_run_id or 0) for r in fake.workflow_runs(full_name=FULL_NAME)]


async def test_listing_workflow_runs_gives_the_branchs_runs_not_yet_completed(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    newest, _ = staged(fake)
    fake.create_ref(
        full_name=FULL_NAME,
        ref="refs/heads/mergequeue/main/2",
        sha=fake.repo(FULL_NAME).branches["main"],
    )
    runs = await gh.list_workflow_runs(**Q, branch=STAGING)
    assert runs == [WorkflowRun(newest, "in_progress", None, STAGING, runs[0].head_sha)]
    [call] = fake.calls_to("/repos/{owner}/{repo}/actions/runs")
    # One page of up to 100, pull requests left out: the answer stays small.
    assert call.query == {"branch": STAGING, "per_page": "100", "exclude_pull_requests": "true"}


async def test_cancelling_a_run_is_202_and_one_already_finished_is_not_an_error(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    newest, oldest = staged(fake)
    assert await gh.cancel_workflow_run(**Q, run_id=newest) is True
    assert await gh.cancel_workflow_run(**Q, run_id=newest) is False
    assert await gh.cancel_workflow_run(**Q, run_id=oldest) is False
    assert [r["conclusion"] for r in fake.ci_runs_json()] == ["success", "cancelled"]


async def test_cancelling_without_actions_write_is_forbidden(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    newest, _ = staged(fake, actions="read")
    with pytest.raises(Forbidden) as refused:
        await gh.cancel_workflow_run(**Q, run_id=newest)
    assert refused.value.message == "Resource not accessible by integration"


async def test_the_installation_tokens_permissions_are_known_once_minted(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    assert gh.granted_permissions() is None
    fake.set_installation_permissions(
        installation_id=INSTALLATION_ID, permissions={"actions": "write"}
    )
    await gh.get_ref(**Q, ref="heads/main")
    granted = gh.granted_permissions()
    assert granted is not None and granted["actions"] == "write"


async def test_listed_installations_say_whether_they_granted_actions_write(
    app_client: GitHubClient, fake: FakeGitHub
) -> None:
    fake.add_installation(installation_id=77, account="other", repositories=[])
    fake.set_installation_permissions(installation_id=77, permissions={"actions": "write"})
    fake.set_installation_permissions(
        installation_id=INSTALLATION_ID, permissions={"actions": "read"}
    )
    listed = await app_client.list_app_installations()
    assert [(i.id, i.actions_write) for i in listed] == [(INSTALLATION_ID, False), (77, True)]
    assert Installation.from_json({"id": 1, "account": {"login": "x"}}).actions_write is False
