"""INSERT ... ON CONFLICT for both supported databases (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


def dialect_insert(dialect_name: str, model: type[DeclarativeBase]) -> Any:
    """INSERT for `model` with the dialect's ON CONFLICT clauses."""
    return (postgresql.insert if dialect_name == "postgresql" else sqlite.insert)(model)


def _insert(session: AsyncSession, model: type[DeclarativeBase]) -> Any:
    return dialect_insert(session.get_bind().dialect.name, model)


async def insert_ignore(
    session: AsyncSession,
    model: type[DeclarativeBase],
    values: Mapping[str, Any],
    *,
    conflict: Sequence[str],
) -> bool:
    """Insert a row unless one with the same `conflict` key exists. True when inserted."""
    statement = (
        _insert(session, model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(conflict))
    )
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def upsert(
    session: AsyncSession,
    model: type[DeclarativeBase],
    values: Mapping[str, Any],
    *,
    conflict: Sequence[str],
    update: Sequence[str],
    where: ColumnElement[bool] | None = None,
) -> None:
    """Insert, or update the `update` columns of the existing row (only `where` it holds)."""
    statement = _insert(session, model).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=list(conflict),
        set_={name: statement.excluded[name] for name in update},
        where=where,
    )
    await session.execute(statement)
