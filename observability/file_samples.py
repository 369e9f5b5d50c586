"""Multiprocess samples for a long-lived render process: each file entry parsed once.

prometheus_client's `MultiProcessCollector` re-reads every process's files on every
scrape, json-decodes every key again and merges all samples through dicts keyed by label
tuples: with ~19k exposition lines that is most of a render's ~0.2 s of CPU. The render
child serving /debug/metrics lives as long as the web process and scrapes the same files
again and again, and those files only grow while their process lives. So a file's keys,
and where their values sit, are parsed once; and while no file appeared, vanished or
grew, the merge (which entries add up to which sample, the sorted buckets, the labels) is
the same as last time and is replayed: a scrape reads each file's values at the known
offsets and does only the arithmetic.

The answer is prometheus_client's, to the byte: the merge below mirrors
`MultiProcessCollector._read_metrics` and `_accumulate_metrics` (prometheus_client 0.26),
same summation order and comparisons included, because floating-point sums depend on it.
"""

from __future__ import annotations

import gc
import glob
import itertools
import json
import mmap
import os
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import accumulate, repeat
from operator import itemgetter
from typing import Any, NamedTuple

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

__all__ = ["CachedFileCollector"]

# The file format of prometheus_client.mmap_dict: a 4-byte `used`, 4 bytes of padding,
# then entries of an int32 key length, the utf-8 JSON key padded to 8-byte alignment, and
# two doubles (value, timestamp).
_HEADER = 8
_unpack_int = struct.Struct("i").unpack_from
_unpack_two_doubles = struct.Struct("dd").unpack_from
_CORRUPT = "Read beyond file size detected, file is corrupted."

_MOST_RECENT = frozenset({"mostrecent", "livemostrecent"})
_PID_FREE = frozenset({"min", "livemin", "max", "livemax", "sum", "livesum"} | _MOST_RECENT)

Labels = tuple[tuple[str, str], ...]
Gather = Callable[[Sequence[float]], tuple[float, ...]]
_new_tuple = tuple.__new__


def _gather(indices: Sequence[int]) -> Gather:
    """itemgetter that always answers a tuple: it answers a bare item for one index."""
    if len(indices) > 1:
        getter: Gather = itemgetter(*indices)
        return getter
    if indices:
        (index,) = indices
        return lambda values: (values[index],)
    return lambda values: ()


class _Key(NamedTuple):
    raw: bytes
    metric_name: str
    name: str
    labels: Labels
    help_text: str
    bucket: tuple[str, Labels] | None  # `le` and the other labels, of a histogram's


def _parse_key(raw: bytes) -> _Key:
    metric_name, name, labels, help_text = json.loads(raw.decode("utf-8"))
    # Scrapes share these strings with every other file's copy of the same key, and with
    # the plan: one copy of each instead of one per file and entry.
    pairs = tuple(
        sorted(
            (sys.intern(label), sys.intern(value) if type(value) is str else value)
            for label, value in labels.items()
        )
    )
    return _Key(
        raw,
        sys.intern(metric_name),
        sys.intern(name),
        pairs,
        sys.intern(help_text),
        _bucket(pairs),
    )


def _bucket(labels: Labels) -> tuple[str, Labels] | None:
    """A histogram entry's `le`, and its other labels: the ones its bucket adds up under."""
    for label, value in labels:
        if label == "le":
            return value, tuple(pair for pair in labels if pair[0] != "le")
    return None


