"""Conditional requests: GETs send the last ETag, and GitHub's free 304s reuse the body."""

from __future__ import annotations

import hashlib

import httpx

from mergequeue.github import GitHubClient
from mergequeue.queue.ports import Budget
from tests.fakegithub import FakeGitHub
from tests.github.conftest import (
    FULL_NAME,
    INSTALLATION_ID,
    INSTALLATION_TOKEN,
    OWNER,
    REPO,
    KeyPair,
    Observed,
    make_client,
)

Q = {"owner": OWNER, "repo": REPO}
PULL = "/repos/{owner}/{repo}/pulls/{pull_number}"
CHECK_RUNS = "/repos/{owner}/{repo}/commits/{ref}/check-runs"


async def test_repeated_get_sends_the_etag_and_reuses_the_body_of_the_304(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    fake.add_pull(full_name=FULL_NAME, title="First")
    first = await gh.get_pull_request(**Q, number=1)
    again = await gh.get_pull_request(**Q, number=1)
    calls = fake.calls_to(PULL)
    assert [c.status for c in calls] == [200, 304]
    assert calls[0].if_none_match is None and calls[1].if_none_match is not None
    assert again == first


async def test_not_modified_answers_do_not_count_against_the_rate_limit(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    for _ in range(3):
        await gh.get_pull_request(**Q, number=1)
    assert fake.points(INSTALLATION_ID) == 1
    assert [c.counted for c in fake.calls_to(PULL)] == [True, False, False]
    assert fake.windows[str(INSTALLATION_ID)].used == 1


async def test_a_changed_resource_is_read_afresh(gh: GitHubClient, fake: FakeGitHub) -> None:
    fake.add_pull(full_name=FULL_NAME, title="Before")
    await gh.get_pull_request(**Q, number=1)
    fake.set_pull(full_name=FULL_NAME, number=1, title="After")
    assert (await gh.get_pull_request(**Q, number=1)).title == "After"
    assert [c.status for c in fake.calls_to(PULL)] == [200, 200]


async def test_pagination_follows_the_remembered_links_through_304s(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    sha = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    for i in range(150):
        fake.add_check_run(full_name=FULL_NAME, head_sha=sha, name=f"check-{i}")
    first = await gh.list_check_runs(**Q, ref=sha)
    again = await gh.list_check_runs(**Q, ref=sha)
    assert len(again) == 150 and again == first
    assert [c.status for c in fake.calls_to(CHECK_RUNS)] == [200, 200, 304, 304]
    assert fake.points(INSTALLATION_ID) == 2


async def test_the_etag_cache_is_bounded_and_forgets_the_least_recently_used(
    fake: FakeGitHub, app_keys: KeyPair, observed: Observed
) -> None:
    for _ in range(3):
        fake.add_pull(full_name=FULL_NAME)
    async with make_client(fake, app_keys, observed, etag_cache_size=2) as client:
        gh = client.for_installation(INSTALLATION_ID)
        for number in (1, 2, 3):
            await gh.get_pull_request(**Q, number=number)
        fake.clear_calls()
        await gh.get_pull_request(**Q, number=3)
        await gh.get_pull_request(**Q, number=1)
    assert [(c.path.rsplit("/", 1)[1], c.status) for c in fake.calls] == [("3", 304), ("1", 200)]


async def test_conditional_requests_off_sends_no_if_none_match(
    fake: FakeGitHub, app_keys: KeyPair, observed: Observed
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    async with make_client(fake, app_keys, observed, conditional_requests=False) as client:
        gh = client.for_installation(INSTALLATION_ID)
        await gh.get_pull_request(**Q, number=1)
        await gh.get_pull_request(**Q, number=1)
    calls = fake.calls_to(PULL)
    assert [(c.if_none_match, c.status) for c in calls] == [(None, 200), (None, 200)]
    assert fake.points(INSTALLATION_ID) == 2


async def test_etags_are_remembered_per_installation(
    app_client: GitHubClient, fake: FakeGitHub
) -> None:
    fake.add_installation(installation_id=6, account=OWNER, repositories=[FULL_NAME])
    fake.add_pull(full_name=FULL_NAME)
    await app_client.for_installation(INSTALLATION_ID).get_pull_request(**Q, number=1)
    await app_client.for_installation(6).get_pull_request(**Q, number=1)
    assert [c.if_none_match for c in fake.calls_to(PULL)] == [None, None]


async def test_budget_is_the_last_rate_limit_headers_of_the_installation(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    assert gh.budget() is None
    fake.add_pull(full_name=FULL_NAME)
    await gh.get_pull_request(**Q, number=1)
    window = fake.windows[str(INSTALLATION_ID)]
    assert gh.budget() == Budget(remaining=4999, limit=5000, reset_at=float(window.reset))


async def test_fake_get_answers_carry_an_etag_of_their_body_and_304_without_one(
    fake: FakeGitHub,
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    headers = {"Authorization": f"Bearer {INSTALLATION_TOKEN}"}
    transport = httpx.ASGITransport(app=fake.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.github.com") as http:
        first = await http.get(f"/repos/{FULL_NAME}/pulls/1", headers=headers)
        etag = first.headers["etag"]
        again = await http.get(
            f"/repos/{FULL_NAME}/pulls/1", headers={**headers, "If-None-Match": etag}
        )
    assert etag.strip('"') == hashlib.sha256(first.content).hexdigest()[:40]
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    assert again.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]
