"""Writing the state changes of a delivery to the database."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import assert_never

from sqlalchemy import ColumnElement, case, delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from mergequeue.models import CheckResult, Installation, PullRequest, Repository, utcnow
from mergequeue.queue import commands
from mergequeue.queue.decide import DequeueReason
from mergequeue.repositories import save_repository
from mergequeue.upsert import insert_ignore, upsert
from mergequeue.webhooks.events import (
    Change,
    DeleteInstallation,
    DetachRepository,
    LabelChanged,
    PullRequestClosed,
    QueueCommand,
    RecordCheck,
    SyncInstallation,
    UpsertInstallation,
    UpsertPullRequest,
    UpsertRepository,
    WakeQueue,
)

log = logging.getLogger("mergequeue.webhooks")

_STATUS_RANK = {"queued": 0, "requested": 0, "waiting": 0, "pending": 0, "in_progress": 1}


def _rank(column: InstrumentedAttribute[str]) -> ColumnElement[int]:
    return case(
        *((column == status, rank) for status, rank in _STATUS_RANK.items()),
        else_=2,
    )


async def apply_changes(
    session: AsyncSession,
    changes: Sequence[Change],
    *,
    default_label: str,
    received_at: datetime | None = None,
) -> list[Change]:
    """Apply state changes, queue commands included; return the follow-ups (wake-ups, syncs)."""
    follow_up: list[Change] = []
    for change in changes:
        match change:
            case UpsertInstallation():
                await upsert(
                    session,
                    Installation,
                    {
                        "id": change.id,
                        "account_login": change.account_login,
                        "suspended": change.suspended,
                    },
                    conflict=["id"],
                    update=["account_login", "suspended"],
                )
            case DeleteInstallation():
                await session.execute(delete(Installation).where(Installation.id == change.id))
            case UpsertRepository():
                await _ensure_installation(session, change.installation_id)
                await save_repository(
                    session,
                    id=change.id,
                    owner=change.owner,
                    name=change.name,
                    default_branch=change.default_branch,
                    installation_id=change.installation_id,
                )
            case DetachRepository():
                await session.execute(
                    update(Repository)
                    .where(Repository.id == change.id)
                    .values(installation_id=None)
                )
            case UpsertPullRequest():
                await upsert(
                    session,
                    PullRequest,
                    {
                        "repository_id": change.repository_id,
                        "number": change.number,
                        "title": change.title,
                        "author": change.author,
                        "head_sha": change.head_sha,
                        "head_ref": change.head_ref,
                        "base_ref": change.base_ref,
                        "state": change.state,
                        "labels": list(change.labels),
                        "github_updated_at": change.github_updated_at,
                        "updated_at": utcnow(),
                    },
                    conflict=["repository_id", "number"],
                    update=[
                        "title",
                        "author",
                        "head_sha",
                        "head_ref",
                        "base_ref",
                        "state",
                        "labels",
                        "github_updated_at",
                        "updated_at",
                    ],
                    # A delivery processed late must not roll a pull request back in time.
                    where=or_(
                        PullRequest.github_updated_at.is_(None),
                        PullRequest.github_updated_at <= change.github_updated_at,
                    )
                    if change.github_updated_at is not None
                    else None,
                )
            case RecordCheck():
                await upsert(
                    session,
                    CheckResult,
                    {
                        "repository_id": change.repository_id,
                        "sha": change.sha,
                        "name": change.name,
                        "kind": change.kind,
                        "github_id": change.github_id,
                        "status": change.status,
                        "conclusion": change.conclusion,
                        "updated_at": utcnow(),
                    },
                    conflict=["repository_id", "sha", "name"],
                    update=["kind", "github_id", "status", "conclusion", "updated_at"],
                    # A re-run (higher id) supersedes; the same run only moves forward.
                    where=or_(
                        CheckResult.github_id < change.github_id,
                        (CheckResult.github_id == change.github_id)
                        & (_rank(CheckResult.status) <= _STATUS_RANK.get(change.status, 2)),
                    ),
                )
            case QueueCommand() | LabelChanged() | PullRequestClosed():
                await _queue_change(session, change, default_label, received_at)
            case WakeQueue() | SyncInstallation():
                follow_up.append(change)
            case _:
                assert_never(change)
    return follow_up


async def _queue_change(
    session: AsyncSession,
    change: QueueCommand | LabelChanged | PullRequestClosed,
    default_label: str,
    received_at: datetime | None,
) -> None:
    repository = await session.get(Repository, change.repository_id)
    if repository is None:
        return
    try:
        match change:
            case QueueCommand(command="merge"):
                await commands.enqueue(
                    session=session,
                    repository=repository,
                    number=change.number,
                    by=change.author,
                    at=received_at,
                )
            case QueueCommand():
                await commands.dequeue(
                    session=session,
                    repository=repository,
                    number=change.number,
                    reason=DequeueReason.CANCELLED.value,
                )
            case LabelChanged() if change.label == (repository.queue_label or default_label):
                if change.added:
                    await commands.enqueue(
                        session=session,
                        repository=repository,
                        number=change.number,
                        by=change.by,
                        at=received_at,
                    )
                else:
                    await commands.dequeue(
                        session=session,
                        repository=repository,
                        number=change.number,
                        reason=DequeueReason.UNLABELED.value,
                    )
            case PullRequestClosed():
                await commands.leave_closed(
                    session=session,
                    repository=repository,
                    number=change.number,
                    merged=change.merged,
                )
    except commands.QueueError as exc:
        # Already queued, not queued, closed: nothing to do, which is fine for a webhook.
        log.info("queue command without effect: %s", exc)


async def _ensure_installation(session: AsyncSession, installation_id: int | None) -> None:
    # A repository event can arrive before (or without) its installation event.
    if installation_id is None:
        return
    await insert_ignore(
        session,
        Installation,
        {"id": installation_id, "account_login": "", "suspended": False},
        conflict=["id"],
    )
