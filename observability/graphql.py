"""Counting GraphQL requests as `graphql_requests_total{operation_name,status}`.

Operation names come from clients, so only a bounded set becomes label values: a name
is kept if it is a well-formed GraphQL name of at most 64 characters and one of the
first `max_names` distinct names this process has seen. Anything else, and anonymous
operations, share the value `other` (docs/operations.md 4.1). With `uvicorn --workers N` each
process keeps its own set, so the bound is `max_names` per process.
"""

from __future__ import annotations

import re
import threading

from observability.metrics import GRAPHQL_REQUESTS

OTHER = "other"
SUCCESS = "success"
ERROR = "error"
MAX_NAMES = 50
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class GraphQLRequestCounter:
    def __init__(self, *, max_names: int = MAX_NAMES) -> None:
        self.max_names = max_names
        self._names: set[str] = set()
        self._lock = threading.Lock()

    def label(self, operation_name: str | None) -> str:
        if operation_name is None or not _NAME.fullmatch(operation_name):
            return OTHER
        with self._lock:
            if operation_name in self._names:
                return operation_name
            if len(self._names) < self.max_names:
                self._names.add(operation_name)
                return operation_name
        return OTHER

    def record(self, operation_name: str | None, *, success: bool) -> None:
        status = SUCCESS if success else ERROR
        GRAPHQL_REQUESTS.labels(self.label(operation_name), status).inc()
