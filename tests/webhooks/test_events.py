"""mergequeue/webhooks/events.py: pure interpretation of deliveries, no I/O."""

from __future__ import annotations

import pytest

from mergequeue.models import PullRequestState
from mergequeue.webhooks.events import (
    OTHER_EVENT,
    QueueCommand,
    UnusableDelivery,
    UpsertPullRequest,
    WakeQueue,
    interpret,
    metric_event,
    parse_command,
)
from tests.support import webhooks


@pytest.mark.parametrize("name", webhooks.fixture_names())
def test_every_captured_payload_is_interpreted(name: str) -> None:
    changes = interpret(webhooks.event_of(name), webhooks.fixture(name))
    # ping means nothing; the captured comment is on an issue, not a pull request.
    meaningless = {"ping", "issue_comment.created"}
    assert (changes == []) is (name in meaningless)


def test_pull_request_state_follows_merged_and_closed() -> None:
    def state(name: str) -> PullRequestState:
        [pr] = [
            c
            for c in interpret("pull_request", webhooks.fixture(name))
            if isinstance(c, UpsertPullRequest)
        ]
        return pr.state

    assert state("pull_request.opened") is PullRequestState.OPEN
    assert state("pull_request.closed") is PullRequestState.CLOSED
    assert state("pull_request.closed.merged") is PullRequestState.MERGED


def test_check_events_wake_the_repository_queue() -> None:
    for name in ("check_run.completed", "check_suite.completed", "status", "push"):
        assert any(
            isinstance(c, WakeQueue)
            for c in interpret(webhooks.event_of(name), webhooks.fixture(name))
        )


@pytest.mark.parametrize(
    ("body", "command"),
    [
        ("/mergequeue merge", "merge"),
        ("Looks good!\n/mergequeue  MERGE\nthanks", "merge"),
        ("/mergequeue cancel", "cancel"),
        ("/mergequeue", None),
        ("/mergequeue merge now please", None),
        ("please /mergequeue merge", None),
        ("", None),
    ],
)
def test_commands_are_a_line_of_their_own(body: str, command: str | None) -> None:
    assert parse_command(body) == command


def test_a_merge_comment_on_a_pull_request_is_a_queue_command() -> None:
    payload = webhooks.fixture("issue_comment.created")
    payload["issue"]["pull_request"] = {"url": "https://api.github.com/x"}
    payload["comment"]["body"] = "/mergequeue merge"
    [command] = [c for c in interpret("issue_comment", payload) if isinstance(c, QueueCommand)]
    assert (command.number, command.command) == (payload["issue"]["number"], "merge")


def test_a_comment_on_an_issue_is_ignored() -> None:
    payload = webhooks.fixture("issue_comment.created")
    payload["issue"].pop("pull_request", None)
    payload["comment"]["body"] = "/mergequeue merge"
    assert interpret("issue_comment", payload) == []


def test_a_payload_missing_what_its_event_needs_is_unusable() -> None:
    with pytest.raises(UnusableDelivery, match="pull_request"):
        interpret("pull_request", {"action": "opened"})


def test_unknown_events_mean_nothing_and_share_one_metric_label() -> None:
    assert interpret("made_up", {"x": 1}) == []
    assert metric_event("made_up") == OTHER_EVENT
    assert metric_event("pull_request") == "pull_request"
