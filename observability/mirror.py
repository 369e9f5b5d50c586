"""Rendering this process's registry in another process, from a copy of its values.

In single-process mode the samples and the request-id exemplars exist only in this
process's memory, and rendering a large registry is ~0.2 s of pure Python: on the event
loop or in a thread (which holds the GIL) every request arriving meanwhile waits for it.
A fork per scrape gives a child a copy for free, but the parent then pays a page fault for
every page it writes while the copy is shared, which the scrape benchmark measured.

So the registry is split in two. Its shape (each metric's name, help, type, label names,
buckets and label sets) changes rarely and is sent to a long-lived child only when it
changed; its values are copied on the event loop, where every metric write happens, a few
thousand floats at a time with the loop free between, and sent as one array. The child
keeps a mirror of every metric built from prometheus_client's own classes, sets the
copied values into it and renders it with prometheus_client's own encoders: the same
answer as rendering here, exemplars included.

Collectors that are not plain counters, gauges, histograms or summaries (process and GC
metrics, Info, Enum, a gauge with a callback, custom collectors) are small: they are
collected here, at copy time, and sent whole.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import compress, repeat
from operator import attrgetter, contains, itemgetter
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Exemplar

# The event loop gets a turn whenever a copy has worked this long, checked every SLICE
# values (~20-60 us) or metric: a request arriving meanwhile waits about this much at most.
TURN = 100e-6
SLICE = 500

_KINDS: dict[type, str] = {
    Counter: "counter",
    Gauge: "gauge",
    Histogram: "histogram",
    Summary: "summary",
}
_CLASSES = {kind: cls for cls, kind in _KINDS.items()}
_value = attrgetter("_value")
_exemplar = attrgetter("_exemplar")
_created = attrgetter("_created")
_child = itemgetter(1)


@dataclass(frozen=True)
class Shape:
    """One counter, gauge, histogram or summary, without its values."""

    kind: str
    name: str
    documentation: str
    unit: str
    labelnames: tuple[str, ...]
    bounds: tuple[float, ...]  # a histogram's upper bounds; empty otherwise
    label_sets: tuple[tuple[str, ...], ...] | None  # None: the metric has no labels


# One entry per collector, in the registry's order: a metric's shape, or None for a
# collector collected whole at copy time.
Layout = tuple[Shape | None, ...]


@dataclass(frozen=True)
class Copy:
    """What the child needs for one render."""

    version: int
    layout: Layout | None  # None when the child already has this version
    values: bytes  # array("d"): every value object's float, in layout order
    created: bytes  # array("d"): every counter, histogram and summary child's _created
    exemplars: list[tuple[int, Exemplar]]  # index into `values`, exemplar
    collected: list[list[Metric]]  # each None entry's families, in layout order
    target_info: list[Metric]  # the registry's target_info family, when it has one
    use_created: bool


def _children(metric: Any) -> list[tuple[tuple[str, ...], Any]]:
    if not metric._labelnames:
        return [((), metric)]
    with metric._lock:  # what prometheus_client's own collect() does
        return list(metric._metrics.items())


def _value_objects(kind: str, child: Any) -> list[Any]:
    if kind == "histogram":
        return [*child._buckets, child._sum]
    if kind == "summary":
        return [child._count, child._sum]
    return [child._value]


def _flatten(kind: str, children: list[Any], values: list[Any], created: list[Any]) -> None:
    """Appends the children's value objects, and those with a _created time, in the one
    order both sides of a copy agree on."""
    for child in children:
        values += _value_objects(kind, child)
        if kind != "gauge":
            created.append(child)


class _Turns:
    """Gives the event loop a turn whenever `budget` seconds of work have been done."""

    def __init__(self, budget: float) -> None:
        self._budget = budget
        self._since = time.perf_counter()

    async def take(self) -> None:
        if time.perf_counter() - self._since >= self._budget:
            await asyncio.sleep(0)
            self._since = time.perf_counter()


class RegistryCopier:
    """Copies a registry's values on the event loop, a slice at a time (the parent's side)."""

    def __init__(
        self, registry: CollectorRegistry = REGISTRY, slice_size: int = SLICE, budget: float = TURN
    ) -> None:
        self._registry = registry
        self._slice = slice_size
        self._budget = budget
        self.version = 0
        self._seen: list[tuple[Any, str | None, list[Any]]] = []
        self._layout: Layout = ()
        self._values: list[Any] = []
        self._created: list[Any] = []

    async def _refresh(self, turns: _Turns) -> None:
        with self._registry._lock:
            collectors: list[Any] = list(self._registry._collector_to_names)
        seen = []
        changed = len(collectors) != len(self._seen)
        for index, collector in enumerate(collectors):
            entry = (collector, *await self._plain(collector, turns))
            # Children compare by identity: a label set removed and added again is new.
            changed = changed or entry != self._seen[index]
            seen.append(entry)
            await turns.take()
        if not changed:
            return
        self._seen = seen
        self.version += 1
        layout: list[Shape | None] = []
        self._values = []
        self._created = []
        for collector, kind, children in seen:
            if kind is None:
                layout.append(None)
                continue
            layout.append(
                Shape(
                    kind=kind,
                    name=collector._name,
                    documentation=collector._documentation,
                    unit=collector._unit,
                    labelnames=tuple(collector._labelnames),
                    bounds=tuple(getattr(collector, "_upper_bounds", ())),
                    label_sets=tuple(key for key, _ in children) if collector._labelnames else None,
                )
            )
            _flatten(kind, list(map(_child, children)), self._values, self._created)
            await turns.take()
        self._layout = tuple(layout)

    async def _plain(
        self, collector: Any, turns: _Turns
    ) -> tuple[str | None, list[tuple[tuple[str, ...], Any]]]:
        """The kind and children of a metric whose values can be copied; None to collect
        it whole."""
        kind = _KINDS.get(type(collector))
        if kind is None:
            return None, []
        children = _children(collector)
        if kind == "gauge":
            for start in range(0, len(children), self._slice):
                # A gauge with set_function() computes its value at collect time.
                chunk = children[start : start + self._slice]
                if any(map(contains, map(vars, map(_child, chunk)), repeat("_child_samples"))):
                    return None, []
                await turns.take()
        return kind, children

    async def copy(self) -> Copy:
        """Every value now; call on the event loop (the only writer of the values)."""
        turns = _Turns(self._budget)
        await self._refresh(turns)
        version, layout = self.version, self._layout
        value_objects, created_children = self._values, self._created
        collected = []
        for collector, kind, _ in self._seen:
            if kind is None:
                collected.append(list(collector.collect()))
                await turns.take()
        target_info = (
            [self._registry._target_info_metric()]  # type: ignore[no-untyped-call]
            if self._registry.get_target_info()
            else []
        )
        values = array("d")
        exemplars: list[tuple[int, Exemplar]] = []
        for start in range(0, len(value_objects), self._slice):
            chunk = value_objects[start : start + self._slice]
            values.extend(map(_value, chunk))
            found = list(map(_exemplar, chunk))
            if any(found):
                indices = compress(range(start, start + len(chunk)), found)
                exemplars += zip(indices, filter(None, found), strict=True)
            await turns.take()
        created = array("d")
        for start in range(0, len(created_children), self._slice):
            created.extend(map(_created, created_children[start : start + self._slice]))
            await turns.take()
        return Copy(
            version=version,
            layout=layout,
            values=values.tobytes(),
            created=created.tobytes(),
            exemplars=exemplars,
            collected=collected,
            target_info=target_info,
            use_created=prometheus_metrics._use_created,
        )


class LayoutMissing(Exception):
    """The child has no mirror of this version: send the copy again with its layout."""


class _Collected:
    """Stands in the mirror for a collector that was collected whole in the parent."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> list[Metric]:
        return self.families


