"""The database engine and sessions, built from settings (no module-level engine)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

# Errors that mean "the database is unavailable", not "this statement is wrong".
DATABASE_DOWN: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    OSError,
    TimeoutError,
)


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def create_database(url: str) -> Database:
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        # Fail fast when the server is gone: readiness and webhooks must answer 503 quickly.
        kwargs["connect_args"] = {"timeout": 5, "command_timeout": 30}
        # Sized for bursts of webhooks: connections opened past the pool are closed after
        # each use, and opening one costs more than the insert it serves.
        kwargs["pool_size"] = 20
        kwargs["max_overflow"] = 20
        kwargs["pool_timeout"] = 10
    else:
        kwargs["connect_args"] = {"timeout": 30}
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return Database(engine=engine, sessions=async_sessionmaker(engine, expire_on_commit=False))


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
    # WAL lets the web and worker processes read while the other writes; foreign keys are
    # off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
