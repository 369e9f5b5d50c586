"""The client's calls for the queue engine, reconciliation and webhook recovery, against
the fake (whose answers the conformance tests hold to GitHub's OpenAPI description)."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest

from mergequeue.github import (
    Comparison,
    GitHubClient,
    Installation,
    NotFound,
    StaticTokenAuth,
)
from tests.fakegithub import FakeGitHub
from tests.github.conftest import BASE_URL, FULL_NAME, INSTALLATION_ID, OWNER, REPO

Q = {"owner": OWNER, "repo": REPO}
HOOK_URL = "https://mergequeue.example.com/api/webhook"
SECRET = "hook-secret"


async def test_combined_status_reads_every_page(gh: GitHubClient, fake: FakeGitHub) -> None:
    sha = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    for i in range(150):
        fake.add_status(full_name=FULL_NAME, sha=sha, context=f"ctx-{i}", state="success")
    combined = await gh.get_combined_status(**Q, ref=sha)
    assert len(combined.statuses) == combined.total_count == 150
    assert {s.context for s in combined.statuses} == {f"ctx-{i}" for i in range(150)}


async def test_ruleset_required_checks_are_read_from_the_branch_rules(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    fake.add_ruleset(full_name=FULL_NAME, branches=["main"], required_checks=["ci", "lint"])
    fake.add_ruleset(full_name=FULL_NAME, branches=["~DEFAULT_BRANCH"], required_checks=["ci"])
    fake.add_ruleset(full_name=FULL_NAME, branches=["release/*"], required_checks=["e2e"])
    assert await gh.get_branch_rules_required_checks(**Q, branch="main") == ("ci", "lint")


async def test_a_branch_only_rulesets_protect_is_not_protected_classically(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    fake.add_ruleset(full_name=FULL_NAME, branches=["main"], required_checks=["ci"])
    assert await gh.get_required_status_checks(**Q, branch="main") is None


async def test_a_missing_ruleset_check_blocks_the_pull_request(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    fake.add_ruleset(full_name=FULL_NAME, branches=["main"], required_checks=["ci"])
    assert (await gh.get_pull_request(**Q, number=1)).mergeable_state == "blocked"


async def test_compare_counts_the_base_commits_the_head_lacks(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    head = fake.add_pull(full_name=FULL_NAME)["head_sha"]
    for _ in range(3):
        fake.push(full_name=FULL_NAME, branch="main")
    assert await gh.compare(**Q, base="main", head=head) == Comparison("diverged", 1, 3)


async def test_compare_of_a_branch_with_a_slash(gh: GitHubClient, fake: FakeGitHub) -> None:
    fake.add_branch(full_name=FULL_NAME, branch="release/1")
    head = fake.add_pull(full_name=FULL_NAME, base_ref="release/1")["head_sha"]
    fake.push(full_name=FULL_NAME, branch="release/1")
    assert (await gh.compare(**Q, base="release/1", head=head)).behind_by == 1


@pytest.mark.parametrize("role", ["admin", "maintain", "write", "triage", "read", "none"])
async def test_collaborator_role_is_githubs_role_name(
    gh: GitHubClient, fake: FakeGitHub, role: str
) -> None:
    fake.set_permission(full_name=FULL_NAME, username="alice", role_name=role)
    assert await gh.get_collaborator_role(**Q, username="alice") == role


async def test_a_known_non_collaborator_reads_a_public_repository(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    fake.add_user(login="bob")
    assert await gh.get_collaborator_role(**Q, username="bob") == "read"


async def test_the_role_of_an_unknown_user_is_not_found(gh: GitHubClient) -> None:
    with pytest.raises(NotFound):
        await gh.get_collaborator_role(**Q, username="no-such-user")


async def test_the_role_falls_back_to_the_permission() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"permission": "write", "user": None})

    async with GitHubClient(
        auth=StaticTokenAuth("t"), base_url=BASE_URL, transport=httpx.MockTransport(answer)
    ) as client:
        assert await client.get_collaborator_role(**Q, username="carol") == "write"


async def test_labelled_open_pulls_come_from_every_page(gh: GitHubClient, fake: FakeGitHub) -> None:
    for n in range(1, 131):
        fake.add_pull(full_name=FULL_NAME, labels=["mergequeue"] if n % 2 else ["other"])
    fake.set_pull(full_name=FULL_NAME, number=1, state="closed")
    numbers = await gh.list_open_pulls_with_label(**Q, label="mergequeue")
    assert sorted(numbers) == list(range(3, 131, 2))


async def test_labelled_open_pulls_leave_plain_issues_out() -> None:
    issue = {"number": 7, "labels": [{"name": "mergequeue"}]}
    pull = {"number": 8, "labels": [{"name": "mergequeue"}], "pull_request": {"url": "u"}}

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.params["labels"] == "mergequeue"
        assert request.url.params["state"] == "open"
        return httpx.Response(200, json=[issue, pull])

    async with GitHubClient(
        auth=StaticTokenAuth("t"), base_url=BASE_URL, transport=httpx.MockTransport(answer)
    ) as client:
        assert await client.list_open_pulls_with_label(**Q, label="mergequeue") == (8,)


async def test_recent_comments_are_newest_first_with_author_and_association(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    fake.add_pull(full_name=FULL_NAME)
    first = fake.add_comment(
        full_name=FULL_NAME, number=1, body="old", user="alice", author_association="OWNER"
    )
    second = fake.add_comment(
        full_name=FULL_NAME,
        number=2,
        body="/mergequeue merge",
        user="bob",
        author_association="CONTRIBUTOR",
    )
    comments = await gh.list_recent_comments(**Q, limit=10)
    assert [(c.id, c.number, c.author, c.author_association, c.body) for c in comments] == [
        (second, 2, "bob", "CONTRIBUTOR", "/mergequeue merge"),
        (first, 1, "alice", "OWNER", "old"),
    ]
    assert comments[0].created_at >= comments[1].created_at > 0


async def test_recent_comments_stop_at_the_limit_across_pages(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    ids = [
        fake.add_comment(full_name=FULL_NAME, number=1, body=str(i), user="alice")
        for i in range(130)
    ]
    comments = await gh.list_recent_comments(**Q, limit=110)
    assert [c.id for c in comments] == ids[::-1][:110]


async def test_app_installations_list_suspended_ones_too(
    app_client: GitHubClient, fake: FakeGitHub
) -> None:
    fake.add_installation(installation_id=6, account="paused", repositories=[])
    fake.suspend_installation(installation_id=6)
    assert await app_client.list_app_installations() == [
        Installation(INSTALLATION_ID, OWNER, suspended=False),
        Installation(6, "paused", suspended=True),
    ]
    assert {c.identity for c in fake.calls} == {"app"}


class Receiver:
    """A webhook endpoint: records what arrives, answers `status` (None: unreachable)."""

    def __init__(self) -> None:
        self.status: int | None = 202
        self.received: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.status is None:
            raise httpx.ConnectError("connection refused", request=request)
        self.received.append(request)
        return httpx.Response(self.status)


@pytest.fixture
def receiver(fake: FakeGitHub) -> Receiver:
    receiver = Receiver()
    fake.set_webhook_target(url=HOOK_URL, secret=SECRET, transport=httpx.MockTransport(receiver))
    return receiver


async def test_webhooks_arrive_signed_with_event_and_delivery_headers(
    fake: FakeGitHub, receiver: Receiver
) -> None:
    payload = {"action": "labeled", "installation": {"id": INSTALLATION_ID}}
    sent = await fake.send_webhook(event="pull_request", payload=payload)
    [request] = receiver.received
    body = request.content
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert request.headers["x-hub-signature-256"] == expected
    assert request.headers["x-github-event"] == "pull_request"
    assert request.headers["x-github-delivery"] == sent["guid"]
    assert json.loads(body) == payload


async def test_hook_deliveries_page_by_cursor_newest_first(
    app_client: GitHubClient, fake: FakeGitHub, receiver: Receiver
) -> None:
    sent = [await fake.send_webhook(event="push", payload={"n": i}) for i in range(3)]
    first = await app_client.list_hook_deliveries(per_page=2)
    assert first.next_cursor is not None
    second = await app_client.list_hook_deliveries(per_page=2, cursor=first.next_cursor)
    assert second.next_cursor is None
    listed = [d.guid for d in first.deliveries + second.deliveries]
    assert listed == [s["guid"] for s in reversed(sent)]


async def test_a_delivery_to_a_down_target_is_recorded_as_failed(
    app_client: GitHubClient, fake: FakeGitHub, receiver: Receiver
) -> None:
    receiver.status = None
    await fake.send_webhook(
        event="pull_request",
        payload={"action": "opened", "installation": {"id": 5}, "repository": {"id": 9}},
    )
    [delivery] = (await app_client.list_hook_deliveries()).deliveries
    assert (delivery.status_code, delivery.status, delivery.succeeded) == (0, "failed", False)
    assert (delivery.event, delivery.action) == ("pull_request", "opened")
    assert (delivery.installation_id, delivery.repository_id) == (5, 9)


async def test_redelivery_resends_the_same_guid_marked_as_a_redelivery(
    app_client: GitHubClient, fake: FakeGitHub, receiver: Receiver
) -> None:
    receiver.status = None
    sent = await fake.send_webhook(event="issue_comment", payload={"action": "created"})
    receiver.status = 200
    await app_client.redeliver(delivery_id=sent["id"])
    [request] = receiver.received
    assert request.headers["x-github-delivery"] == sent["guid"]
    newest, original = (await app_client.list_hook_deliveries()).deliveries
    assert (newest.guid, newest.redelivery, newest.status_code) == (sent["guid"], True, 200)
    assert (original.redelivery, original.status_code) == (False, 0)


async def test_redelivering_an_unknown_delivery_is_not_found(app_client: GitHubClient) -> None:
    with pytest.raises(NotFound):
        await app_client.redeliver(delivery_id=424242)


async def test_webhooks_can_be_sent_through_the_http_control(
    fake: FakeGitHub, receiver: Receiver
) -> None:
    transport = httpx.ASGITransport(app=fake.asgi)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        answer = await http.post(
            "/_fake/send_webhook", json={"event": "ping", "payload": {"zen": "Speak like a human."}}
        )
        listed = (await http.post("/_fake/deliveries_json")).json()["result"]
    assert answer.json()["result"]["status_code"] == 202
    assert [d["guid"] for d in listed] == [answer.json()["result"]["guid"]]
    assert len(receiver.received) == 1
