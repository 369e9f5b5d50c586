"""Whether an installation granted `actions: write` (parallel mode may then cancel the
GitHub Actions runs of the builds it drops): read from the `installation` webhooks, kept
in the database, refreshed from each installation token, and resolved into the
repository's effective settings."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.evaluate import _note_granted
from mergequeue.db import create_database
from mergequeue.models import Base, Installation, Repository
from mergequeue.queue.effective import effective_settings
from mergequeue.settings import load_settings
from mergequeue.webhooks.apply import apply_changes
from mergequeue.webhooks.events import UpsertInstallation, interpret
from tests.support import webhooks


def granting(name: str, actions: str | None) -> dict[str, Any]:
    payload = copy.deepcopy(webhooks.fixture(name))
    permissions = payload["installation"]["permissions"]
    if actions is None:
        permissions.pop("actions", None)
    else:
        permissions["actions"] = actions
    return payload


def upserted(event: str, payload: Mapping[str, Any]) -> UpsertInstallation:
    [change] = [c for c in interpret(event, payload) if isinstance(c, UpsertInstallation)]
    return change


@pytest.mark.parametrize(
    ("event", "name"),
    [
        ("installation", "installation.created"),
        ("installation_repositories", "installation_repositories.added"),
    ],
)
def test_installation_webhooks_say_whether_actions_write_was_granted(event: str, name: str) -> None:
    assert upserted(event, granting(name, "write")).actions_write is True
    assert upserted(event, granting(name, "read")).actions_write is False
    assert upserted(event, granting(name, None)).actions_write is False
    silent = granting(name, None)
    del silent["installation"]["permissions"]
    assert upserted(event, silent).actions_write is None


def test_new_permissions_accepted_carries_the_new_grant() -> None:
    payload = granting("installation.created", "write")
    payload["action"] = "new_permissions_accepted"
    assert upserted("installation", payload).actions_write is True


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[AsyncSession]:
    database = create_database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with database.sessions() as session:
        yield session
    await database.dispose()


async def test_the_database_keeps_the_last_grant_a_webhook_stated(session: AsyncSession) -> None:
    async def apply(actions_write: bool | None) -> bool:
        change = UpsertInstallation(5, "octo", False, actions_write)
        await apply_changes(session, [change], settings=load_settings({}))
        await session.commit()
        stored = await session.get(Installation, 5, populate_existing=True)
        assert stored is not None
        return stored.actions_write

    assert await apply(None) is False  # not known: not granted
    assert await apply(True) is True
    assert await apply(None) is True  # a payload that does not say changes nothing
    assert await apply(False) is False


class TokenClient:
    """The part of `GitHubClient` `_note_granted` reads."""

    def __init__(self, granted: Mapping[str, str] | None) -> None:
        self.granted = granted

    def granted_permissions(self) -> Mapping[str, str] | None:
        return self.granted


def note(installation: Installation, granted: Mapping[str, str] | None) -> bool:
    return _note_granted(installation, TokenClient(granted))  # type: ignore[arg-type]


def test_each_installation_token_refreshes_the_grant() -> None:
    installation = Installation(id=5, account_login="octo", suspended=False, actions_write=False)
    assert note(installation, None) is False  # no token yet: nothing learnt
    assert note(installation, {"actions": "write", "contents": "write"}) is True
    assert installation.actions_write is True
    assert note(installation, {"actions": "write"}) is False  # unchanged: nothing to commit
    assert note(installation, {"contents": "write"}) is True
    assert installation.actions_write is False


def test_only_an_installation_that_granted_actions_write_has_runs_cancelled() -> None:
    repository = Repository(id=1, owner="octo", name="hello", paused=False)
    settings = load_settings({})

    def cancels(installation: Installation | None) -> bool:
        return effective_settings(repository, settings, installation).cancel_workflow_runs

    assert cancels(None) is False  # unknown, or a single token
    assert cancels(Installation(id=5, account_login="octo", actions_write=False)) is False
    assert cancels(Installation(id=5, account_login="octo", actions_write=True)) is True


def test_flaky_retries_are_in_effect_only_in_parallel_mode_with_actions_write() -> None:
    settings = load_settings({})
    granted = Installation(id=5, account_login="octo", actions_write=True)
    refused = Installation(id=5, account_login="octo", actions_write=False)

    def in_effect(installation: Installation | None, mode: str = "parallel", n: int = 2) -> bool:
        repository = Repository(
            id=1, owner="octo", name="hello", paused=False, queue_mode=mode, flaky_retries=n
        )
        return effective_settings(repository, settings, installation).flaky_retries_in_effect

    assert in_effect(granted) is True
    assert in_effect(refused) is False
    assert in_effect(None) is False  # unknown, or a single token
    assert in_effect(granted, mode="serial") is False
    assert in_effect(granted, n=0) is False
    suspended = Installation(id=5, account_login="octo", actions_write=True, suspended=True)
    assert in_effect(suspended) is False
