"""A PostgreSQL lock held from outside the processes under test, to stop them mid-work."""

from __future__ import annotations

import asyncio

import asyncpg


class HeldLock:
    """Runs `take(sql)` in a transaction it keeps open until `release()`."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("postgresql+asyncpg", "postgresql")
        self.runner = asyncio.Runner()
        self.conn: asyncpg.Connection | None = None

    def take(self, sql: str, *args: object) -> None:
        async def take() -> asyncpg.Connection:
            conn = await asyncpg.connect(self.url)
            await conn.execute("BEGIN")
            await conn.execute(sql, *args)
            return conn

        self.conn = self.runner.run(take())

    def waiting(self) -> int:
        """Backends of this database blocked on a lock right now."""

        async def count() -> int:
            assert self.conn is not None
            # Inside a transaction the statistics views are a snapshot taken at first use.
            await self.conn.execute("SELECT pg_stat_clear_snapshot()")
            return int(
                await self.conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )

        return self.runner.run(count())

    def release(self) -> None:
        if self.conn is not None:
            self.runner.run(self.conn.close())
            self.conn = None

    def close(self) -> None:
        self.release()
        self.runner.close()
