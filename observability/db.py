"""`sqlalchemy_query_latency_seconds{operation}`: timing every SQL statement.

Installed only when ENABLE_DB_METRICS is on; off means no listener at all, so no cost.
Each DBAPI call is timed around itself (`_Timer`), so a failed statement is timed like
any other and no start time is left behind anywhere.
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine.interfaces import ExecutionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from observability.metrics import DB_QUERY_LATENCY

OPERATIONS = frozenset({"select", "insert", "update", "delete"})


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


class _Timer:
    """Times the dialect's own execute calls, whatever their outcome.

    The timing wraps the DBAPI call through SQLAlchemy's dialect-level `do_execute*`
    hooks, not the engine's `before/after_cursor_execute`: any engine-level listener
    switches on SQLAlchemy's event dispatch for every connection and transaction (a
    joined dispatcher per connection, each begin/commit/execute looked up). Measured on
    GET /api/v1/repos (one statement) against a process without timing: +2.2% CPU per
    request that way, +0.2% this way. A handler returning True tells SQLAlchemy the call
    was made.
    """

    def __init__(self) -> None:
        # Bound once per operation: labels() takes a lock and builds a key every call.
        self._series: dict[str, Any] = {}

    def observe(self, statement: str, seconds: float) -> None:
        operation = operation_of(statement)
        series = self._series.get(operation)
        if series is None:
            series = self._series[operation] = DB_QUERY_LATENCY.labels(operation)
        series.observe(seconds)

    def execute(
        self, cursor: Any, statement: str, parameters: Any, context: ExecutionContext
    ) -> bool:
        start = time.perf_counter()
        try:
            context.dialect.do_execute(cursor, statement, parameters, context)
        finally:
            self.observe(statement, time.perf_counter() - start)
        return True

    def executemany(
        self, cursor: Any, statement: str, parameters: Any, context: ExecutionContext
    ) -> bool:
        start = time.perf_counter()
        try:
            context.dialect.do_executemany(cursor, statement, parameters, context)
        finally:
            self.observe(statement, time.perf_counter() - start)
        return True

    def execute_no_params(self, cursor: Any, statement: str, context: ExecutionContext) -> bool:
        start = time.perf_counter()
        try:
            context.dialect.do_execute_no_params(cursor, statement, context)
        finally:
            self.observe(statement, time.perf_counter() - start)
        return True


def install_query_timing(engine: AsyncEngine) -> None:
    # Dialect events attach through the sync engine; the async facade refuses them.
    timer = _Timer()
    sync_engine = engine.sync_engine
    event.listen(sync_engine, "do_execute", timer.execute)
    event.listen(sync_engine, "do_executemany", timer.executemany)
    event.listen(sync_engine, "do_execute_no_params", timer.execute_no_params)


def query_timing_installed(engine: AsyncEngine) -> bool:
    return any(
        isinstance(getattr(listener, "__self__", None), _Timer)
        for listener in engine.sync_engine.dialect.dispatch.do_execute
    )
