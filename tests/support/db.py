"""Reading the service's database from tests (synchronously, through the app's models)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, text

from mergequeue.db import create_database


async def _rows(url: str, statement: Select[Any]) -> Sequence[Any]:
    database = create_database(url)
    try:
        async with database.sessions() as session:
            return (await session.execute(statement)).all()
    finally:
        await database.dispose()


def rows(url: str, statement: Select[Any]) -> Sequence[Any]:
    return asyncio.run(_rows(url, statement))


async def _execute(url: str, sql: str) -> None:
    database = create_database(url)
    try:
        async with database.engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await database.dispose()


def execute(url: str, sql: str) -> None:
    asyncio.run(_execute(url, sql))
