"""observability/db.py: SQL statements timed by operation, failures included."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from mergequeue.db import create_database
from observability.db import install_query_timing, operation_of, query_timing_installed


def _count(operation: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "sqlalchemy_query_latency_seconds_count", {"operation": operation}
        )
        or 0.0
    )


@pytest.mark.parametrize(
    ("statement", "operation"),
    [
        ("SELECT 1", "select"),
        ("  select * from x", "select"),
        ("INSERT INTO t VALUES (1)", "insert"),
        ("UPDATE t SET a = 1", "update"),
        ("DELETE FROM t", "delete"),
        ("WITH q AS (SELECT 1) DELETE FROM t WHERE a IN (SELECT * FROM q)", "delete"),
        ("WITH a AS (UPDATE t SET x = 1 RETURNING *) SELECT * FROM a", "select"),
        ("PRAGMA journal_mode=WAL", "other"),
        ("BEGIN", "other"),
        ("", "other"),
    ],
)
def test_operation_is_the_statement_verb(statement: str, operation: str) -> None:
    assert operation_of(statement) == operation


async def test_successful_and_failed_queries_are_both_timed(tmp_path: Path) -> None:
    database = create_database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    install_query_timing(database.engine)
    select_before, other_before = _count("select"), _count("other")
    async with database.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        with pytest.raises(OperationalError):
            await conn.execute(text("SELECT * FROM no_such_table"))
        with pytest.raises(OperationalError):
            await conn.execute(text("NONSENSE STATEMENT"))
    await database.dispose()
    assert _count("select") == select_before + 2
    assert _count("other") >= other_before + 1


async def test_no_listener_is_installed_unless_asked(tmp_path: Path) -> None:
    database = create_database(f"sqlite+aiosqlite:///{tmp_path / 'y.db'}")
    assert not query_timing_installed(database.engine)
    install_query_timing(database.engine)
    assert query_timing_installed(database.engine)
    await database.dispose()


async def test_timing_leaves_sqlalchemy_connection_events_off(tmp_path: Path) -> None:
    # Any engine-level listener makes SQLAlchemy dispatch events on every connection,
    # transaction and statement: ten times the CPU of the timing itself.
    database = create_database(f"sqlite+aiosqlite:///{tmp_path / 'z.db'}")
    install_query_timing(database.engine)
    select_before = _count("select")
    async with database.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        assert not conn.sync_connection._has_events  # type: ignore[union-attr]
    assert not database.engine.sync_engine._has_events
    assert _count("select") == select_before + 1
    await database.dispose()
