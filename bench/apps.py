"""ASGI app factories the benchmarks serve with `uvicorn --factory bench.apps:NAME`.

The four request-instrumentation variants serve the same trivial route; only what wraps
it differs. Each runs in its own process, so their metrics never share a registry.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable

from fastapi import FastAPI
from prometheus_client import Counter, Gauge, Histogram
from starlette.types import Message, Receive, Scope, Send

ROUTE = "/items/{item_id}"


def _with_route(app: FastAPI) -> FastAPI:
    @app.get(ROUTE)
    async def item(item_id: int) -> dict[str, int | str]:
        return {"id": item_id, "name": "widget"}

    return app


def plain() -> FastAPI:
    return _with_route(FastAPI())


def mergequeue() -> FastAPI:
    # As api.app.create_app builds it: the request id and the metrics in the outermost
    # layer, in place of Starlette's catch-all for unhandled exceptions.
    from observability.middleware import InstrumentedFastAPI

    return _with_route(InstrumentedFastAPI())


def mergequeue_without_request_ids() -> FastAPI:
    """Ablation, not shipped: the same outermost layer without its request id.

    Same status capture, clock and `HTTPMetrics.record` as the real layer, but no id
    read or made, no context variable, no `X-Request-ID` answered: what the id costs is
    the difference between this variant and "mergequeue".
    """
    from observability.middleware import InstrumentedFastAPI, RequestInstrumentation

    class MetricsOnly(RequestInstrumentation):
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await self.app(scope, receive, send)
                return
            status = 500

            def send_status(message: Message) -> Awaitable[None]:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                return send(message)

            start = time.perf_counter()
            await self.app(scope, receive, send_status)
            self._metrics.record(scope, status, time.perf_counter() - start, "ablation-no-id")

    class App(InstrumentedFastAPI):
        instrumentation = MetricsOnly

    return _with_route(App())


def starlette_exporter() -> FastAPI:
    from starlette_exporter import PrometheusMiddleware, handle_metrics

    app = _with_route(FastAPI())
    app.add_middleware(PrometheusMiddleware)
    app.add_route("/metrics", handle_metrics)
    return app


def instrumentator() -> FastAPI:
    from prometheus_fastapi_instrumentator import Instrumentator

    app = _with_route(FastAPI())
    Instrumentator().instrument(app).expose(app)
    return app


# About 1,000 label sets and 20,000 exposition lines, as in the scrape-under-load scenario.
LARGE_REGISTRY_LABEL_SETS = 1_000


def large_registry() -> FastAPI:
    """The real application (settings from the environment) plus a large registry."""
    from contextlib import asynccontextmanager

    from api.app import create_app
    from mergequeue.settings import load_settings

    app = create_app(load_settings())
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with started(app):
            # After the app's start-up: in multiprocess mode it empties the directory.
            _pad_registry()
            yield

    app.router.lifespan_context = lifespan
    return app


def _pad_registry() -> None:
    histogram = Histogram("bench_padding_seconds", "Padding for exposition timing", ["shard"])
    counter = Counter("bench_padding_events_total", "Padding for exposition timing", ["shard"])
    gauge = Gauge(
        "bench_padding_level", "Padding for exposition timing", ["shard"], multiprocess_mode="max"
    )
    for shard in range(LARGE_REGISTRY_LABEL_SETS):
        name = f"shard-{shard:04d}"
        histogram.labels(name).observe(shard / 1000)
        counter.labels(name).inc(shard)
        gauge.labels(name).set(shard)
