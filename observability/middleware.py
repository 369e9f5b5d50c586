"""The outermost layer of every request: its id, its `flask_http_request_*` metrics, and
Starlette's last-resort 500 answer, in one pure-ASGI middleware.

Starlette always puts `ServerErrorMiddleware` outermost, to answer 500 when an exception
escapes everything else. Its only other work is an `async` wrapper around `send`: two
coroutines a request. Instrumenting there, in its place, costs less than any layer of
our own inside it, and the 500 answer then carries the request id like every other
(inside Starlette's layer, that answer bypassed ours). The instrumentation benchmark
holds all of this to 5% of a trivial request.

The request id is set before anything inside runs, so logs, exemplars and answers from
inner middlewares (the `/debug` network guard's 403) all carry it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection
from time import perf_counter

from fastapi import FastAPI
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, ExceptionHandler, Message, Receive, Scope, Send

from observability import context
from observability.http import HTTPMetrics
from observability.request_id import HEADER, RequestIds


class RequestInstrumentation(ServerErrorMiddleware):
    def __init__(
        self,
        app: ASGIApp,
        handler: ExceptionHandler | None = None,
        debug: bool = False,
        *,
        uncounted_paths: Collection[str] = (),
    ) -> None:
        super().__init__(app, handler=handler, debug=debug)
        # Answered with a request id like any other, but not counted (the metrics endpoint).
        self.uncounted_paths = frozenset(uncounted_paths)
        self._ids = RequestIds()
        self._metrics = HTTPMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self._ids.for_request(scope)
        header = (HEADER, request_id.encode())
        status: int | None = None  # until the answer starts

        def send_with_id(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            return send(message)

        token = context.request_id.set(request_id)
        start = perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if scope["path"] not in self.uncounted_paths:
                self._metrics.record_exception(scope, perf_counter() - start, request_id)
            if status is None:
                response = await self._error_answer(scope, exc)
                await response(scope, receive, send_with_id)
            # Re-raised, as Starlette does, so that the server logs it.
            raise
        finally:
            context.request_id.reset(token)
        if scope["path"] not in self.uncounted_paths:
            # No answer at all: the server answers 500 for the application.
            self._metrics.record(
                scope, 500 if status is None else status, perf_counter() - start, request_id
            )

    async def _error_answer(self, scope: Scope, exc: Exception) -> Response:
        # The answer ServerErrorMiddleware would choose: its traceback page in debug mode,
        # the application's handler for 500/Exception if it has one, else a plain 500.
        request = Request(scope)
        if self.debug:
            return await run_in_threadpool(self.debug_response, request, exc)
        if self.handler is None:
            return self.error_response(request, exc)
        if is_async_callable(self.handler):
            return await self.handler(request, exc)  # type: ignore[return-value, arg-type]
        return await run_in_threadpool(self.handler, request, exc)  # type: ignore[arg-type]


class InstrumentedFastAPI(FastAPI):
    """A FastAPI application whose outermost layer is `RequestInstrumentation`.

    Set `uncounted_paths` before the first request: they are answered with a request id
    but not counted (the metrics endpoint).
    """

    uncounted_paths: Collection[str] = ()
    instrumentation: type[RequestInstrumentation] = RequestInstrumentation

    def build_middleware_stack(self) -> ASGIApp:
        outermost = super().build_middleware_stack()
        if not isinstance(outermost, ServerErrorMiddleware):  # a future FastAPI's layout
            raise TypeError(f"expected ServerErrorMiddleware outermost, got {outermost!r}")
        return self.instrumentation(
            outermost.app,
            handler=outermost.handler,
            debug=outermost.debug,
            uncounted_paths=self.uncounted_paths,
        )
