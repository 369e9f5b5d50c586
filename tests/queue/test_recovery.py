"""Reconciliation finds what missed webhooks should have queued, and
paces its re-reads by need."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from mergequeue.github import Unavailable
from mergequeue.queue.pacing import QUIET_AFTER, reconcile_due
from mergequeue.queue.recover import RECOVERED_BY, recover_commands, recover_labelled
from tests.queue.harness import LABEL, T0, Harness
from tests.queue.memory import unavailable


async def _recover(h: Harness) -> list[int]:
    return await recover_labelled(
        store=h.store,
        github=h.github,
        repository=h.repository,
        settings=h.effective,
        clock=lambda: h.now,
    )


async def test_a_labelled_pull_request_whose_webhook_was_missed_is_queued() -> None:
    h = Harness()
    n = h.open_pull(labels=[LABEL])
    assert await _recover(h) == [n]
    assert h.entry(n).enqueued_by == RECOVERED_BY
    h.ci(n)
    await h.evaluate()
    assert h.merged(n)


async def test_recovery_leaves_queued_and_unlabelled_pull_requests_alone() -> None:
    h = Harness()
    queued = h.open_pull(labels=[LABEL])
    await h.label(queued)
    h.open_pull(labels=["bug"])
    assert await _recover(h) == []
    assert len(h.store.stays(queued)) == 1


async def test_a_label_whose_removal_is_still_owed_is_no_request_to_queue_again() -> None:
    h = Harness()
    n = h.open_pull()
    await h.label(n)
    h.ci(n, "failure")
    h.github.fault = lambda name: unavailable() if name == "comment" else None
    with pytest.raises(Unavailable):
        await h.evaluate()
    assert LABEL in h.labels(n), "the label removal is still owed"
    assert await _recover(h) == []


async def test_a_closed_labelled_pull_request_is_not_queued() -> None:
    h = Harness()
    n = h.open_pull(labels=[LABEL])
    h.fake.set_pull(full_name="acme/widgets", number=n, state="closed")
    assert await _recover(h) == []


def test_a_queue_heard_from_recently_is_not_re_read() -> None:
    assert not reconcile_due(
        evaluated_at=T0, deadline_at=None, now=T0 + QUIET_AFTER / 2, budget_low=False
    )


def test_a_quiet_queue_is_re_read_unless_the_budget_is_low() -> None:
    later = T0 + QUIET_AFTER
    assert reconcile_due(evaluated_at=T0, deadline_at=None, now=later, budget_low=False)
    assert not reconcile_due(evaluated_at=T0, deadline_at=None, now=later, budget_low=True)


def test_a_due_decision_is_read_at_once_whatever_the_budget() -> None:
    deadline = T0 + timedelta(seconds=5)
    now = T0 + timedelta(seconds=6)
    assert reconcile_due(evaluated_at=T0, deadline_at=deadline, now=now, budget_low=True)


async def test_an_evaluation_records_when_its_next_decision_falls_due() -> None:
    h = Harness()
    n = h.open_pull()
    await h.label(n)
    await h.evaluate()
    assert h.repository.evaluated_at == h.now
    assert h.repository.deadline_at is not None
    assert timedelta(minutes=59) < h.repository.deadline_at - h.now <= timedelta(minutes=61)


def _comment(h: Harness, number: int, body: str, user: str, association: str) -> int:
    comment_id = h.fake.add_comment(
        full_name="acme/widgets",
        number=number,
        body=body,
        user=user,
        author_association=association,
    )
    h.fake.comments[-1].created_at = h.now.timestamp()
    return comment_id


async def _recover_commands(h: Harness) -> list[int]:
    return await recover_commands(
        store=h.store,
        github=h.github,
        repository=h.repository,
        settings=h.effective,
        clock=lambda: h.now,
    )


async def test_a_command_whose_webhook_was_missed_is_applied() -> None:
    h = Harness()
    n = h.open_pull()
    comment = _comment(h, n, "/mergequeue merge", "acme", "OWNER")
    h.advance(minutes=3)
    assert await _recover_commands(h) == [comment]
    assert h.entry(n).enqueued_by == "acme"
    h.ci(n)
    await h.evaluate()
    assert h.merged(n)


async def test_a_command_the_webhook_applied_is_not_applied_again() -> None:
    h = Harness()
    n = h.open_pull()
    comment = _comment(h, n, "/mergequeue merge", "acme", "OWNER")
    command = h.command(n, "merge", author="acme", association="OWNER")
    await h.apply(replace(command, comment_id=comment))
    await h.apply(h.command(n, "cancel", author="acme", association="OWNER"))
    assert await _recover_commands(h) == []
    assert len(h.store.stays(n)) == 1 and h.store.live(n) is None
    assert h.github.count("pull") == 0, "nothing asked of GitHub for handled comments"


async def test_a_recovered_command_from_an_unauthorized_user_is_refused() -> None:
    h = Harness()
    n = h.open_pull()
    _comment(h, n, "/mergequeue merge", "mallory", "NONE")
    await _recover_commands(h)
    await h.evaluate()
    assert h.store.stays(n) == []
    assert any(body.startswith("@mallory") for body in h.comments(n))


async def test_commands_older_than_the_recovery_window_are_left_alone() -> None:
    h = Harness()
    n = h.open_pull()
    _comment(h, n, "/mergequeue merge", "acme", "OWNER")
    h.advance(hours=2)
    assert await _recover_commands(h) == []
    assert h.store.stays(n) == []
