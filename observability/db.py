"""`sqlalchemy_query_latency_seconds{operation}`: timing every SQL statement.

Installed only when ENABLE_DB_METRICS is on; off means no listener at all, so no cost.
The start time lives on the execution context, not the pooled connection, so a failed
statement cannot leave a stale value behind; failures are timed in `handle_error`,
because `after_cursor_execute` does not fire for them.
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.engine.interfaces import ExecutionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from observability.metrics import DB_QUERY_LATENCY

OPERATIONS = frozenset({"select", "insert", "update", "delete"})
_START = "_mergequeue_query_start"


def operation_of(statement: str) -> str:
    head = statement.lstrip(" \t\r\n(").split(None, 1)
    word = head[0].lower() if head else ""
    if word == "with":
        return _operation_after_ctes(statement)
    return word if word in OPERATIONS else "other"


def _operation_after_ctes(statement: str) -> str:
    # The statement's verb is the first one outside the CTEs' parentheses.
    depth = 0
    for token in re.findall(r"\(|\)|[A-Za-z_]+", statement):
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif depth == 0 and token.lower() in OPERATIONS:
            return str(token).lower()
    return "other"


def _before(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: ExecutionContext | None,
    executemany: bool,
) -> None:
    if context is not None:
        setattr(context, _START, time.perf_counter())


def _after(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: ExecutionContext | None,
    executemany: bool,
) -> None:
    _observe(statement, context)


def _error(exception_context: ExceptionContext) -> None:
    statement = exception_context.statement
    if statement is not None:
        _observe(statement, exception_context.execution_context)


def _observe(statement: str, context: ExecutionContext | None) -> None:
    start = getattr(context, _START, None) if context is not None else None
    if start is None:
        return
    DB_QUERY_LATENCY.labels(operation_of(statement)).observe(time.perf_counter() - start)


def install_query_timing(engine: AsyncEngine) -> None:
    # Events attach to the sync engine; the async facade refuses them.
    sync_engine = engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", _before)
    event.listen(sync_engine, "after_cursor_execute", _after)
    event.listen(sync_engine, "handle_error", _error)


def query_timing_installed(engine: AsyncEngine) -> bool:
    return event.contains(engine.sync_engine, "before_cursor_execute", _before)
