"""Single-process mode renders a copy of the registry's values in another process.

The copy and the mirror are pure data here; the child process is tested through
`Renderer` (tests/observability/test_renderer.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import pickle

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    Summary,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily

from observability import mirror
from observability.mirror import LayoutMissing, RegistryCopier, render_copy
from tests.support.metrics import OPENMETRICS


class _Custom:
    def collect(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily("custom_queue_depth", "a custom collector", value=7)]


def _every_kind() -> CollectorRegistry:
    registry = CollectorRegistry()
    PlatformCollector(registry=registry)
    durations = Histogram("req_seconds", "request time", ["path"], registry=registry)
    for n in range(40):
        exemplar = {"request_id": f"id-{n}"} if n % 3 == 0 else None
        durations.labels(f"/p{n}").observe(n / 20, exemplar=exemplar)
    jobs = Counter("jobs_total", "jobs", ["kind"], registry=registry)
    jobs.labels("a").inc(2, exemplar={"trace_id": "t1"})
    jobs.labels("b").inc(0.5)
    Counter("odd_total_total", "a counter whose name ends twice in _total", registry=registry).inc()
    Gauge("level", "a gauge", registry=registry).set(-3.25)
    Gauge("computed", "a gauge with a callback", registry=registry).set_function(lambda: 42)
    sizes = Summary("size", "a summary with a unit", ["x"], unit="bytes", registry=registry)
    sizes.labels("a").observe(1.5)
    Histogram("never_seen_seconds", "labelled, no label set yet", ["a"], registry=registry)
    Histogram("plain_seconds", "no labels", buckets=[0.1, 1], registry=registry).observe(0.5)
    Info("build", "an info", registry=registry).info({"version": "1.2.3"})
    Enum("state", "an enum", states=["up", "down"], registry=registry).state("down")
    registry.register(_Custom())
    registry.set_target_info({"env": "test"})
    return registry


async def _render_via_copy(registry: CollectorRegistry, accept: str) -> bytes:
    copy = await RegistryCopier(registry, slice_size=50).copy()
    # What crosses to the child: a pickle.
    return render_copy(accept, pickle.loads(pickle.dumps(copy)))


@pytest.fixture(autouse=True)
def _fresh_child_state() -> None:
    mirror._mirror = None  # each test starts like a newly spawned child


@pytest.mark.parametrize("accept", ["", OPENMETRICS], ids=["text", "openmetrics"])
async def test_a_copy_renders_exactly_what_the_registry_renders(accept: str) -> None:
    registry = _every_kind()
    encoder, _ = choose_encoder(accept)
    assert await _render_via_copy(registry, accept) == encoder(registry)


async def test_the_next_copy_carries_new_values_and_new_label_sets() -> None:
    registry = _every_kind()
    copier = RegistryCopier(registry)
    render_copy("", await copier.copy())
    jobs = registry._names_to_collectors["jobs_total"]
    assert isinstance(jobs, Counter)
    jobs.labels("a").inc(40)
    jobs.labels("brand-new").inc()
    registry.unregister(registry._names_to_collectors["level"])
    body = render_copy("", await copier.copy())
    assert body == choose_encoder("")[0](registry)
    assert b'jobs_total{kind="a"} 42.0' in body
    assert b'jobs_total{kind="brand-new"} 1.0' in body
    assert b"# TYPE level gauge" not in body


async def test_the_layout_changes_version_only_when_the_registry_changes_shape() -> None:
    registry = CollectorRegistry()
    counter = Counter("events_total", "events", ["kind"], registry=registry)
    counter.labels("a").inc()
    copier = RegistryCopier(registry)
    first = (await copier.copy()).version
    counter.labels("a").inc(5)  # a value: same shape
    assert (await copier.copy()).version == first
    counter.labels("b")  # a new label set
    second = (await copier.copy()).version
    assert second != first
    counter.remove("a")
    counter.labels("a")  # same labels, but a new child: its values are new objects
    third = (await copier.copy()).version
    assert third != second
    Gauge("other", "another metric", registry=registry)
    assert (await copier.copy()).version != third


async def test_a_child_without_the_layout_asks_for_it() -> None:
    registry = _every_kind()
    copy = await RegistryCopier(registry).copy()
    with pytest.raises(LayoutMissing):
        render_copy("", dataclasses.replace(copy, layout=None))
    render_copy("", copy)  # now it has this version
    assert render_copy("", dataclasses.replace(copy, layout=None)) == render_copy("", copy)


async def test_copying_gives_the_event_loop_a_turn_between_slices() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("wide_seconds", "many label sets", ["shard"], registry=registry)
    for shard in range(500):  # 500 x 16 values: 40 slices of 200
        histogram.labels(str(shard)).observe(0.1)
    turns = 0
    copying = True

    async def other_work() -> None:
        nonlocal turns
        while copying:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.ensure_future(other_work())
    await asyncio.sleep(0)
    turns = 0
    # A budget of 0: a turn at every check, one per slice of values.
    await RegistryCopier(registry, slice_size=200, budget=0).copy()
    copying = False
    await other
    assert turns >= 39
