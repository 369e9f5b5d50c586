"""Fresh, migrated databases for tests: SQLite files and PostgreSQL databases.

Each kind is migrated once per session with `alembic upgrade head` (as an operator
would), then copied per test: a file copy for SQLite, CREATE DATABASE ... TEMPLATE for
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

import asyncpg

from tests.support.processes import alembic_upgrade

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
PG_ADMIN_DB = "test"


def pg_url(database: str, driver: str = "postgresql+asyncpg") -> str:
    return f"{driver}://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


async def _admin(*statements: str) -> None:
    conn = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB, timeout=10
    )
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def pg_admin(*statements: str) -> None:
    asyncio.run(_admin(*statements))


class PostgresDatabases:
    def __init__(self) -> None:
        self.template = f"mq_tpl_{uuid.uuid4().hex[:10]}"
        self.created: list[str] = []

    def migrate_template(self) -> None:
        pg_admin(f'CREATE DATABASE "{self.template}"')
        alembic_upgrade(pg_url(self.template))

    def fresh(self) -> str:
        name = f"mq_{uuid.uuid4().hex[:12]}"
        pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.created.append(name)
        return pg_url(name)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drop_all(self) -> None:
        pg_admin(
            *(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in [*self.created, self.template])
        )


class SqliteDatabases:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.template = directory / "template.db"

    def migrate_template(self) -> None:
        alembic_upgrade(f"sqlite+aiosqlite:///{self.template}")

    def fresh(self) -> str:
        path = self.directory / f"{uuid.uuid4().hex[:12]}.db"
        shutil.copyfile(self.template, path)
        return f"sqlite+aiosqlite:///{path}"
