"""ASGI app factories for tests that need a route production does not have.

Started with `uvicorn --factory tests.support.apps:NAME`: the real app, built the way
api.main builds it, plus one extra route.
"""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import Counter, Gauge, Histogram

from api.app import create_app
from mergequeue.settings import load_settings


class DeliberateFailure(RuntimeError):
    pass


def app_with_failing_route() -> FastAPI:
    app = create_app(load_settings())

    @app.get("/test/explode/{item}")
    async def explode(item: str) -> None:
        raise DeliberateFailure(f"deliberate failure for {item}")

    return app


# About 1,000 label sets and 20,000 exposition lines: a scrape takes a noticeable
# fraction of a second to render, long enough to see whether it stalls the event loop.
LARGE_REGISTRY_LABEL_SETS = 1_000


def app_with_large_registry() -> FastAPI:
    histogram = Histogram("test_large_registry_seconds", "Padding for exposition timing", ["shard"])
    counter = Counter(
        "test_large_registry_events_total", "Padding for exposition timing", ["shard"]
    )
    gauge = Gauge("test_large_registry_level", "Padding for exposition timing", ["shard"])
    for shard in range(LARGE_REGISTRY_LABEL_SETS):
        name = f"shard-{shard:04d}"
        histogram.labels(name).observe(shard / 1000)
        counter.labels(name).inc(shard)
        gauge.labels(name).set(shard)
    return create_app(load_settings())
