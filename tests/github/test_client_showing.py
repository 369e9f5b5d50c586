"""The client's calls that show the queue on pull requests: check runs (an App's only),
commit statuses, comment edits and reactions, against the fake (whose answers the
conformance tests hold to GitHub's OpenAPI description)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mergequeue.github import (
    Forbidden,
    GitHubClient,
    NotFound,
    StaticTokenAuth,
    Unavailable,
    Unprocessable,
    endpoint_template,
)
from tests.fakegithub import FakeGitHub
from tests.github import openapi
from tests.github.conftest import (
    APP_ID,
    FULL_NAME,
    OWNER,
    REPO,
    STATIC_TOKEN,
    KeyPair,
    Observed,
    make_client,
)

Q = {"owner": OWNER, "repo": REPO}
NEW_CHECK_RUN = "/repos/{owner}/{repo}/check-runs"
CHECK_RUN = "/repos/{owner}/{repo}/check-runs/{check_run_id}"
STATUSES = "/repos/{owner}/{repo}/statuses/{sha}"
COMMENT = "/repos/{owner}/{repo}/issues/comments/{comment_id}"
REACTIONS = "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"


@pytest.fixture
async def token_client(
    fake: FakeGitHub, app_keys: KeyPair, observed: Observed
) -> AsyncIterator[GitHubClient]:
    client = make_client(fake, app_keys, observed, auth=StaticTokenAuth(STATIC_TOKEN))
    yield client
    await client.aclose()


async def test_the_app_creates_and_completes_a_check_run(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    sha = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    run = await gh.create_check_run(
        **Q,
        name="mergequeue",
        head_sha=sha,
        status="in_progress",
        title="Queued: 1st of 2",
        summary="**Next** to land.",
        details_url="https://mq.example.com/octo/hello",
    )
    assert (run.name, run.head_sha, run.status, run.conclusion) == (
        "mergequeue",
        sha,
        "in_progress",
        None,
    )
    assert (run.app_id, run.app_slug) == (APP_ID, "mergequeue")
    assert (run.title, run.summary) == ("Queued: 1st of 2", "**Next** to land.")
    assert run.details_url == "https://mq.example.com/octo/hello"

    done = await gh.update_check_run(
        **Q,
        check_run_id=run.id,
        status="completed",
        conclusion="success",
        title="Merged",
        summary="Landed as abc.",
    )
    assert (done.id, done.status, done.conclusion, done.title) == (
        run.id,
        "completed",
        "success",
        "Merged",
    )
    # The queue's own reader sees it like any other check run.
    [listed] = await gh.list_check_runs(**Q, ref=sha)
    assert (listed.id, listed.conclusion, listed.details_url) == (
        run.id,
        "success",
        "https://mq.example.com/octo/hello",
    )
    [stored] = fake.check_runs_json(full_name=FULL_NAME, sha=sha)
    assert (stored["title"], stored["summary"]) == ("Merged", "Landed as abc.")


async def test_an_update_without_output_keeps_it(gh: GitHubClient, fake: FakeGitHub) -> None:
    sha = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    run = await gh.create_check_run(**Q, name="mergequeue", head_sha=sha, title="T", summary="S")
    updated = await gh.update_check_run(**Q, check_run_id=run.id, conclusion="neutral")
    assert (updated.status, updated.conclusion, updated.title, updated.summary) == (
        "completed",
        "neutral",
        "T",
        "S",
    )


async def test_a_token_cannot_create_check_runs(
    token_client: GitHubClient, fake: FakeGitHub
) -> None:
    sha = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    with pytest.raises(Forbidden) as refused:
        await token_client.create_check_run(**Q, name="mergequeue", head_sha=sha)
    assert refused.value.message == "You must authenticate via a GitHub App."


async def test_check_run_refusals(gh: GitHubClient, fake: FakeGitHub) -> None:
    sha = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    with pytest.raises(NotFound):
        await gh.update_check_run(**Q, check_run_id=987654, status="in_progress")
    with pytest.raises(Unprocessable):
        await gh.create_check_run(**Q, name="mergequeue", head_sha="0" * 40)
    with pytest.raises(Unprocessable):
        await gh.create_check_run(**Q, name="mergequeue", head_sha=sha, status="completed")
    with pytest.raises(ValueError, match="title and a summary"):
        await gh.create_check_run(**Q, name="mergequeue", head_sha=sha, title="only a title")


async def test_a_token_sets_commit_statuses(token_client: GitHubClient, fake: FakeGitHub) -> None:
    sha = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    status = await token_client.create_status(
        **Q,
        sha=sha,
        state="pending",
        context="mergequeue",
        description="Queued: 1st of 2",
        target_url="https://mq.example.com/octo/hello",
    )
    assert (status.context, status.state, status.description, status.target_url) == (
        "mergequeue",
        "pending",
        "Queued: 1st of 2",
        "https://mq.example.com/octo/hello",
    )
    await token_client.create_status(**Q, sha=sha, state="success", context="mergequeue")
    combined = await token_client.get_combined_status(**Q, ref=sha)
    assert [(s.context, s.state) for s in combined.statuses] == [("mergequeue", "success")]
    with pytest.raises(Unprocessable):
        await token_client.create_status(
            **Q, sha=sha, state="success", context="mergequeue", description="x" * 141
        )


async def test_a_comment_is_edited_until_deleted(gh: GitHubClient, fake: FakeGitHub) -> None:
    fake.add_pull(full_name=FULL_NAME)
    created = await gh.create_comment(**Q, number=1, body="Queued.")
    edited = await gh.update_comment(**Q, comment_id=created.id, body="Merged.")
    assert edited.id == created.id
    [comment] = fake.comments_json()
    assert comment["body"] == "Merged." and comment["updated_at"] is not None
    fake.delete_comment(full_name=FULL_NAME, comment_id=created.id)
    with pytest.raises(NotFound):
        await gh.update_comment(**Q, comment_id=created.id, body="again")


async def test_a_reaction_is_added_once(gh: GitHubClient, fake: FakeGitHub) -> None:
    fake.add_pull(full_name=FULL_NAME)
    ident = fake.add_comment(full_name=FULL_NAME, number=1, body="/merge", user="alice")
    first = await gh.add_reaction(**Q, comment_id=ident, content="eyes")
    again = await gh.add_reaction(**Q, comment_id=ident, content="eyes")
    assert first == again and (first.content, first.user) == ("eyes", "mergequeue[bot]")
    assert [c.status for c in fake.calls_to(REACTIONS)] == [201, 200]
    with pytest.raises(NotFound):
        await gh.add_reaction(**Q, comment_id=999, content="+1")


async def test_creating_a_check_run_is_not_repeated_after_a_server_error(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    """A 5xx after POST may still have created it: a retry could make a second run."""
    sha = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    fake.fail(status=502, times=1, route=NEW_CHECK_RUN)
    with pytest.raises(Unavailable):
        await gh.create_check_run(**Q, name="mergequeue", head_sha=sha)
    assert len(fake.calls_to(NEW_CHECK_RUN)) == 1


async def test_updates_statuses_and_reactions_are_retried(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    sha = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    run = await gh.create_check_run(**Q, name="mergequeue", head_sha=sha)
    comment = await gh.create_comment(**Q, number=1, body="Queued.")
    for route in (CHECK_RUN, STATUSES, COMMENT, REACTIONS):
        fake.fail(status=502, times=1, route=route)
    await gh.update_check_run(**Q, check_run_id=run.id, status="in_progress")
    await gh.create_status(**Q, sha=sha, state="pending", context="mergequeue")
    await gh.update_comment(**Q, comment_id=comment.id, body="Testing.")
    await gh.add_reaction(**Q, comment_id=comment.id, content="rocket")
    for route, ok in ((CHECK_RUN, 200), (STATUSES, 201), (COMMENT, 200), (REACTIONS, 201)):
        assert [c.status for c in fake.calls_to(route)] == [502, ok], route


async def test_request_bodies_match_githubs_openapi(gh: GitHubClient, fake: FakeGitHub) -> None:
    sha = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    run = await gh.create_check_run(
        **Q, name="mergequeue", head_sha=sha, title="T", summary="S", details_url="https://x.y"
    )
    await gh.update_check_run(**Q, check_run_id=run.id, status="in_progress")
    await gh.update_check_run(
        **Q, check_run_id=run.id, status="completed", conclusion="failure", title="F", summary="S"
    )
    await gh.update_check_run(**Q, check_run_id=run.id, title="T2", summary="S2")
    await gh.create_status(
        **Q, sha=sha, state="error", context="mergequeue", description="d", target_url="https://x"
    )
    comment = await gh.create_comment(**Q, number=1, body="Queued.")
    await gh.update_comment(**Q, comment_id=comment.id, body="Merged.")
    await gh.add_reaction(**Q, comment_id=comment.id, content="+1")
    assert len(fake.calls) >= 8
    for call in fake.calls:
        if call.route.startswith("/app/"):
            continue  # minting the installation token
        assert openapi.request_errors(call.method, call.route, call.body) == [], call


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/repos/o/r/check-runs", NEW_CHECK_RUN),
        ("/repos/o/r/check-runs/12", CHECK_RUN),
        ("/repos/o/r/statuses/abc123", STATUSES),
        ("/repos/o/r/issues/comments/7", COMMENT),
        ("/repos/o/r/issues/comments/7/reactions", REACTIONS),
    ],
)
def test_the_new_calls_have_metric_route_templates(path: str, template: str) -> None:
    assert endpoint_template(path) == template
