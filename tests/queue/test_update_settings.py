"""`commands.update_settings`: a mapping of setting names, checked whole before anything
is written. One test per promise."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mergequeue.db import Database, create_database
from mergequeue.models import Repository
from mergequeue.queue import commands


@pytest.fixture
async def database(sqlite_url: str) -> AsyncIterator[Database]:
    database = create_database(sqlite_url)
    async with database.sessions() as session, session.begin():
        session.add(Repository(id=7, owner="octo", name="hello", default_branch="main"))
    yield database
    await database.dispose()


async def _update(database: Database, changes: dict[str, object]) -> None:
    async with database.sessions() as session, session.begin():
        repository = await session.get(Repository, 7)
        assert repository is not None
        await commands.update_settings(session=session, repository=repository, changes=changes)


async def _batch_size(database: Database) -> int | None:
    async with database.sessions() as session:
        repository = await session.get(Repository, 7)
        assert repository is not None
        return repository.batch_size


async def test_named_settings_change_none_resets_and_absent_ones_stay(
    database: Database,
) -> None:
    await _update(database, {"batch_size": 5, "failure_depth": 2})
    await _update(database, {"failure_depth": None})
    async with database.sessions() as session:
        repository = await session.get(Repository, 7)
        assert repository is not None
        assert (repository.batch_size, repository.failure_depth) == (5, None)


async def test_a_name_that_is_not_a_setting_is_a_programming_error_and_changes_nothing(
    database: Database,
) -> None:
    with pytest.raises(KeyError, match="batch_sise") as caught:
        await _update(database, {"batch_size": 5, "batch_sise": 5})
    assert not isinstance(caught.value, commands.InvalidSettings)
    assert await _batch_size(database) is None


async def test_a_bad_value_changes_nothing_and_names_its_field(database: Database) -> None:
    with pytest.raises(commands.InvalidSettings) as caught:
        await _update(database, {"batch_size": 5, "failure_depth": 99})
    assert caught.value.field == "failure_depth"
    assert await _batch_size(database) is None


async def test_of_several_bad_values_the_first_in_the_table_is_reported(
    database: Database,
) -> None:
    # Whatever order the client sent its fields in.
    with pytest.raises(commands.InvalidSettings) as caught:
        await _update(database, {"flaky_retries": 99, "queue_label": ""})
    assert caught.value.field == "queue_label"
