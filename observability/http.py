"""The Flask-era `flask_http_request_*` metrics, recorded at a few microseconds a request.

Labels are bounded whatever clients send: `path` is the matched route template (one
constant for every unmatched URL), `method` is one of the standard methods or `OTHER`,
and `status` is the code the application answered.

Every request pays for this, and the instrumentation benchmark holds it to 5% of a
trivial request, so a request's series are bound once per label set and then written
straight to prometheus_client's per-bucket values (in-memory or, in multiprocess mode,
mmap-backed): `Histogram.observe` would scan the bounds linearly and check the child on
every call, and the exemplar needs the same bucket index again.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import Any

from prometheus_client.metrics import Counter, Histogram
from prometheus_client.values import MutexValue
from starlette.types import Scope

from observability.exemplars import HTTP_REQUEST_EXEMPLARS, LatestExemplars
from observability.metrics import HTTP_REQUEST_DURATION, HTTP_REQUEST_EXCEPTIONS, HTTP_REQUEST_TOTAL

UNMATCHED_PATH = "<unmatched>"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_PATH


class _Series:
    """One label set's duration histogram and request counter, bound once."""

    __slots__ = ("bounds", "buckets", "exemplars", "in_memory", "sum", "total")

    def __init__(self, histogram: Any, counter: Any, exemplars: LatestExemplars) -> None:
        # prometheus_client's own value objects, so exposition reads what is written here.
        self.bounds: list[float] = histogram._upper_bounds
        self.buckets: list[Any] = histogram._buckets
        self.sum: Any = histogram._sum
        self.total: Any = counter._value
        self.exemplars = exemplars.slots(histogram)
        # Exactly the in-memory float-and-lock class: anything else (the mmap values of
        # multiprocess mode, a future prometheus_client's) is written through its inc().
        self.in_memory = all(
            type(value) is MutexValue for value in (*self.buckets, self.sum, self.total)
        )


class HTTPMetrics:
    def __init__(
        self,
        exemplars: LatestExemplars = HTTP_REQUEST_EXEMPLARS,
        *,
        durations: Histogram = HTTP_REQUEST_DURATION,
        totals: Counter = HTTP_REQUEST_TOTAL,
    ) -> None:
        self._exemplars = exemplars
        self._durations = durations
        self._totals = totals
        # Keyed by (method label, path label, status code): no str(status) per request.
        self._series: dict[tuple[str, str, int], _Series] = {}

    def record(self, scope: Scope, status: int, duration: float, request_id: str) -> None:
        """Count one answered request; called on the event loop, like every other write."""
        method: str = scope["method"]
        if method not in KNOWN_METHODS:
            method = "OTHER"
        key = (method, route_template(scope), status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self._bind(key)
        # bisect_left finds the first bound >= duration: the bucket observe() would count.
        index = bisect_left(series.bounds, duration)
        if series.in_memory:
            # The event loop is these values' only writer, and a reader (a scrape) reads
            # one float: MutexValue's lock, taken three times a request, guards nothing.
            series.buckets[index]._value += 1
            series.sum._value += duration
            series.total._value += 1
            series.exemplars[index] = (request_id, duration, time.time())
        else:  # mmap-backed (multiprocess mode): written through to the process's file;
            # that mode exports no exemplars, so none is kept.
            series.buckets[index].inc(1)
            series.sum.inc(duration)
            series.total.inc(1)

    def record_exception(self, scope: Scope, duration: float, request_id: str) -> None:
        """An unhandled exception: counted with status 500 in all three metrics."""
        self.record(scope, 500, duration, request_id)
        method: str = scope["method"]
        HTTP_REQUEST_EXCEPTIONS.labels(method if method in KNOWN_METHODS else "OTHER", "500").inc()

    def _bind(self, key: tuple[str, str, int]) -> _Series:
        method, path, status = key
        histogram = self._durations.labels(method, path, str(status))
        counter = self._totals.labels(method, str(status))
        return _Series(histogram, counter, self._exemplars)