class _File:
    """One file's entries as parsed so far, valid while the same file keeps growing."""

    def __init__(self, identity: tuple[int, int], generation: int) -> None:
        self.identity = identity
        self.generation = generation
        self.used = 0
        self.end = _HEADER  # where the next entry starts
        self.keys: list[_Key] = []
        self.slots: list[int] = []  # each entry's value, as an index of doubles
        self.size = 0  # bytes needed to read every known value
        # The first and last entries' bytes: a file recreated with the same name can get a
        # freed inode number back (ext4 does), and the values of a different file read at
        # these offsets would be wrong without any error.
        self.sentinels: list[tuple[int, bytes]] = []
        self._values: Gather | None = None
        self._stamps: Gather | None = None

    def still_valid(self, identity: tuple[int, int], used: int, data: bytes) -> bool:
        return (
            identity == self.identity
            and used >= self.used
            and len(data) >= self.size
            and all(data[start : start + len(raw)] == raw for start, raw in self.sentinels)
        )

    def extend(self, data: bytes, used: int, known: dict[bytes, _Key]) -> None:
        """Parse the entries appended since the last call (mmap_dict._read_all_values)."""
        keys: list[_Key] = []
        slots: list[int] = []
        pos = self.end
        last = pos
        while pos < used:
            last = pos
            encoded_len = _unpack_int(data, pos)[0]
            if encoded_len + pos > used:
                raise RuntimeError(_CORRUPT)
            pos += 4
            raw = data[pos : pos + encoded_len]
            pos += encoded_len + (8 - (encoded_len + 4) % 8)
            if pos + 16 > len(data):
                _unpack_two_doubles(data, pos)  # raises prometheus_client's struct.error
            key = known.get(raw)
            if key is None:
                key = known[raw] = _parse_key(raw)
            keys.append(key)
            slots.append(pos // 8)
            pos += 16
        # Committed only once the whole new part parsed: a failure leaves the file as it
        # was, to be tried again at the next scrape.
        self.used = used
        if keys:
            if not self.keys:
                self.sentinels.append((_HEADER, data[_HEADER : slots[0] * 8]))
            else:
                del self.sentinels[1:]
            self.sentinels.append((last, data[last : slots[-1] * 8]))
            self.keys += keys
            self.slots += slots
            self.end = pos
            self.size = pos
            self._values = self._stamps = None

    def values(self, doubles: Sequence[float]) -> tuple[float, ...]:
        if self._values is None:
            self._values = _gather(self.slots)
        return self._values(doubles)

    def stamps(self, doubles: Sequence[float]) -> tuple[float, ...]:
        if self._stamps is None:
            self._stamps = _gather([slot + 1 for slot in self.slots])
        return self._stamps(doubles)


class _Ref:
    """Where a merged value ends up in the pool, and the pool values it is made of."""

    __slots__ = ("slot", "terms")

    def __init__(self, slot: int = -1) -> None:
        self.slot = slot
        self.terms: list[int] = []


class _Fold(NamedTuple):
    """Values folded in file order: the first term, then each further term in turn."""

    first: Gather
    rest: list[tuple[list[int], Gather]]  # positions of the refs that have a term k, terms k

    @classmethod
    def of(cls, refs: list[_Ref]) -> _Fold:
        rest = []
        for k in range(1, max((len(ref.terms) for ref in refs), default=0)):
            deep = [
                (position, ref.terms[k]) for position, ref in enumerate(refs) if len(ref.terms) > k
            ]
            rest.append(([position for position, _ in deep], _gather([term for _, term in deep])))
        return cls(_gather([ref.terms[0] for ref in refs]), rest)


class _Recent(NamedTuple):
    """A mostrecent gauge's entries: which one wins depends on the timestamps read."""

    name: str
    labels: Labels
    value: int
    stamp: int


class _MetricPlan(NamedTuple):
    name: str
    documentation: str
    type: str
    # The samples in order (their values come from _Plan._output), unless `recent`.
    names: list[str]
    labels: list[dict[str, str]]
    recent: list[_Recent] | None


class _Draft:
    def __init__(self, metric: Metric) -> None:
        self.metric = metric
        self.mode: str | None = None
        # Name, labels (with the pid for a gauge file's), value slot, stamp slot (gauge
        # files' only), key.
        self.entries: list[tuple[str, Labels, int, int, _Key]] = []


class _Plan:
    """The merge of one set of files and entries, replayed on each scrape's values.

    The pool a scrape computes holds every file's values, then the gauge files'
    timestamps, then the sums, the minimums and the maximums of entries, then each
    histogram label set's cumulative buckets; the output picks the samples' values there.
    """

    def __init__(self, files: Sequence[tuple[str, _File]]) -> None:
        # The refs serve to lay the pool out, and are dropped after: a scrape needs only
        # the slots.
        merger = _Merger()
        merged = [(draft, merger.merge(draft)) for draft in _read_metrics(files).values()]

        pool = sum(len(file.slots) for _, file in files)
        pool += sum(len(file.slots) for path, file in files if _kind(path) == "gauge")
        for refs in (merger.sums, merger.mins, merger.maxes):
            for ref in refs:
                ref.slot, pool = pool, pool + 1
        self._cumulate: list[tuple[int, int]] = []
        for bounds, totals in merger.blocks:
            self._cumulate.append((bounds[0].slot, bounds[-1].slot + 1))
            for k, ref in enumerate(totals):
                ref.slot = pool + 1 + min(k, len(bounds) - 1)
            pool += 1 + len(bounds)  # accumulate(initial=0.0) yields the 0.0 too
        self._folds = [_Fold.of(refs) for refs in (merger.sums, merger.mins, merger.maxes)]

        slots: list[int] = []
        self.metrics: list[_MetricPlan] = []
        for draft, outputs in merged:
            metric = draft.metric
            names: list[str] = []
            label_dicts: list[dict[str, str]] = []
            if isinstance(outputs, dict):
                for group in outputs.values():
                    for (name, labels), ref in group.items():
                        names.append(name)
                        label_dicts.append(dict(labels))
                        slots.append(ref.slot)
            plan = _MetricPlan(
                metric.name,
                metric.documentation,
                metric.type,
                names,
                label_dicts,
                None if isinstance(outputs, dict) else outputs,
            )
            self.metrics.append(plan)
        self._output = _gather(slots)

    def run(self, pool: list[float]) -> list[Metric]:
        sums, mins, maxes = self._folds
        # Each sum starts at 0.0, as prometheus_client's defaultdict(float) does.
        folded = [0.0 + value for value in sums.first(pool)]
        for positions, terms in sums.rest:
            for position, value in zip(positions, terms(pool), strict=True):
                folded[position] += value
        pool += folded
        folded = list(mins.first(pool))
        for positions, terms in mins.rest:
            for position, value in zip(positions, terms(pool), strict=True):
                if value < folded[position]:
                    folded[position] = value
        pool += folded
        folded = list(maxes.first(pool))
        for positions, terms in maxes.rest:
            for position, value in zip(positions, terms(pool), strict=True):
                if value > folded[position]:
                    folded[position] = value
        pool += folded
        for start, stop in self._cumulate:
            pool += accumulate(pool[start:stop], initial=0.0)

        values = self._output(pool)
        metrics = []
        at = 0
        for plan in self.metrics:
            metric = Metric(plan.name, plan.documentation, plan.type)
            if plan.recent is not None:
                metric.samples = _most_recent(plan.recent, pool)
            else:
                stop = at + len(plan.names)
                # tuple.__new__ builds the same Sample as Sample(...) does, without its
                # Python-level __new__: a third of the cost, for ~20k samples a scrape.
                metric.samples = list(
                    map(
                        _new_tuple,
                        repeat(Sample),
                        zip(
                            plan.names,
                            map(dict.copy, plan.labels),
                            values[at:stop],
                            repeat(None),
                            repeat(None),
                            repeat(None),
                        ),
                    )
                )
                at = stop
            metrics.append(metric)
        return metrics


class _Merger:
    """_accumulate_metrics, with refs to pool values in place of the values."""

    def __init__(self) -> None:
        self.sums: list[_Ref] = []
        self.mins: list[_Ref] = []
        self.maxes: list[_Ref] = []
        # Per histogram label set: its bucket sums (contiguous in self.sums) and the refs
        # to the running totals, the last of which is also _count.
        self.blocks: list[tuple[list[_Ref], list[_Ref]]] = []

    def merge(self, draft: _Draft) -> dict[Labels, dict[tuple[str, Labels], _Ref]] | list[_Recent]:
        typ = draft.metric.type
        mode = draft.mode
        if typ == "gauge":
            if mode in _MOST_RECENT:
                # Only gauge entries have timestamps; the others, at 0, never win.
                return [
                    _Recent(name, tuple(pair for pair in labels if pair[0] != "pid"), value, stamp)
                    for name, labels, value, stamp, _ in draft.entries
                    if stamp >= 0
                ]
            return self._merge_gauge(draft.entries, mode)
        samples: dict[Labels, dict[tuple[str, Labels], _Ref]] = {}
        buckets: dict[Labels, dict[float, tuple[str, _Ref]]] = {}
        histogram = typ == "histogram"
        for name, labels, value, _, key in draft.entries:
            if histogram:
                bucket = key.bucket if labels is key.labels else _bucket(labels)
                if bucket is not None:
                    le, without_le = bucket
                    by_bound = buckets.get(without_le)
                    if by_bound is None:
                        by_bound = buckets[without_le] = {}
                    bound = float(le)
                    known = by_bound.get(bound)
                    if known is None:
                        known = by_bound[bound] = (le, _Ref())
                    known[1].terms.append(value)
                    continue
            group = samples.get(labels)
            if group is None:
                group = samples[labels] = {}
            ref = group.get((name, labels))
            if ref is None:
                ref = group[name, labels] = _Ref()
                self.sums.append(ref)
            ref.terms.append(value)

        metric_name = draft.metric.name
        go: dict[str, str] = {}
        for labels, by_bound in buckets.items():
            group = samples.setdefault(labels, {})
            # Sorting on the bound alone orders as sorting (bound, value) pairs does: two
            # bounds of one dict never compare equal.
            ordered = sorted(by_bound.items(), key=_first)
            bounds = [ref for _, (_, ref) in ordered]
            totals = []
            for _, (le, _) in ordered:
                total = _Ref()
                # The bound's text, from the `le` that made it (not its float: 0.0 and
                # -0.0 are one dict key but two texts).
                text = go.get(le)
                if text is None:
                    text = go[le] = floatToGoString(float(le))  # type: ignore[no-untyped-call]
                group[metric_name + "_bucket", (*labels, ("le", text))] = total
                totals.append(total)
            count = _Ref()
            group[metric_name + "_count", labels] = count
            totals.append(count)
            self.sums += bounds
            self.blocks.append((bounds, totals))
        return samples

    def _merge_gauge(
        self, entries: list[tuple[str, Labels, int, int, _Key]], mode: str | None
    ) -> dict[Labels, dict[tuple[str, Labels], _Ref]]:
        into = None  # all, liveall (and a mode unknown to prometheus_client): the last stands
        if mode in ("min", "livemin"):
            into = self.mins
        elif mode in ("max", "livemax"):
            into = self.maxes
        elif mode in ("sum", "livesum"):
            into = self.sums
        pid_free = mode in _PID_FREE
        samples: dict[Labels, dict[tuple[str, Labels], _Ref]] = {}
        for name, labels, value, _, _ in entries:
            if pid_free:
                labels = tuple(pair for pair in labels if pair[0] != "pid")
            group = samples.get(labels)
            if group is None:
                group = samples[labels] = {}
            if into is None:
                group[name, labels] = _Ref(value)
                continue
            ref = group.get((name, labels))
            if ref is None:
                ref = group[name, labels] = _Ref()
                into.append(ref)
            ref.terms.append(value)
        return samples


def _read_metrics(files: Sequence[tuple[str, _File]]) -> dict[str, _Draft]:
    """MultiProcessCollector._read_metrics, keeping where each value is in the pool."""
    drafts: dict[str, _Draft] = {}
    value = 0
    stamp = sum(len(file.slots) for _, file in files)
    for path, file in files:
        parts = os.path.basename(path).split("_")
        typ = parts[0]
        gauge = typ == "gauge"
        pid = parts[2][:-3] if gauge and file.keys else ""
        for key in file.keys:
            draft = drafts.get(key.metric_name)
            if draft is None:
                # Built here, as prometheus_client does, so that it raises the same errors
                # (an unknown type, an invalid name) for the same files.
                draft = drafts[key.metric_name] = _Draft(
                    Metric(key.metric_name, key.help_text, typ)
                )
            if gauge:
                draft.mode = parts[1]
                labels = (*key.labels, ("pid", pid))
                draft.entries.append((key.name, labels, value, stamp, key))
                stamp += 1
            else:
                draft.entries.append((key.name, key.labels, value, -1, key))
            value += 1
    return drafts


def _most_recent(entries: list[_Recent], pool: list[float]) -> list[Sample]:
    samples: dict[Labels, dict[tuple[str, Labels], float]] = {}
    stamps: dict[Labels, dict[str, float]] = {}
    for name, labels, value, stamp in entries:
        timestamp = float(pool[stamp] or 0)
        newest = stamps.setdefault(labels, {})
        if newest.get(name, 0.0) < timestamp:
            samples.setdefault(labels, {})[name, labels] = pool[value]
            newest[name] = timestamp
    return [
        Sample(name, dict(labels), value)
        for group in samples.values()
        for (name, labels), value in group.items()
    ]


def _first(item: tuple[float, Any]) -> float:
    return item[0]


def _kind(path: str) -> str:
    return os.path.basename(path).split("_")[0]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile.

    A scrape allocates tens of thousands of containers (a plan, samples, label dicts),
    none of them in a cycle, and all alive until it ends: collections of them free
    nothing, and the full ones they trigger walk the whole cache too. Measured with 19k
    samples: a plan's build ~110 -> ~50 ms, collect()'s median ~36 -> ~8 ms.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


class CachedFileCollector:
    """What `MultiProcessCollector(None, path).collect()` answers, parsed incrementally.

    Holds every file's parsed keys between scrapes (a few hundred bytes per entry, keys
    shared by files), and the merge plan of the last scrape: use one instance per
    directory for the life of the process.
    """

    def __init__(self, path: str, registry: CollectorRegistry | None = None) -> None:
        if not path or not os.path.isdir(path):
            raise ValueError("env PROMETHEUS_MULTIPROC_DIR is not set or not a directory")
        self._path = path
        self._lock = threading.Lock()
        self._files: dict[str, _File] = {}
        self._keys: dict[bytes, _Key] = {}
        self._generations = itertools.count()
        self._plan: _Plan | None = None
        self._plan_of: tuple[tuple[int, int], ...] = ()
        self._replaced = False  # a file was read afresh: some keys may be held by none
        if registry is not None:
            registry.register(self)

    def collect(self) -> Iterable[Metric]:
        # A fallback render may run in a thread of a process that also renders elsewhere.
        with self._lock, _gc_paused():
            return self._collect()

    def _collect(self) -> list[Metric]:
        read: list[tuple[str, _File]] = []
        values: list[float] = []
        stamps: list[float] = []
        for path in glob.glob(os.path.join(self._path, "*.db")):
            parts = os.path.basename(path).split("_")
            typ = parts[0]
            try:
                file = self._read(path, values, stamps if typ == "gauge" else None)
            except FileNotFoundError:
                if typ == "gauge" and parts[1].startswith("live"):
                    # Removed by mark_process_dead since the glob: prometheus_client skips
                    # these, and fails for any other file.
                    continue
                raise
            read.append((path, file))
        # Every file read is in self._files: any more there are gone from the directory.
        if self._replaced or len(self._files) > len(read):
            self._files = dict(read)
            # Keys no remaining file holds go too: memory stays bounded by the files present.
            self._keys = {key.raw: key for file in self._files.values() for key in file.keys}
            self._replaced = False
        shape = tuple((file.generation, len(file.slots)) for _, file in read)
        if self._plan is None or shape != self._plan_of:
            self._plan, self._plan_of = _Plan(read), shape
        values += stamps
        return self._plan.run(values)

    def _read(self, path: str, values: list[float], stamps: list[float] | None) -> _File:
        fd = os.open(path, os.O_RDONLY)
        try:
            stat = os.fstat(fd)
            # MmapedDict.read_all_values_from_file: a page, then up to `used` if more.
            data = os.pread(fd, mmap.PAGESIZE, 0)
            used = _unpack_int(data, 0)[0]
            if used > len(data):
                data = os.pread(fd, used, 0)
        finally:
            os.close(fd)
        file = self._files.get(path)
        identity = (stat.st_dev, stat.st_ino)
        if file is None or not file.still_valid(identity, used, data):
            self._replaced = self._replaced or file is not None
            file = self._files[path] = _File(identity, next(self._generations))
        file.extend(data, used, self._keys)
        doubles = memoryview(data)[: len(data) // 8 * 8].cast("d")
        values += file.values(doubles)
        if stamps is not None:
            stamps += file.stamps(doubles)
        return file
