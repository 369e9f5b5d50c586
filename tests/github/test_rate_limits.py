"""Rate limits raise RateLimited(retry_at) so the caller defers the work, and nothing is
sent to GitHub again before that time."""

from __future__ import annotations

import time

import pytest

from mergequeue.github import GitHubClient, RateLimited
from tests.fakegithub import FakeGitHub
from tests.github.conftest import (
    FULL_NAME,
    INSTALLATION_ID,
    OWNER,
    REPO,
    KeyPair,
    Observed,
    make_client,
)

PULL = "/repos/{owner}/{repo}/pulls/{pull_number}"
MERGE = "/repos/{owner}/{repo}/pulls/{pull_number}/merge"
Q = {"owner": OWNER, "repo": REPO}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def gh_clocked(fake: FakeGitHub, app_keys: KeyPair, observed: Observed, clock: Clock):  # type: ignore[no-untyped-def]
    fake.add_pull(full_name=FULL_NAME)
    async with make_client(fake, app_keys, observed, clock=clock) as client:
        yield client.for_installation(INSTALLATION_ID)


async def test_primary_limit_defers_until_reset(
    gh_clocked: GitHubClient, fake: FakeGitHub, clock: Clock
) -> None:
    reset = int(time.time()) + 900
    fake.rate_limit_primary(until=reset, installation_id=INSTALLATION_ID)
    with pytest.raises(RateLimited) as limited:
        await gh_clocked.get_pull_request(**Q, number=1)
    assert limited.value.kind == "primary"
    assert limited.value.retry_at == reset
    assert limited.value.status == 403

    # Until the reset, calls fail at once without reaching GitHub.
    sent = len(fake.calls)
    clock.now = reset - 1
    with pytest.raises(RateLimited) as again:
        await gh_clocked.merge(**Q, number=1, method="merge", sha=None)
    assert again.value.retry_at == reset
    assert len(fake.calls) == sent

    # After it, the deferred work goes through.
    fake.clear_faults()
    clock.now = reset + 1
    assert (await gh_clocked.get_pull_request(**Q, number=1)).number == 1


async def test_last_call_of_the_window_blocks_the_next(
    fake: FakeGitHub, app_keys: KeyPair, observed: Observed
) -> None:
    fake.set_rate_limit(limit=2)
    fake.add_pull(full_name=FULL_NAME)
    fake.add_pull(full_name=FULL_NAME)
    async with make_client(fake, app_keys, observed) as client:
        gh = client.for_installation(INSTALLATION_ID)
        # Two different reads: a repeated one would be a free 304.
        await gh.get_pull_request(**Q, number=1)
        await gh.get_pull_request(**Q, number=2)  # remaining: 0
        sent = len(fake.calls)
        with pytest.raises(RateLimited) as limited:
            await gh.get_pull_request(**Q, number=1)
    assert len(fake.calls) == sent
    assert limited.value.retry_at == fake.windows[str(INSTALLATION_ID)].reset
    assert observed.limits[-1] == (str(INSTALLATION_ID), 0, fake.windows["5"].reset)


async def test_secondary_limit_with_retry_after(
    gh_clocked: GitHubClient, fake: FakeGitHub, clock: Clock
) -> None:
    fake.rate_limit_secondary(retry_after=42, route=MERGE)
    with pytest.raises(RateLimited) as limited:
        await gh_clocked.merge(**Q, number=1, method="merge", sha=None)
    assert limited.value.kind == "secondary"
    assert limited.value.retry_at == pytest.approx(clock.now + 42)
    # Secondary limits are not retried inside the client: that only extends them.
    assert len(fake.calls_to(MERGE)) == 1


@pytest.mark.parametrize("status", [403, 429])
async def test_secondary_limit_without_retry_after_waits_a_minute(
    gh_clocked: GitHubClient, fake: FakeGitHub, clock: Clock, status: int
) -> None:
    fake.rate_limit_secondary(retry_after=None, status=status)
    with pytest.raises(RateLimited) as limited:
        await gh_clocked.get_pull_request(**Q, number=1)
    assert limited.value.kind == "secondary"
    assert limited.value.status == status
    assert limited.value.retry_at == pytest.approx(clock.now + 60)


async def test_rate_limit_is_per_installation(gh_clocked: GitHubClient, fake: FakeGitHub) -> None:
    fake.add_installation(installation_id=6, account="other", repositories=["other/repo"])
    fake.rate_limit_primary(until=int(time.time()) + 600, installation_id=INSTALLATION_ID)
    with pytest.raises(RateLimited):
        await gh_clocked.get_pull_request(**Q, number=1)
    other = gh_clocked.for_installation(6)
    assert (await other.get_branch(owner="other", repo="repo", branch="main")).name == "main"


async def test_rate_limit_headers_reach_the_observer(
    gh: GitHubClient, fake: FakeGitHub, observed: Observed
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    fake.add_pull(full_name=FULL_NAME)
    await gh.get_pull_request(**Q, number=1)
    await gh.get_pull_request(**Q, number=2)
    app_window, inst_window = fake.windows["app"], fake.windows[str(INSTALLATION_ID)]
    assert observed.limits == [
        ("app", 4999, app_window.reset),
        ("5", 4999, inst_window.reset),
        ("5", 4998, inst_window.reset),
    ]
