"""Finding what missed webhooks should have done: labels and commands."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from mergequeue.models import Repository
from mergequeue.queue.authorize import may_command
from mergequeue.queue.effective import EffectiveSettings
from mergequeue.queue.intake import apply_queue_change
from mergequeue.queue.ports import RepositoryGitHub
from mergequeue.queue.store import QueueStore
from mergequeue.webhooks.events import QueueCommand, parse_command

RECOVERED_BY = "reconciliation"


async def recover_labelled(
    *,
    store: QueueStore,
    github: RepositoryGitHub,
    repository: Repository,
    settings: EffectiveSettings,
    clock: Callable[[], datetime],
) -> list[int]:
    """Queue the open pull requests that carry the queue label but are not queued.

    A label the queue still owes a removal of (its stay ended, the removal is pending) is
    not a request to queue again. Returns the numbers queued.
    """
    labelled = await github.labelled_open_pulls(settings.queue_label)
    if not labelled:
        return []
    queued = {number for _, number in await store.queued(repository.id)}
    owed = await store.owed_unlabels(repository.id)
    recovered = []
    for number in sorted(labelled):
        if number in queued or number in owed:
            continue
        if await store.enqueue(repository, number, by=RECOVERED_BY, at=clock()):
            recovered.append(number)
    await store.commit()
    return recovered


# Commands older than this are not recovered: the service may not have been watching then,
# and an old command acted on late would surprise more than it helps.
COMMAND_WINDOW: Final = timedelta(hours=1)
RECENT_COMMENTS: Final = 30


async def recover_commands(
    *,
    store: QueueStore,
    github: RepositoryGitHub,
    repository: Repository,
    settings: EffectiveSettings,
    clock: Callable[[], datetime],
) -> list[int]:
    """Apply `/mergequeue` commands on pull requests whose comment webhook never arrived.

    The repository's latest comments are read (a conditional request: free while there is
    no new comment); a command comment of the last hour that was never handled is
    authorized and applied as the webhook would have, in the order the comments were made.
    Returns the comment ids applied or refused.
    """
    now = clock()
    since = now - COMMAND_WINDOW
    if repository.created_at is not None:
        since = max(since, repository.created_at)
    commands = [
        (comment, command)
        for comment in reversed(await github.recent_comments(RECENT_COMMENTS))
        if (command := parse_command(comment.body)) is not None
        and datetime.fromtimestamp(comment.created_at, UTC) >= since
    ]
    seen = await store.handled_commands([comment.id for comment, _ in commands])
    handled = []
    for comment, command in commands:
        if comment.id in seen:
            continue
        pull = await github.pull(comment.number)
        if pull is None:
            continue  # a comment on an issue, not a pull request
        allowed = await may_command(
            github,
            author=comment.author,
            association=comment.author_association,
            needed=settings.command_permission,
        )
        await apply_queue_change(
            store=store,
            repository=repository,
            settings=settings,
            change=QueueCommand(
                repository.id,
                comment.number,
                command,
                comment.author,
                association=comment.author_association,
                comment_id=comment.id,
            ),
            # Received now, as far as the queue's order goes: entries queued meanwhile
            # keep their places (first in, first out by receipt).
            received_at=now,
            refused=frozenset() if allowed else frozenset({comment.id}),
        )
        handled.append(comment.id)
    await store.commit()
    return handled
