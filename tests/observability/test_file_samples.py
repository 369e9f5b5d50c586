"""observability/file_samples.py: prometheus_client's multiprocess answer, parsed once."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, values
from prometheus_client.exposition import generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from observability import exposition, file_samples
from observability.file_samples import CachedFileCollector

ENCODERS = [
    pytest.param(generate_latest, id="text"),
    pytest.param(generate_openmetrics, id="openmetrics"),
]
Encoder = Callable[[CollectorRegistry], bytes]
MODES = [
    "all",
    "liveall",
    "min",
    "livemin",
    "max",
    "livemax",
    "sum",
    "livesum",
    "mostrecent",
    "livemostrecent",
]
ODD = 'caf\u00e9 "quoted" back\\slash\nnew line \u2603'


@pytest.fixture
def directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    opened = len(values._multi_process_cleanups)
    yield tmp_path
    # Close the files the test's processes wrote, and only those.
    for close in values._multi_process_cleanups[opened:]:
        close()
    del values._multi_process_cleanups[opened:]


class Processes:
    """Metrics written to the directory's files as process `pid` writes them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def __call__(self, pid: int) -> CollectorRegistry:
        value_class = values.MultiProcessValue(process_identifier=lambda: pid)
        self._monkeypatch.setattr(values, "ValueClass", value_class)
        return CollectorRegistry()