class Mirror:
    """The child's side: the parent's metrics rebuilt from a layout, values set per copy."""

    def __init__(self, version: int, layout: Layout) -> None:
        self.version = version
        self._entries: list[Any] = []
        self._collected: list[_Collected] = []
        self._values: list[Any] = []
        self._created: list[Any] = []
        for shape in layout:
            if shape is None:
                stand_in = _Collected()
                self._collected.append(stand_in)
                self._entries.append(stand_in)
                continue
            metric = _build(shape)
            self._entries.append(metric)
            children = (
                [metric]
                if shape.label_sets is None
                else [metric.labels(*labels) for labels in shape.label_sets]
            )
            _flatten(shape.kind, children, self._values, self._created)
        self._target_info = _Collected()
        self._with_exemplar: list[Any] = []

    def apply(self, copy: Copy) -> None:
        values = array("d")
        values.frombytes(copy.values)
        for value_object, value in zip(self._values, values, strict=True):
            value_object._value = value
        created = array("d")
        created.frombytes(copy.created)
        for child, when in zip(self._created, created, strict=True):
            child._created = when
        for value_object in self._with_exemplar:
            value_object._exemplar = None
        self._with_exemplar = []
        for index, exemplar in copy.exemplars:
            value_object = self._values[index]
            value_object._exemplar = exemplar
            self._with_exemplar.append(value_object)
        self._target_info.families = copy.target_info
        for stand_in, collected in zip(self._collected, copy.collected, strict=True):
            stand_in.families = collected
        prometheus_metrics._use_created = copy.use_created

    def collect(self) -> Iterator[Metric]:
        # target_info first, as prometheus_client's registry does.
        yield from self._target_info.collect()
        for entry in self._entries:
            yield from entry.collect()


def _build(shape: Shape) -> Any:
    cls = _CLASSES[shape.kind]
    extra: dict[str, Any] = {"buckets": shape.bounds} if shape.kind == "histogram" else {}
    # Built under a placeholder name, then given the parent's exact name: the constructor
    # would rewrite some names (a counter's trailing _total), the parent's are final.
    metric = cls("mirror", shape.documentation, shape.labelnames, registry=None, **extra)
    metric._name = shape.name
    metric._unit = shape.unit
    return metric


_mirror: Mirror | None = None


def render_copy(accept: str | None, copy: Copy) -> bytes:
    """The child's job: the exposition of `copy` for a scraper sending `accept`."""
    global _mirror
    if copy.layout is not None:
        if _mirror is None or _mirror.version != copy.version:
            _mirror = Mirror(copy.version, copy.layout)
    elif _mirror is None or _mirror.version != copy.version:
        raise LayoutMissing(copy.version)
    _mirror.apply(copy)
    encoder, _ = choose_encoder(accept or "")
    return encoder(_mirror)  # the encoders only call collect()
