"""How labels, commands and closing change the queue (the webhook side of the queue).

`refused` holds the comment ids whose authors may not command the queue (decided with
`authorize.may_command` before this runs): each gets one reply and changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from mergequeue.models import Repository
from mergequeue.queue import notices
from mergequeue.queue.authorize import refusal_text
from mergequeue.queue.decide import DequeueReason
from mergequeue.queue.effective import EffectiveSettings
from mergequeue.queue.store import QueueStore
from mergequeue.webhooks.events import LabelChanged, PullRequestClosed, QueueCommand

log = logging.getLogger("mergequeue.intake")

QueueChange = QueueCommand | LabelChanged | PullRequestClosed


async def apply_queue_change(
    *,
    store: QueueStore,
    repository: Repository,
    settings: EffectiveSettings,
    change: QueueChange,
    received_at: datetime,
    refused: frozenset[int],
) -> None:
    if (
        isinstance(change, QueueCommand)
        and change.comment_id
        and not await store.claim_command(change.comment_id, repository.id)
    ):
        return  # handled already (the webhook and recovery both saw it)
    match change:
        case QueueCommand() if change.comment_id in refused:
            await store.add_notice(
                notices.comment(
                    key=f"command:{change.comment_id}:refused",
                    repository_id=repository.id,
                    number=change.number,
                    body=refusal_text(change.author, settings.command_permission),
                )
            )
            await _react(store, repository, change, "-1")
        case QueueCommand(command="merge"):
            done = await store.enqueue(repository, change.number, by=change.author, at=received_at)
            await _react(store, repository, change, "+1" if done else "confused")
        case QueueCommand():
            # The label goes too: a labelled pull request is always a queued one, which is
            # what lets reconciliation queue labelled pull requests a webhook missed.
            done = await store.dequeue(
                repository,
                change.number,
                reason=DequeueReason.CANCELLED.value,
                remove_label=settings.queue_label,
            )
            await _react(store, repository, change, "+1" if done else "confused")
        case LabelChanged() if change.label == settings.priority_label:
            # Urgent: queued ahead of normal entries (the builds behind its place restart).
            if change.added:
                queued = await store.enqueue(
                    repository, change.number, by=change.by, at=received_at, priority=1
                )
                if not queued:
                    await store.prioritize(repository, change.number, 1)
            else:
                await store.prioritize(repository, change.number, 0)
        case LabelChanged() if change.label == settings.queue_label:
            if change.added:
                await store.enqueue(repository, change.number, by=change.by, at=received_at)
            else:
                await store.dequeue(
                    repository,
                    change.number,
                    reason=DequeueReason.UNLABELED.value,
                    remove_label=None,
                )
        case LabelChanged():
            pass
        case PullRequestClosed():
            await store.leave_closed(repository, change.number, merged=change.merged)


async def _react(
    store: QueueStore, repository: Repository, command: QueueCommand, content: str
) -> None:
    """Accepted (+1), refused (-1, with the reply saying why) or changing nothing
    (confused: queued already, or not queued), at a glance on the command's comment."""
    if command.comment_id:
        await store.add_notice(
            notices.reaction(
                repository_id=repository.id,
                number=command.number,
                comment_id=command.comment_id,
                content=content,
            )
        )
