"""Request-id exemplars recorded cheaply and handed to prometheus_client at scrape time."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.openmetrics.exposition import generate_latest

from observability.exemplars import LatestExemplars
from observability.http import HTTPMetrics


def recorder() -> tuple[HTTPMetrics, LatestExemplars, CollectorRegistry]:
    """The request metrics' writer, on a registry and exemplar store of the test's own."""
    registry = CollectorRegistry()
    durations = Histogram(
        "t_seconds", "t", ["method", "path", "status"], buckets=(0.1, 1.0), registry=registry
    )
    totals = Counter("t_requests", "t", ["method", "status"], registry=registry)
    exemplars = LatestExemplars()
    return HTTPMetrics(exemplars, durations=durations, totals=totals), exemplars, registry


def scope(path: str) -> dict[str, object]:
    return {"method": "GET", "route": SimpleNamespace(path=path)}


def exemplars_of(registry: CollectorRegistry) -> dict[str, str]:
    text = generate_latest(registry).decode()
    found = {}
    for line in text.splitlines():
        if "_bucket" in line and " # " in line:
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            found[bound] = line.split('request_id="', 1)[1].split('"', 1)[0]
    return found


def test_the_latest_request_of_each_bucket_is_its_exemplar_once_flushed() -> None:
    metrics, exemplars, registry = recorder()
    for value, request_id in [(0.05, "first"), (0.07, "second"), (0.5, "mid"), (3.0, "slow")]:
        metrics.record(scope("/a"), 200, value, request_id)
    assert exemplars_of(registry) == {}  # nothing reaches prometheus_client until a scrape
    exemplars.flush()
    assert exemplars_of(registry) == {"0.1": "second", "1.0": "mid", "+Inf": "slow"}


def test_a_value_on_a_bound_lands_in_the_bucket_observe_counted() -> None:
    metrics, exemplars, registry = recorder()
    metrics.record(scope("/b"), 200, 0.1, "edge")  # le="0.1" includes 0.1
    exemplars.flush()
    assert exemplars_of(registry) == {"0.1": "edge"}


def test_later_requests_replace_the_exemplar_at_the_next_flush() -> None:
    metrics, exemplars, registry = recorder()
    metrics.record(scope("/c"), 200, 0.5, "old")
    exemplars.flush()
    metrics.record(scope("/c"), 200, 0.6, "new")
    exemplars.flush()
    assert exemplars_of(registry) == {"1.0": "new"}