@pytest.fixture
def process(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Processes:
    return Processes(monkeypatch)


def _theirs(directory: Path) -> CollectorRegistry:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    return registry


def _ours(collector: CachedFileCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def _assert_same(collector: CachedFileCollector, directory: Path, encode: Encoder) -> bytes:
    ours = encode(_ours(collector))
    assert ours == encode(_theirs(directory))
    # Same objects too, labels order included (repr tells 0.0 from -0.0, and NaN alike).
    theirs = MultiProcessCollector(None, path=str(directory)).collect()
    assert repr(list(collector.collect())) == repr(list(theirs))
    return ours


def _write(directory: Path, file: str, entries: list[tuple[str, float, float]]) -> None:
    """Entries (key, value, timestamp) written to a file the way MmapedDict writes them."""
    written = MmapedDict(str(directory / file))
    try:
        for key, value, timestamp in entries:
            written.write_value(key, value, timestamp)
    finally:
        written.close()


def _key(metric: str, name: str, labels: dict[str, str], help_text: str = "help") -> str:
    return mmap_key(metric, name, list(labels), list(labels.values()), help_text)


def _every_kind(process: Processes) -> dict[str, Any]:
    """Every metric type and gauge mode, from three processes with overlapping label sets."""
    written: dict[str, Any] = {}
    for pid in (101, 7, 3002):
        registry = process(pid)
        counter = Counter("jobs", "Jobs run", ["queue"], registry=registry)
        plain = Counter("starts", "Starts, no labels", registry=registry)
        histogram = Histogram(
            "latency_seconds",
            f"Latency, {ODD}",
            ["path"],
            buckets=(0.1, 1, 2.5, 1e7) if pid == 7 else (0.1, 0.5, 1),
            registry=registry,
        )
        summary = Summary("sizes_bytes", "Sizes", ["kind"], registry=registry)
        gauges = {
            mode: Gauge(f"level_{mode}", mode, ["shard"], multiprocess_mode=mode, registry=registry)
            for mode in MODES
        }
        plain_gauge = Gauge("temperature", "no labels", multiprocess_mode="max", registry=registry)
        for shard in range(3 + pid % 3):
            label = f"{ODD}-{shard}" if shard % 2 else f"shard-{shard}"
            counter.labels(label).inc(pid * 0.1 + shard)
            histogram.labels(label).observe(shard * 0.3)
            histogram.labels(label).observe(pid / 1000)
            summary.labels(label).observe(pid + shard)
            for mode, gauge in gauges.items():
                gauge.labels(label).set((pid % 17) - shard * 1.5 + len(mode))
        plain.inc(pid)
        plain_gauge.set(pid / 3)
        written[str(pid)] = (counter, histogram, gauges)
    return written


@pytest.mark.parametrize("encode", ENCODERS)
def test_renders_exactly_what_prometheus_client_renders_for_every_kind_and_mode(
    directory: Path, process: Processes, encode: Encoder
) -> None:
    _every_kind(process)
    collector = CachedFileCollector(str(directory))
    first = _assert_same(collector, directory, encode)
    assert b"level_mostrecent" in first and b"latency_seconds_bucket" in first
    assert _assert_same(collector, directory, encode) == first


@pytest.mark.parametrize("encode", ENCODERS)
def test_odd_values_and_keys_render_as_prometheus_client_renders_them(
    directory: Path, encode: Encoder
) -> None:
    histogram = "h"
    _write(
        directory,
        "histogram_1.db",
        [
            (_key(histogram, "h_sum", {"x": ODD}), -0.0, 0.0),
            (_key(histogram, "h_bucket", {"x": ODD, "le": "1"}), 2.0, 0.0),
            # "1.0" is the same bound as "1": the two add up, under the first one's text.
            (_key(histogram, "h_bucket", {"x": ODD, "le": "1.0"}), 3.0, 0.0),
            (_key(histogram, "h_bucket", {"x": ODD, "le": "+Inf"}), 6.0, 0.0),
            (_key(histogram, "h_bucket", {"x": ODD, "le": "-0.0"}), 0.0, 0.0),
            (_key(histogram, "h_bucket", {"x": ODD, "le": "0"}), 1.0, 0.0),
            (_key(histogram, "h_bucket", {"x": ODD, "le": "NaN"}), 1.0, 0.0),
            (_key(histogram, "h_count", {"x": ODD}), 99.0, 0.0),
            (_key(histogram, "h_bucket", {"x": "only buckets", "le": "12345678.5"}), 1.0, 0.0),
        ],
    )
    _write(
        directory,
        "histogram_2.db",
        [
            (_key(histogram, "h_bucket", {"x": ODD, "le": "0.5"}), 1.0, 0.0),
            (_key(histogram, "h_bucket", {"x": ODD, "le": "1"}), math.inf, 0.0),
        ],
    )
    _write(
        directory,
        "gauge_sum_1.db",
        [
            (_key("g", "g", {"pid": "a label named pid"}), -0.0, 0.0),
            (_key("g", "g", {}), math.nan, 0.0),
        ],
    )
    _write(directory, "gauge_sum_2.db", [(_key("g", "g", {}), 1.0, 0.0)])
    _write(
        directory,
        "gauge_min_1.db",
        [(_key("m", "m", {}), math.nan, 0.0), (_key("n", "n", {}), 1.0, 0.0)],
    )
    _write(
        directory,
        "gauge_min_2.db",
        [(_key("m", "m", {}), 1.0, 0.0), (_key("n", "n", {}), math.nan, 0.0)],
    )
    _write(
        directory,
        "gauge_mostrecent_1.db",
        [
            (_key("r", "r", {"a": "never set"}), 5.0, 0.0),
            (_key("r", "r", {"a": "tie"}), 1.0, 10.0),
            (_key("r", "r", {"a": "later"}), 1.0, 10.0),
        ],
    )
    _write(
        directory,
        "gauge_mostrecent_2.db",
        [
            (_key("r", "r", {"a": "later"}), 2.0, 11.0),
            (_key("r", "r", {"a": "tie"}), 2.0, 10.0),
            (_key("r", "r", {"a": "negative"}), 2.0, -1.0),
        ],
    )
    # The same metric in two gauge modes: the last file read decides for all of it.
    _write(directory, "gauge_all_3.db", [(_key("mixed", "mixed", {"k": "v"}), 1.0, 0.0)])
    _write(directory, "gauge_livesum_3.db", [(_key("mixed", "mixed", {"k": "v"}), 2.0, 0.0)])
    _write(directory, "counter_3.db", [(_key("c", "c_total", {}), -0.0, 0.0)])
    _write(directory, "counter_4.db", [])

    collector = CachedFileCollector(str(directory))
    first = _assert_same(collector, directory, encode)
    assert "caf\u00e9".encode() in first
    assert _assert_same(collector, directory, encode) == first


def test_samples_appended_between_scrapes_appear_in_the_next(
    directory: Path, process: Processes
) -> None:
    registry = process(1)
    counter = Counter("jobs", "Jobs", ["queue"], registry=registry)
    histogram = Histogram("latency_seconds", "Latency", ["path"], registry=registry)
    counter.labels("a").inc()
    histogram.labels("/a").observe(0.2)
    collector = CachedFileCollector(str(directory))
    before = _assert_same(collector, directory, generate_latest)

    counter.labels("b").inc(2)
    histogram.labels("/b").observe(3)
    Gauge("level", "Level", multiprocess_mode="livesum", registry=registry).set(4)
    later = process(2)
    Counter("jobs", "Jobs", ["queue"], registry=later).labels("a").inc(5)
    after = _assert_same(collector, directory, generate_latest)

    assert after != before
    assert b'jobs_total{queue="b"} 2.0' in after and b'jobs_total{queue="a"} 6.0' in after
    assert b'latency_seconds_bucket{le="5.0",path="/b"} 1.0' in after
    assert b"level 4.0" in after


def test_values_changed_between_scrapes_are_read(directory: Path, process: Processes) -> None:
    written = _every_kind(process)
    collector = CachedFileCollector(str(directory))
    before = _assert_same(collector, directory, generate_latest)

    for counter, histogram, gauges in written.values():
        counter.labels("shard-0").inc(1000)
        histogram.labels("shard-0").observe(0)  # a known label set: no new key
        for gauge in gauges.values():
            gauge.labels("shard-0").set(-1e6)
    after = _assert_same(collector, directory, generate_latest)

    assert after != before
    assert b'level_min{shard="shard-0"} -1000000.0' in after


def test_a_second_scrape_parses_no_key_again(
    directory: Path, process: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    _every_kind(process)
    parsed: list[str] = []
    loads = json.loads

    def counting(text: str) -> Any:
        parsed.append(text)
        return loads(text)

    monkeypatch.setattr(json, "loads", counting)
    collector = CachedFileCollector(str(directory))
    list(collector.collect())
    assert parsed and len(parsed) == len(set(parsed))  # one per distinct key, files alike

    parsed.clear()
    _assert_same(collector, directory, generate_latest)
    theirs = len(parsed)
    parsed.clear()
    list(collector.collect())
    assert parsed == []
    assert theirs > 0  # prometheus_client's own collector, asked the same, did parse

    Counter("jobs", "Jobs run", ["queue"], registry=process(7)).labels("new").inc()
    list(collector.collect())
    assert parsed == [_key("jobs", "jobs_total", {"queue": "new"}, "Jobs run")]


def test_a_scrape_with_nothing_new_reuses_the_merge_of_the_last(
    directory: Path, process: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = _every_kind(process)
    plans: list[object] = []
    plan = file_samples._Plan

    def counting(files: Any) -> object:
        plans.append(files)
        return plan(files)

    monkeypatch.setattr(file_samples, "_Plan", counting)
    collector = CachedFileCollector(str(directory))
    _assert_same(collector, directory, generate_latest)
    counter, _, _ = written["7"]
    counter.labels("shard-2").inc()  # a value, not a new entry
    _assert_same(collector, directory, generate_latest)
    assert len(plans) == 1

    counter.labels("brand new").inc()
    _assert_same(collector, directory, generate_latest)
    assert len(plans) == 2


def test_a_file_replaced_by_a_new_run_is_read_afresh(directory: Path, process: Processes) -> None:
    counter = Counter("jobs", "Jobs", ["queue"], registry=process(5))
    for queue in ("a", "old", "c"):
        counter.labels(queue).inc(3)
    collector = CachedFileCollector(str(directory))
    assert b"old" in _assert_same(collector, directory, generate_latest)

    for file in directory.glob("*.db"):
        file.unlink()
    # A new run, whose process got the same pid and wrote as many bytes and more, with the
    # same first and last keys as before.
    counter = Counter("jobs", "Jobs", ["queue"], registry=process(5))
    for queue in ("a", "new", "c", "d"):
        counter.labels(queue).inc()
    after = _assert_same(collector, directory, generate_latest)
    assert b"old" not in after and b'jobs_total{queue="new"} 1.0' in after


def test_a_file_rewritten_in_place_with_other_keys_is_read_afresh(directory: Path) -> None:
    # A file removed and recreated can get the same inode number back (ext4 reuses them).
    file = directory / "counter_5.db"
    _write(directory, file.name, [(_key("jobs", "jobs_total", {"q": "old"}), 3.0, 0.0)])
    collector = CachedFileCollector(str(directory))
    _assert_same(collector, directory, generate_latest)

    inode = file.stat().st_ino
    with open(file, "r+b") as rewritten:
        rewritten.write(b"\0" * file.stat().st_size)
    _write(
        directory,
        file.name,
        [
            (_key("jobs", "jobs_total", {"q": "new"}), 1.0, 0.0),
            (_key("jobs", "jobs_total", {"q": "newer"}), 2.0, 0.0),
        ],
    )
    assert file.stat().st_ino == inode
    after = _assert_same(collector, directory, generate_latest)
    assert b"old" not in after and b"newer" in after


def test_a_removed_file_drops_out(directory: Path, process: Processes) -> None:
    for pid in (1, 2):
        registry = process(pid)
        Gauge("busy", "Busy", ["task"], multiprocess_mode="livesum", registry=registry).labels(
            f"only-in-{pid}"
        ).set(pid)
        Counter("jobs", "Jobs", registry=registry).inc(pid)
    collector = CachedFileCollector(str(directory))
    assert b"only-in-2" in _assert_same(collector, directory, generate_latest)

    mark_process_dead(2, str(directory))
    after = _assert_same(collector, directory, generate_latest)

    assert b"only-in-2" not in after and b"only-in-1" in after
    # Nothing of the removed file is held any more.
    assert not [path for path in collector._files if path.endswith("gauge_livesum_2.db")]
    assert not [raw for raw in collector._keys if b"only-in-2" in raw]


def test_a_file_gone_between_listing_and_reading_fails_as_prometheus_client_does(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(directory, "counter_1.db", [(_key("jobs", "jobs_total", {}), 1.0, 0.0)])
    collector = CachedFileCollector(str(directory))
    listed = [str(directory / "counter_1.db")]
    monkeypatch.setattr(file_samples.glob, "glob", lambda pattern: listed)

    listed.append(str(directory / "gauge_livesum_9.db"))  # a live gauge: skipped
    assert b"jobs_total 1.0" in _assert_same(collector, directory, generate_latest)

    listed.append(str(directory / "counter_9.db"))  # anything else: the scrape fails
    with pytest.raises(FileNotFoundError):
        list(MultiProcessCollector(None, path=str(directory)).collect())
    with pytest.raises(FileNotFoundError):
        list(collector.collect())


def test_a_corrupted_file_fails_as_prometheus_client_does_and_is_read_again_after(
    directory: Path,
) -> None:
    _write(directory, "counter_1.db", [(_key("jobs", "jobs_total", {}), 1.0, 0.0)])
    collector = CachedFileCollector(str(directory))
    _assert_same(collector, directory, generate_latest)
    file = directory / "counter_1.db"
    written = MmapedDict(str(file))
    written.write_value(_key("jobs", "jobs_total", {"q": "appended"}), 2.0, 0.0)
    written.close()
    good = file.read_bytes()
    broken = bytearray(good)
    first = len(_key("jobs", "jobs_total", {}).encode())
    appended = 8 + 4 + first + (8 - (first + 4) % 8) + 16
    broken[appended : appended + 4] = (10**6).to_bytes(4, "little")  # a key length too long
    file.write_bytes(bytes(broken))

    for collect in (MultiProcessCollector(None, path=str(directory)).collect, collector.collect):
        with pytest.raises(RuntimeError, match="corrupted"):
            list(collect())
    file.write_bytes(good)
    assert b"appended" in _assert_same(collector, directory, generate_latest)


def test_does_not_register_itself_unless_given_a_registry(directory: Path) -> None:
    _write(directory, "counter_1.db", [(_key("jobs", "jobs_total", {}), 1.0, 0.0)])
    registry = CollectorRegistry()
    CachedFileCollector(str(directory))
    assert generate_latest(registry) == b""
    CachedFileCollector(str(directory), registry)
    assert b"jobs_total 1.0" in generate_latest(registry)


def test_a_missing_directory_is_refused_as_prometheus_client_refuses_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        MultiProcessCollector(None, path=str(tmp_path / "missing"))
    with pytest.raises(ValueError):
        CachedFileCollector(str(tmp_path / "missing"))


def test_render_keeps_one_collector_per_directory(
    directory: Path, process: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    _every_kind(process)
    monkeypatch.setattr(exposition, "_COLLECTORS", {})
    parsed: list[str] = []
    loads = json.loads

    def counting(text: str) -> Any:
        parsed.append(text)
        return loads(text)

    body, _ = exposition.render(None, directory)
    assert body == generate_latest(_theirs(directory))
    monkeypatch.setattr(json, "loads", counting)
    again, _ = exposition.render(None, directory)
    assert again == body and parsed == []
    assert list(exposition._COLLECTORS) == [directory]
