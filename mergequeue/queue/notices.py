"""What the queue tells a pull request: built here, stored in the outbox, sent by `send`.

Each notice has a key naming why it exists (this entry's dequeue comment, that refused
command), so deciding the same thing twice stores it once and GitHub hears it once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, cast

from sqlalchemy.ext.asyncio import AsyncSession

from mergequeue.github.errors import GitHubError, RateLimited, Unavailable
from mergequeue.models import Notice, NoticeKind, utcnow
from mergequeue.queue.ports import Refused, RepositoryGitHub, ShowingGitHub
from mergequeue.upsert import insert_ignore

if TYPE_CHECKING:
    from mergequeue.queue.store import QueueStore

log = logging.getLogger("mergequeue.notices")


def comment(*, key: str, repository_id: int, number: int, body: str) -> Notice:
    return _notice(key, repository_id, number, NoticeKind.COMMENT, body)


def remove_label(*, key: str, repository_id: int, number: int, label: str) -> Notice:
    return _notice(key, repository_id, number, NoticeKind.REMOVE_LABEL, label)


def reaction(*, repository_id: int, number: int, comment_id: int, content: str) -> Notice:
    """A reaction on a command's comment: what the queue made of it, at a glance."""
    notice = _notice(
        f"command:{comment_id}:reaction", repository_id, number, NoticeKind.REACTION, content
    )
    notice.target_id = comment_id
    return notice


def _notice(key: str, repository_id: int, number: int, kind: NoticeKind, text: str) -> Notice:
    return Notice(
        key=key,
        repository_id=repository_id,
        number=number,
        kind=kind,
        text=text,
        created_at=utcnow(),
    )


def for_dequeue(
    *, entry_id: int, repository_id: int, number: int, comment_body: str | None, label: str | None
) -> list[Notice]:
    """A dequeue's comment (when it has one) and label removal (when it asks for one)."""
    notices = []
    if comment_body:
        notices.append(
            comment(
                key=f"entry:{entry_id}:comment",
                repository_id=repository_id,
                number=number,
                body=comment_body,
            )
        )
    if label:
        notices.append(
            remove_label(
                key=f"entry:{entry_id}:unlabel",
                repository_id=repository_id,
                number=number,
                label=label,
            )
        )
    return notices


async def send(
    *,
    store: QueueStore,
    github: RepositoryGitHub,
    repository_id: int,
    clock: Callable[[], datetime] = utcnow,
) -> int:
    """Send the repository's pending notices, each marked sent as soon as it is.

    "Not now" (rate limits, outages) propagates with the rest still pending; a refusal
    for good (the pull request is gone, no permission) is recorded and not retried.
    """
    sent = 0
    for notice in await store.pending_notices(repository_id):
        try:
            if notice.kind == NoticeKind.COMMENT:
                await github.comment(notice.number, notice.text)
            elif notice.kind == NoticeKind.REACTION:
                if notice.target_id is not None:
                    await cast("ShowingGitHub", github).react(notice.target_id, notice.text)
            else:
                await github.remove_label(notice.number, notice.text)
        except (RateLimited, Unavailable):
            raise
        except (GitHubError, Refused) as exc:
            notice.error = str(exc)[:2000]
            log.warning(
                "could not tell a pull request",
                extra={"pr": notice.number, "kind": notice.kind.value, "why": str(exc)},
            )
        notice.sent_at = clock()
        await store.commit()
        sent += 1
    return sent


async def add(session: AsyncSession, notice: Notice) -> bool:
    """Store a notice in the session's transaction; one with the same key already there
    wins. True when this one was stored."""
    return await insert_ignore(
        session,
        Notice,
        {
            "key": notice.key,
            "repository_id": notice.repository_id,
            "number": notice.number,
            "kind": notice.kind,
            "text": notice.text,
            "target_id": notice.target_id,
            "created_at": notice.created_at,
        },
        conflict=["key"],
    )
