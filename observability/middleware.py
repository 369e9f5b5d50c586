"""One pure-ASGI middleware for every request: its id, and its `flask_http_request_*` metrics.

One layer rather than a request-id middleware around a metrics middleware: each layer
costs a coroutine frame per request and a `send` wrapper called twice per response, and
the instrumentation benchmark holds all of it to 5% of a trivial request.

The request id is set before anything inside runs, so logs, exemplars and answers from
inner middlewares (the `/debug` network guard's 403) all carry it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observability import context
from observability.http import HTTPMetrics
from observability.request_id import HEADER, RequestIds


class RequestInstrumentation:
    def __init__(self, app: ASGIApp, *, excluded_paths: Collection[str] = ()) -> None:
        self.app = app
        # Answered with a request id like any other, but not counted (the metrics endpoint).
        self.excluded_paths = frozenset(excluded_paths)
        self._ids = RequestIds()
        self._metrics = HTTPMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self._ids.for_request(scope)
        header = (HEADER, request_id.encode())
        status = 500

        def send_with_id(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            return send(message)

        token = context.request_id.set(request_id)
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Starlette's ServerErrorMiddleware, outside us, turns this into the 500 answer.
            if scope["path"] not in self.excluded_paths:
                self._metrics.record_exception(scope, time.perf_counter() - start, request_id)
            raise
        finally:
            context.request_id.reset(token)
        if scope["path"] not in self.excluded_paths:
            self._metrics.record(scope, status, time.perf_counter() - start, request_id)
