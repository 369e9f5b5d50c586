"""What the queue tells a chat: built here, stored in the `notifications` outbox in the
transaction that decides it, sent later by `mergequeue.notifications.sender`.

Each event has a key naming it (`dequeue:<entry id>`, `stuck:<entry id>:<sha>`,
`paused:<repository id>:<paused at, Unix time>`, `ratelimit:<installation>:<reset, Unix
time>`), and a row per destination: deciding the same event twice, in one worker or two,
stores it once, and each destination hears it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from mergequeue.models import Notification, NotificationDestination
from mergequeue.upsert import insert_ignore

# Chat messages are read by people: a comment quoted at length helps no one.
MAX_QUOTE = 1500


class Event(StrEnum):
    DEQUEUE = "dequeue"
    STUCK = "stuck"
    PAUSED = "paused"
    RATELIMIT = "ratelimit"


def build(
    *,
    key: str,
    event: Event,
    text: str,
    repository_id: int | None,
    destinations: Sequence[NotificationDestination],
    now: datetime,
) -> list[Notification]:
    """One row per destination (none when no destination is configured)."""
    return [
        Notification(
            key=key,
            destination=destination,
            repository_id=repository_id,
            event=event.value,
            text=text,
            created_at=now,
            attempts=0,
            due_at=now,
        )
        for destination in destinations
    ]


def for_dequeue(
    *,
    entry_id: int,
    repository_id: int,
    full_name: str,
    web_url: str,
    number: int,
    reason: str,
    comment: str | None,
    destinations: Sequence[NotificationDestination],
    now: datetime,
) -> list[Notification]:
    """A pull request the queue removed: which, why (the reason and the comment's text),
    and its link."""
    lines = [f"{full_name}#{number} left the merge queue without merging ({reason})."]
    if comment:
        lines.append(_quote(comment))
    lines.append(f"{web_url}/pull/{number}")
    return build(
        key=f"dequeue:{entry_id}",
        event=Event.DEQUEUE,
        text="\n".join(lines),
        repository_id=repository_id,
        destinations=destinations,
        now=now,
    )


def for_stuck(
    *,
    entry_id: int,
    sha: str,
    repository_id: int,
    full_name: str,
    web_url: str,
    number: int,
    base_ref: str,
    waited: timedelta,
    ci_timeout: timedelta,
    destinations: Sequence[NotificationDestination],
    now: datetime,
) -> list[Notification]:
    """The head of a queue has waited past its CI timeout and the queue has not acted."""
    text = (
        f"The merge queue of {full_name} ({base_ref}) looks stuck: its head #{number} has "
        f"waited {_duration(waited)}, longer than its CI timeout of {_duration(ci_timeout)}, "
        "and is still queued. Is the worker running and can it reach GitHub?\n"
        f"{web_url}/pull/{number}"
    )
    return build(
        key=f"stuck:{entry_id}:{sha}",
        event=Event.STUCK,
        text=text,
        repository_id=repository_id,
        destinations=destinations,
        now=now,
    )


def for_paused(
    *,
    repository_id: int,
    full_name: str,
    web_url: str,
    paused_at: datetime,
    destinations: Sequence[NotificationDestination],
    now: datetime,
) -> list[Notification]:
    """A queue paused for longer than NOTIFY_PAUSED_AFTER_SECONDS (once per pause)."""
    text = (
        f"The merge queue of {full_name} has been paused for {_duration(now - paused_at)} "
        f"(since {paused_at:%Y-%m-%d %H:%M} UTC): nothing merges until it is resumed.\n"
        f"{web_url}"
    )
    return build(
        key=f"paused:{repository_id}:{int(paused_at.timestamp())}",
        event=Event.PAUSED,
        text=text,
        repository_id=repository_id,
        destinations=destinations,
        now=now,
    )


def for_rate_limit(
    *,
    installation: str,
    remaining: int,
    limit: int,
    reset_at: float,
    destinations: Sequence[NotificationDestination],
    now: datetime,
) -> list[Notification]:
    """An installation under a tenth of its hourly GitHub budget (once per window)."""
    reset = datetime.fromtimestamp(reset_at, tz=now.tzinfo)
    who = "The GitHub token" if installation == "token" else f"GitHub installation {installation}"
    text = (
        f"{who} has {remaining} of its {limit} API requests left until {reset:%H:%M} UTC: "
        "the merge queue reads only what is due until then."
    )
    return build(
        key=f"ratelimit:{installation}:{int(reset_at)}",
        event=Event.RATELIMIT,
        text=text,
        repository_id=None,
        destinations=destinations,
        now=now,
    )


async def add(session: AsyncSession, notification: Notification) -> bool:
    """Store a notification in the session's transaction; one with the same key and
    destination already there wins. True when this one was stored."""
    return await insert_ignore(
        session,
        Notification,
        {
            "key": notification.key,
            "destination": notification.destination,
            "repository_id": notification.repository_id,
            "event": notification.event,
            "text": notification.text,
            "created_at": notification.created_at,
            "attempts": 0,
            "due_at": notification.due_at,
        },
        conflict=["key", "destination"],
    )


def _quote(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_QUOTE:
        text = text[: MAX_QUOTE - 1] + "…"
    return "\n".join(f"> {line}" for line in text.splitlines())


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
