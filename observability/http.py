"""Pure-ASGI middleware recording the Flask-era `flask_http_request_*` metrics.

Labels are bounded whatever clients send: `path` is the matched route template (one
constant for every unmatched URL), `method` is one of the standard methods or `OTHER`,
and `status` is the code the application answered.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from prometheus_client.metrics import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observability import context
from observability.exemplars import HTTP_REQUEST_EXEMPLARS
from observability.metrics import HTTP_REQUEST_DURATION, HTTP_REQUEST_EXCEPTIONS, HTTP_REQUEST_TOTAL

UNMATCHED_PATH = "<unmatched>"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_PATH


class HTTPMetricsMiddleware:
    def __init__(self, app: ASGIApp, *, excluded_paths: Collection[str] = ()) -> None:
        self.app = app
        self.excluded_paths = frozenset(excluded_paths)
        # Bound label children, cached: `labels()` takes a lock and builds a key every call.
        self._durations: dict[tuple[str, str, str], Histogram] = {}
        self._totals: dict[tuple[str, str], Counter] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.excluded_paths:
            await self.app(scope, receive, send)
            return

        start = time.perf_counter()
        status = 500

        async def send_observing_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observing_status)
        except Exception:
            # Starlette's ServerErrorMiddleware, outside us, turns this into the 500 answer.
            self._record(scope, "500", time.perf_counter() - start)
            method = _method_label(scope)
            HTTP_REQUEST_EXCEPTIONS.labels(method, "500").inc()
            raise
        self._record(scope, str(status), time.perf_counter() - start)

    def _record(self, scope: Scope, status: str, duration: float) -> None:
        method = _method_label(scope)
        path = route_template(scope)
        key = (method, path, status)
        histogram = self._durations.get(key)
        if histogram is None:
            histogram = self._durations[key] = HTTP_REQUEST_DURATION.labels(*key)
        histogram.observe(duration)
        request_id = context.request_id.get()
        if request_id is not None:
            HTTP_REQUEST_EXEMPLARS.note(histogram, duration, request_id)
        counter = self._totals.get((method, status))
        if counter is None:
            counter = self._totals[(method, status)] = HTTP_REQUEST_TOTAL.labels(method, status)
        counter.inc()


def _method_label(scope: Scope) -> str:
    method: str = scope["method"]
    return method if method in KNOWN_METHODS else "OTHER"
