"""Writing the state changes of a delivery to the database."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import assert_never

from sqlalchemy import delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from mergequeue.models import Installation, PullRequest, Repository, utcnow
from mergequeue.queue.config_file import ConfigFileRead, apply_config_file
from mergequeue.queue.effective import effective_settings
from mergequeue.queue.intake import QueueChange, apply_queue_change
from mergequeue.queue.store import SqlQueueStore
from mergequeue.repositories import save_repository
from mergequeue.settings import Settings
from mergequeue.upsert import insert_ignore, upsert
from mergequeue.webhooks.events import (
    Change,
    ConfigFileChanged,
    DeleteInstallation,
    DetachRepository,
    LabelChanged,
    PullRequestClosed,
    QueueCommand,
    SyncInstallation,
    UpsertInstallation,
    UpsertPullRequest,
    UpsertRepository,
    WakeQueue,
)

log = logging.getLogger("mergequeue.webhooks")


async def apply_changes(
    session: AsyncSession,
    changes: Sequence[Change],
    *,
    settings: Settings,
    received_at: datetime | None = None,
    refused: frozenset[int] = frozenset(),
    config_files: Mapping[int, ConfigFileRead] | None = None,
) -> list[Change]:
    """Apply state changes, queue commands included; return the follow-ups (wake-ups, syncs).

    `refused` names the comments whose commands the author may not give: each gets a
    reply and changes nothing. `config_files` holds, by repository id, the settings file
    the worker read for a `ConfigFileChanged` (none read: nothing changes).
    """
    follow_up: list[Change] = []
    for change in changes:
        match change:
            case UpsertInstallation():
                values: dict[str, object] = {
                    "id": change.id,
                    "account_login": change.account_login,
                    "suspended": change.suspended,
                }
                if change.actions_write is not None:
                    values["actions_write"] = change.actions_write
                await upsert(
                    session,
                    Installation,
                    values,
                    conflict=["id"],
                    update=[name for name in values if name != "id"],
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
            case QueueCommand() | LabelChanged() | PullRequestClosed():
                await _queue_change(session, change, settings, received_at, refused)
            case ConfigFileChanged():
                read = (config_files or {}).get(change.repository_id)
                repository = await session.get(Repository, change.repository_id)
                if read is not None and repository is not None:
                    await apply_config_file(session, repository, read)
            case WakeQueue() | SyncInstallation():
                follow_up.append(change)
            case _:
                assert_never(change)
    return follow_up


async def _queue_change(
    session: AsyncSession,
    change: QueueChange,
    settings: Settings,
    received_at: datetime | None,
    refused: frozenset[int],
) -> None:
    repository = await session.get(Repository, change.repository_id)
    if repository is None:
        return
    await apply_queue_change(
        store=SqlQueueStore(session),
        repository=repository,
        settings=effective_settings(repository, settings),
        change=change,
        received_at=received_at or utcnow(),
        refused=refused,
    )


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
