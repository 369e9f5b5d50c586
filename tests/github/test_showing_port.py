"""`ShowingGitHub`, what the queue writes to show itself on pull requests, kept alike by the
REST adapter and the in-memory one.

Every App-mode test runs twice over the same fake: through `RestRepositoryGitHub` (HTTP,
the client, GitHub's shapes) and through `MemoryGitHub` (the fake's methods directly).
Token mode (a commit status instead of a check run) exists only over REST: a token
cannot create check runs, and `MemoryGitHub` is the App.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mergequeue.github import GitHubClient, StaticTokenAuth, Unavailable
from mergequeue.github.queue_adapter import (
    STATUS_DESCRIPTION_LIMIT,
    RestRepositoryGitHub,
    status_state,
)
from mergequeue.queue.decide import Check
from mergequeue.queue.ports import Publication, Refused, ShowingGitHub
from tests.fakegithub import FakeGitHub
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
from tests.queue.memory import MemoryGitHub

URL = "https://mergequeue.example.com/octo/hello/pull/1"
QUEUED = Publication(
    status="queued", conclusion=None, title="Queued: 2nd of 3", summary="**Ahead**: #4"
)
TESTING = Publication(
    status="in_progress",
    conclusion=None,
    title="Testing with #4",
    summary="Batch of 2",
    details_url=URL,
)
MERGED = Publication(
    status="completed", conclusion="success", title="Merged", summary="Landed as abc1234."
)


def test_both_implementations_are_showing_githubs(gh: GitHubClient, fake: FakeGitHub) -> None:
    # mypy checks the Protocol here (run `mypy tests/github/test_showing_port.py`).
    rest: ShowingGitHub = RestRepositoryGitHub(gh, owner=OWNER, repo=REPO)
    memory: ShowingGitHub = MemoryGitHub(fake, FULL_NAME)
    for port in (rest, memory):
        for name in ("publish", "upsert_comment", "react"):
            assert callable(getattr(port, name)), name


@pytest.fixture(params=["rest", "memory"])
def port(request: pytest.FixtureRequest, gh: GitHubClient, fake: FakeGitHub) -> ShowingGitHub:
    if request.param == "rest":
        return RestRepositoryGitHub(gh, owner=OWNER, repo=REPO)
    return MemoryGitHub(fake, FULL_NAME)


@pytest.fixture
async def token_port(
    fake: FakeGitHub, app_keys: KeyPair, observed: Observed
) -> AsyncIterator[RestRepositoryGitHub]:
    client = make_client(fake, app_keys, observed, auth=StaticTokenAuth(STATIC_TOKEN))
    yield RestRepositoryGitHub(client, owner=OWNER, repo=REPO)
    await client.aclose()


def head(fake: FakeGitHub) -> str:
    return str(fake.add_pull(full_name=FULL_NAME)["head_sha"])


# -- App mode: the `mergequeue` check run ---------------------------------------------------


async def test_publishing_creates_the_apps_check_run(port: ShowingGitHub, fake: FakeGitHub) -> None:
    sha = head(fake)
    ident = await port.publish(sha, TESTING, None)
    assert ident is not None
    [run] = fake.check_runs_json(full_name=FULL_NAME, sha=sha)
    assert run["id"] == ident
    assert (run["name"], run["status"], run["conclusion"]) == ("mergequeue", "in_progress", None)
    assert (run["title"], run["summary"], run["details_url"]) == (
        "Testing with #4",
        "Batch of 2",
        URL,
    )
    assert (run["app_id"], run["app_slug"]) == (APP_ID, "mergequeue")
    # The queue's own reader sees it among the head's checks.
    assert Check("mergequeue", "in_progress", None) in await port.checks(sha)


async def test_publishing_again_updates_the_same_run(port: ShowingGitHub, fake: FakeGitHub) -> None:
    sha = head(fake)
    ident = await port.publish(sha, QUEUED, None)
    assert await port.publish(sha, TESTING, ident) == ident
    assert await port.publish(sha, MERGED, ident) == ident
    [run] = fake.check_runs_json(full_name=FULL_NAME, sha=sha)
    assert (run["status"], run["conclusion"], run["title"]) == ("completed", "success", "Merged")
    assert run["summary"] == "Landed as abc1234."
    assert Check("mergequeue", "completed", "success") in await port.checks(sha)


async def test_a_run_github_no_longer_knows_is_published_anew(
    port: ShowingGitHub, fake: FakeGitHub
) -> None:
    sha = head(fake)
    ident = await port.publish(sha, QUEUED, None)
    assert ident is not None
    fake.forget_check_run(full_name=FULL_NAME, check_run_id=ident)
    again = await port.publish(sha, TESTING, ident)
    assert again is not None and again != ident
    [run] = fake.check_runs_json(full_name=FULL_NAME, sha=sha)
    assert (run["id"], run["status"]) == (again, "in_progress")


async def test_the_run_of_an_earlier_head_is_not_the_new_heads(
    port: ShowingGitHub, fake: FakeGitHub
) -> None:
    old = head(fake)
    ident = await port.publish(old, QUEUED, None)
    fake.set_pull(full_name=FULL_NAME, number=1, head_sha="f" * 40)
    new = fake.repo(FULL_NAME).pulls[1].head_sha
    fresh = await port.publish(new, TESTING, ident)
    assert fresh != ident
    [run] = fake.check_runs_json(full_name=FULL_NAME, sha=new)
    assert (run["id"], run["status"]) == (fresh, "in_progress")


async def test_a_long_summary_is_cut_to_githubs_limit(
    port: ShowingGitHub, fake: FakeGitHub
) -> None:
    sha = head(fake)
    long = Publication(status="queued", conclusion=None, title="Queued", summary="x" * 70_000)
    await port.publish(sha, long, None)
    [run] = fake.check_runs_json(full_name=FULL_NAME, sha=sha)
    assert len(run["summary"]) == 65535 and run["summary"].endswith("\u2026")


async def test_a_completed_publication_needs_a_conclusion(
    port: ShowingGitHub, fake: FakeGitHub
) -> None:
    sha = head(fake)
    with pytest.raises(ValueError, match="conclusion"):
        await port.publish(sha, Publication("completed", None, "Done", "?"), None)
    assert fake.check_runs_json(full_name=FULL_NAME) == []


async def test_another_apps_run_is_refused(port: ShowingGitHub, fake: FakeGitHub) -> None:
    sha = head(fake)
    theirs = fake.add_check_run(full_name=FULL_NAME, head_sha=sha, name="ci")
    with pytest.raises(Refused) as refused:
        await port.publish(sha, QUEUED, theirs)
    assert refused.value.status == 403


# -- the status comment and reactions -------------------------------------------------------


async def test_a_comment_is_created_then_edited_in_place(
    port: ShowingGitHub, fake: FakeGitHub
) -> None:
    head(fake)
    ident = await port.upsert_comment(1, None, "Queued: 2nd of 3")
    assert await port.upsert_comment(1, ident, "Merged.") == ident
    [comment] = fake.comments_json()
    assert (comment["id"], comment["number"], comment["body"]) == (ident, 1, "Merged.")
    assert comment["author"] == "mergequeue[bot]" and comment["updated_at"] is not None


async def test_a_deleted_comment_is_posted_again(port: ShowingGitHub, fake: FakeGitHub) -> None:
    head(fake)
    ident = await port.upsert_comment(1, None, "Queued.")
    fake.delete_comment(full_name=FULL_NAME, comment_id=ident)
    again = await port.upsert_comment(1, ident, "Testing.")
    assert again != ident
    assert [(c["id"], c["body"]) for c in fake.comments_json()] == [(again, "Testing.")]


async def test_a_reaction_is_there_once(port: ShowingGitHub, fake: FakeGitHub) -> None:
    head(fake)
    ident = fake.add_comment(full_name=FULL_NAME, number=1, body="/merge", user="alice")
    await port.react(ident, "eyes")
    await port.react(ident, "eyes")  # there already: not an error
    await port.react(ident, "rocket")
    [comment] = fake.comments_json()
    assert [(r["content"], r["user"]) for r in comment["reactions"]] == [
        ("eyes", "mergequeue[bot]"),
        ("rocket", "mergequeue[bot]"),
    ]
    fake.delete_comment(full_name=FULL_NAME, comment_id=ident)
    await port.react(ident, "+1")  # deleted meanwhile: not an error either
    with pytest.raises(ValueError, match="reaction"):
        await port.react(ident, "thumbsup")


async def test_memory_counts_the_calls(fake: FakeGitHub) -> None:
    memory = MemoryGitHub(fake, FULL_NAME)
    memory.fault = lambda name: Unavailable(502, "Server Error") if name == "react" else None
    sha = head(fake)
    await memory.publish(sha, QUEUED, None)
    await memory.upsert_comment(1, None, "Queued.")
    with pytest.raises(Unavailable):
        await memory.react(1, "eyes")
    assert [memory.count(n) for n in ("publish", "upsert_comment", "react")] == [1, 1, 1]


# -- over REST only: outages, and token mode's commit status ------------------------------


async def test_rest_outages_pass_through_and_creating_is_not_repeated(
    fake: FakeGitHub, gh: GitHubClient
) -> None:
    adapter = RestRepositoryGitHub(gh, owner=OWNER, repo=REPO)
    fake.fail(status=502, times=None, route="/repos/{owner}/{repo}/check-runs")
    with pytest.raises(Unavailable):
        await adapter.publish(head(fake), QUEUED, None)
    assert len(fake.calls_to("/repos/{owner}/{repo}/check-runs")) == 1


async def test_token_mode_publishes_a_commit_status(
    token_port: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    sha = head(fake)
    assert await token_port.publish(sha, TESTING, None) is None
    assert await token_port.publish(sha, MERGED, None) is None
    assert fake.check_runs_json(full_name=FULL_NAME) == []
    statuses = fake.statuses_json(full_name=FULL_NAME, sha=sha)
    assert [(s["context"], s["state"], s["description"]) for s in statuses] == [
        ("mergequeue", "pending", "Testing with #4"),
        ("mergequeue", "success", "Merged"),
    ]
    assert [s["target_url"] for s in statuses] == [URL, None]
    assert Check("mergequeue", "completed", "success") in await token_port.checks(sha)


async def test_token_mode_caps_the_status_description(
    token_port: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    sha = head(fake)
    title = "Waiting for " + ", ".join(f"#{n}" for n in range(100, 160))
    assert len(title) > STATUS_DESCRIPTION_LIMIT
    await token_port.publish(sha, Publication("queued", None, title, "summary"), None)
    [status] = fake.statuses_json(full_name=FULL_NAME, sha=sha)
    assert len(status["description"]) == STATUS_DESCRIPTION_LIMIT
    assert status["description"] == title[: STATUS_DESCRIPTION_LIMIT - 1] + "\u2026"
    exact = "y" * STATUS_DESCRIPTION_LIMIT
    await token_port.publish(sha, Publication("queued", None, exact, "summary"), None)
    assert fake.statuses_json(full_name=FULL_NAME, sha=sha)[-1]["description"] == exact


async def test_token_mode_comments_and_reactions(
    token_port: RestRepositoryGitHub, fake: FakeGitHub
) -> None:
    head(fake)
    ident = await token_port.upsert_comment(1, None, "Queued.")
    assert await token_port.upsert_comment(1, ident, "Merged.") == ident
    await token_port.react(ident, "+1")
    [comment] = fake.comments_json()
    assert comment["body"] == "Merged." and comment["reactions"][0]["user"] == "octocat"


@pytest.mark.parametrize(
    ("status", "conclusion", "state"),
    [
        ("queued", None, "pending"),
        ("in_progress", None, "pending"),
        ("completed", "success", "success"),
        ("completed", "failure", "failure"),
        ("completed", "neutral", "success"),
        ("completed", "skipped", "success"),
        ("completed", "cancelled", "error"),
        ("completed", "timed_out", "error"),
        ("completed", "action_required", "failure"),
    ],
)
def test_status_states(status: str, conclusion: str | None, state: str) -> None:
    assert status_state(Publication(status, conclusion, "t", "s")) == state


def test_status_state_refuses_a_completion_without_conclusion() -> None:
    with pytest.raises(ValueError):
        status_state(Publication("completed", None, "t", "s"))
    with pytest.raises(ValueError):
        status_state(Publication("done", None, "t", "s"))
