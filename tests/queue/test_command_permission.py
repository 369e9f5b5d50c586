"""Who may command the queue, and what a refused command does."""

from __future__ import annotations

import pytest

from mergequeue.queue.authorize import may_command
from mergequeue.settings import CommandPermission
from tests.queue.harness import FULL_NAME, Harness


async def _may(h: Harness, author: str, association: str, needed: str = "write") -> bool:
    return await may_command(
        h.github, author=author, association=association, needed=CommandPermission(needed)
    )


async def test_the_repository_owner_may_command_without_asking_github() -> None:
    h = Harness()
    assert await _may(h, "acme", "OWNER")
    assert h.github.count("role") == 0


@pytest.mark.parametrize("association", ["CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "NONE"])
async def test_commenters_who_are_no_collaborators_are_refused_without_asking(
    association: str,
) -> None:
    h = Harness()
    h.fake.set_permission(full_name=FULL_NAME, username="mallory", role_name="write")
    assert not await _may(h, "mallory", association)
    assert h.github.count("role") == 0


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [
        ("read", "write", False),
        ("triage", "write", False),
        ("write", "write", True),
        ("admin", "write", True),
        ("triage", "triage", True),
        ("write", "maintain", False),
        ("maintain", "maintain", True),
        ("maintain", "admin", False),
    ],
)
async def test_members_and_collaborators_need_the_configured_permission(
    role: str, needed: str, allowed: bool
) -> None:
    h = Harness()
    h.fake.set_permission(full_name=FULL_NAME, username="bob", role_name=role)
    assert await _may(h, "bob", "COLLABORATOR", needed) is allowed
    assert await _may(h, "bob", "MEMBER", needed) is allowed


async def test_a_refused_merge_command_queues_nothing_and_gets_one_reply() -> None:
    h = Harness(environ={"QUEUE_COMMAND_PERMISSION": "write"})
    n = h.open_pull()
    command = h.command(n, "merge", author="mallory", association="CONTRIBUTOR")
    refused = frozenset({command.comment_id})
    await h.apply(command, refused=refused)
    await h.apply(command, refused=refused)  # the same comment seen twice
    await h.evaluate()
    assert h.store.stays(n) == []
    [reply] = h.comments(n)
    assert "@mallory" in reply and "write permission" in reply


async def test_a_refused_cancel_leaves_the_pull_request_queued() -> None:
    h = Harness()
    n = h.open_pull()
    await h.label(n)
    command = h.command(n, "cancel", author="mallory", association="NONE")
    await h.apply(command, refused=frozenset({command.comment_id}))
    assert h.store.live(n) is not None


async def test_an_allowed_merge_command_queues_the_pull_request() -> None:
    h = Harness()
    n = h.open_pull()
    await h.apply(h.command(n, "merge", author="alice", association="OWNER"))
    h.ci(n)
    await h.evaluate()
    assert h.merged(n)
