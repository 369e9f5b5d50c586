"""5xx answers, timeouts and connection errors: retried with bounded backoff, then
`Unavailable`; each attempt reported to the latency observer with its outcome."""

from __future__ import annotations

import pytest

from mergequeue.github import GitHubClient, StaticTokenAuth, Unavailable
from tests.fakegithub import FakeGitHub
from tests.github.conftest import (
    FULL_NAME,
    INSTALLATION_ID,
    OWNER,
    REPO,
    KeyPair,
    Observed,
    free_port,
    make_client,
)

PULL = "/repos/{owner}/{repo}/pulls/{pull_number}"
COMMENTS = "/repos/{owner}/{repo}/issues/{issue_number}/comments"
Q = {"owner": OWNER, "repo": REPO}


async def test_server_errors_are_retried_then_succeed(
    gh: GitHubClient, fake: FakeGitHub, observed: Observed
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    fake.fail(status=502, times=2, route=PULL)
    assert (await gh.get_pull_request(**Q, number=1)).number == 1
    assert [c.status for c in fake.calls_to(PULL)] == [502, 502, 200]
    assert [s for m, e, s in observed.labels() if e == PULL] == ["502", "502", "200"]


async def test_retries_are_bounded(gh: GitHubClient, fake: FakeGitHub) -> None:
    fake.add_pull(full_name=FULL_NAME)
    fake.fail(status=503, times=None, route=PULL)
    with pytest.raises(Unavailable) as failed:
        await gh.get_pull_request(**Q, number=1)
    assert failed.value.status == 503
    assert len(fake.calls_to(PULL)) == 3


async def test_backoff_grows_and_is_capped(
    fake: FakeGitHub, app_keys: KeyPair, observed: Observed
) -> None:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    fake.add_pull(full_name=FULL_NAME)
    fake.fail(status=500, times=None, route=PULL)
    client = make_client(
        fake, app_keys, observed, sleep=sleep, max_attempts=6, backoff=1.0, max_backoff=4.0
    )
    async with client:
        with pytest.raises(Unavailable):
            await client.for_installation(INSTALLATION_ID).get_pull_request(**Q, number=1)
    assert len(delays) == 5
    for delay, ceiling in zip(delays, [1, 2, 4, 4, 4], strict=True):
        assert ceiling / 2 <= delay <= ceiling


async def test_comments_are_not_repeated_after_a_server_error(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    """A 5xx after POST may still have posted it: retrying could comment twice."""
    fake.add_pull(full_name=FULL_NAME)
    fake.fail(status=502, times=1, route=COMMENTS)
    with pytest.raises(Unavailable):
        await gh.create_comment(**Q, number=1, body="hello")
    assert len(fake.calls_to(COMMENTS)) == 1


async def test_timeout_is_reported_as_timeout_then_retried(
    fake: FakeGitHub, app_keys: KeyPair, observed: Observed
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    fake.hang(route=PULL, times=1)
    async with make_client(fake, app_keys, observed, timeout=0.2) as client:
        pr = await client.for_installation(INSTALLATION_ID).get_pull_request(**Q, number=1)
    assert pr.number == 1
    outcomes = [(s, seconds) for m, e, s, seconds in observed.calls if e == PULL]
    assert [s for s, _ in outcomes] == ["timeout", "200"]
    assert 0.2 <= outcomes[0][1] < 1.0


async def test_persistent_timeouts_give_unavailable(
    fake: FakeGitHub, app_keys: KeyPair, observed: Observed
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    fake.hang(route=PULL, times=None)
    async with make_client(fake, app_keys, observed, timeout=0.1) as client:
        with pytest.raises(Unavailable) as failed:
            await client.for_installation(INSTALLATION_ID).get_pull_request(**Q, number=1)
    fake.clear_faults()
    assert failed.value.status == 0
    assert [s for m, e, s in observed.labels() if e == PULL] == ["timeout"] * 3


async def test_slow_answers_are_measured(
    gh: GitHubClient, fake: FakeGitHub, observed: Observed
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    fake.delay(seconds=0.15, route=PULL, times=1)
    await gh.get_pull_request(**Q, number=1)
    (seconds,) = [s for m, e, st, s in observed.calls if e == PULL]
    assert seconds >= 0.15


async def test_connection_refused_is_reported_as_error(observed: Observed) -> None:
    client = GitHubClient(
        auth=StaticTokenAuth("t"),
        base_url=f"http://127.0.0.1:{free_port()}",
        observe_call=observed.call,
        backoff=0.01,
        timeout=2.0,
    )
    async with client:
        with pytest.raises(Unavailable) as failed:
            await client.get_branch(**Q, branch="main")
    assert failed.value.status == 0
    assert "ConnectError" in failed.value.message
    assert observed.labels() == [("GET", "/repos/{owner}/{repo}/branches/{branch}", "error")] * 3
