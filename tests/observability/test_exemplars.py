"""Request-id exemplars recorded cheaply and handed to prometheus_client at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.openmetrics.exposition import generate_latest

from observability.exemplars import LatestExemplars


def histogram() -> tuple[Histogram, CollectorRegistry]:
    registry = CollectorRegistry()
    family = Histogram("t_seconds", "t", ["path"], buckets=(0.1, 1.0), registry=registry)
    return family, registry


def exemplars_of(registry: CollectorRegistry) -> dict[str, str]:
    text = generate_latest(registry).decode()
    found = {}
    for line in text.splitlines():
        if "_bucket" in line and " # " in line:
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            found[bound] = line.split('request_id="', 1)[1].split('"', 1)[0]
    return found


def test_the_latest_request_of_each_bucket_is_its_exemplar_once_flushed() -> None:
    family, registry = histogram()
    child = family.labels("/a")
    exemplars = LatestExemplars()
    for value, request_id in [(0.05, "first"), (0.07, "second"), (0.5, "mid"), (3.0, "slow")]:
        child.observe(value)
        exemplars.note(child, value, request_id)
    assert exemplars_of(registry) == {}  # nothing reaches prometheus_client until a scrape
    exemplars.flush()
    assert exemplars_of(registry) == {"0.1": "second", "1.0": "mid", "+Inf": "slow"}


def test_a_value_on_a_bound_lands_in_the_bucket_observe_counted() -> None:
    family, registry = histogram()
    child = family.labels("/b")
    exemplars = LatestExemplars()
    child.observe(0.1)  # le="0.1" includes 0.1
    exemplars.note(child, 0.1, "edge")
    exemplars.flush()
    assert exemplars_of(registry) == {"0.1": "edge"}


def test_later_requests_replace_the_exemplar_at_the_next_flush() -> None:
    family, registry = histogram()
    child = family.labels("/c")
    exemplars = LatestExemplars()
    exemplars.note(child, 0.5, "old")
    exemplars.flush()
    exemplars.note(child, 0.6, "new")
    exemplars.flush()
    assert exemplars_of(registry) == {"1.0": "new"}
