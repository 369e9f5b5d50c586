"""Who may command the queue with `/mergequeue merge|cancel` (and from the dashboard).

Anyone who can comment could otherwise have the App merge a pull request, on repositories
that require no review. GitHub's author_association is the cheap first test: the
repository's owner passes, members and collaborators are asked about (their permission
varies), and everyone else (contributors, first-timers, strangers) is refused unasked.
"""

from __future__ import annotations

from typing import Final

from mergequeue.queue.ports import RepositoryGitHub, Role
from mergequeue.settings import CommandPermission

ASKED_ASSOCIATIONS: Final = frozenset({"MEMBER", "COLLABORATOR"})


async def may_command(
    github: RepositoryGitHub, *, author: str, association: str, needed: CommandPermission
) -> bool:
    if association == "OWNER":
        return True
    if association not in ASKED_ASSOCIATIONS:
        return False
    return permits(await github.role(author), needed)


def permits(role: Role, needed: CommandPermission) -> bool:
    """The rule itself: a role at least QUEUE_COMMAND_PERMISSION commands the queue. The
    dashboard's pause, resume and dequeue buttons follow it too."""
    return role.at_least(Role(needed.value))


def refusal_text(author: str, needed: CommandPermission) -> str:
    return (
        f"@{author} only users with at least {needed.value} permission on this repository "
        "can command the merge queue; nothing was changed."
    )
