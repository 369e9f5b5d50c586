"""Single-process mode: scrapes are rendered by a child forked from the event loop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, Counter
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from observability.exposition import Renderer, render

PARENT = os.getpid()


class _Probe:
    """A collector reporting which process renders it, and doing `act()` there first."""

    def __init__(self, act: Callable[[], None] = lambda: None) -> None:
        self.act = act

    def collect(self) -> Iterator[Metric]:
        if os.getpid() != PARENT:
            self.act()
        family = GaugeMetricFamily("test_render_probe", "who rendered", labels=["what"])
        family.add_metric(["pid"], os.getpid())
        family.add_metric(["nice"], os.getpriority(os.PRIO_PROCESS, 0))
        family.add_metric(["policy"], os.sched_getscheduler(0))
        yield family


@pytest.fixture
def probe() -> Iterator[_Probe]:
    collector = _Probe()
    REGISTRY.register(collector)
    try:
        yield collector
    finally:
        REGISTRY.unregister(collector)


def _samples(body: bytes) -> dict[str, float]:
    openmetrics = body.rstrip().endswith(b"# EOF")
    parse = openmetrics_families if openmetrics else text_string_to_metric_families
    return {
        f"{sample.name}{sorted(sample.labels.items())}": sample.value
        for family in parse(body.decode())
        for sample in family.samples
    }


def _probe(body: bytes) -> tuple[int, int, int]:
    """The pid, niceness and scheduling policy of the process that rendered `body`."""
    samples = _samples(body)
    return (
        int(samples["test_render_probe[('what', 'pid')]"]),
        int(samples["test_render_probe[('what', 'nice')]"]),
        int(samples["test_render_probe[('what', 'policy')]"]),
    )


def _announce_then_sleep(pid_file: Path, seconds: float) -> Callable[[], None]:
    """A render that writes its process's pid to `pid_file`, then hangs for `seconds`."""

    def act() -> None:
        # Written aside and renamed, so a reader never sees the file empty.
        partial = pid_file.with_name(pid_file.name + ".partial")
        partial.write_text(str(os.getpid()))
        os.replace(partial, pid_file)
        time.sleep(seconds)

    return act


def _exists(path: str) -> bool:
    return Path(path).exists()


def _wait_for_pid(pid_file: Path) -> int:
    deadline = time.monotonic() + 10
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return int(pid_file.read_text())


async def test_a_scrape_is_rendered_by_a_forked_child_that_runs_only_when_the_cpu_is_idle(
    probe: _Probe,
) -> None:
    renderer = Renderer(None, loop=asyncio.get_running_loop())
    body, content_type = await renderer.on_loop(None)
    assert content_type.startswith("text/plain; version=0.0.4")
    pid, nice, policy = _probe(body)
    assert pid != PARENT
    assert (nice, policy) == (19, os.SCHED_IDLE)
    # The parent keeps its priority.
    assert os.getpriority(os.PRIO_PROCESS, 0) != 19
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


async def test_the_snapshot_holds_every_value_and_exemplar_at_the_time_of_the_scrape(
    probe: _Probe,
) -> None:
    counter = Counter("test_snapshot_events", "events counted before a scrape")
    try:
        counter.inc(41)
        counter.inc(1, exemplar={"request_id": "abc123def456"})
        renderer = Renderer(None, loop=asyncio.get_running_loop())
        body, content_type = await renderer.on_loop("application/openmetrics-text")
        assert content_type.startswith("application/openmetrics-text")
        assert b'test_snapshot_events_total 42.0 # {request_id="abc123def456"} 1.0' in body
        assert _probe(body)[0] != PARENT
    finally:
        REGISTRY.unregister(counter)


async def test_process_metrics_describe_the_serving_process_not_the_child(
    probe: _Probe,
) -> None:
    here = _samples(render(None)[0])
    forked = await Renderer(None, loop=asyncio.get_running_loop()).on_loop(None)
    assert _probe(forked[0])[0] != PARENT
    child = _samples(forked[0])
    # The child started a moment ago; the test process, long before.
    assert child["process_start_time_seconds[]"] == here["process_start_time_seconds[]"]
    assert child["process_resident_memory_bytes[]"] > 0.5 * here["process_resident_memory_bytes[]"]


async def test_a_child_that_dies_is_answered_by_an_in_process_render(
    probe: _Probe, caplog: pytest.LogCaptureFixture
) -> None:
    probe.act = lambda: os._exit(3)
    renderer = Renderer(None, loop=asyncio.get_running_loop())
    with caplog.at_level(logging.WARNING, logger="mergequeue.metrics"):
        body, _ = await renderer.on_loop(None)
    assert _probe(body)[0] == PARENT
    assert "render child failed" in caplog.text


async def test_a_stuck_child_is_killed_at_the_timeout_and_answered_in_process(
    probe: _Probe, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pid_file = tmp_path / "child.pid"
    probe.act = _announce_then_sleep(pid_file, 60)
    renderer = Renderer(None, loop=asyncio.get_running_loop(), timeout=1.0)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="mergequeue.metrics"):
        body, _ = await renderer.on_loop(None)
    assert time.monotonic() - started < 5
    assert _probe(body)[0] == PARENT
    assert "took more than 1 s" in caplog.text
    child = int(pid_file.read_text())
    assert not _exists(f"/proc/{child}")  # killed and reaped, no zombie


async def test_a_signal_sent_to_the_render_child_does_not_reach_the_parent(
    probe: _Probe, tmp_path: Path
) -> None:
    pid_file = tmp_path / "child.pid"
    probe.act = _announce_then_sleep(pid_file, 10)
    loop = asyncio.get_running_loop()
    received: list[int] = []
    # What uvicorn does: a handler on the loop, fed through the shared wake-up fd.
    loop.add_signal_handler(signal.SIGINT, received.append, signal.SIGINT)
    try:
        scrape = asyncio.ensure_future(Renderer(None, loop=loop).on_loop(None))
        os.kill(await asyncio.to_thread(_wait_for_pid, pid_file), signal.SIGINT)
        body, _ = await scrape
        await asyncio.sleep(0.2)  # a forwarded signal would have been handled by now
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    assert received == []
    assert _probe(body)[0] == PARENT  # the interrupted child's scrape was rendered here


async def test_a_listener_thread_has_the_loop_fork_the_child(probe: _Probe) -> None:
    renderer = Renderer(None, loop=asyncio.get_running_loop())
    body, _ = await asyncio.to_thread(renderer.from_thread, None)
    assert _probe(body)[0] != PARENT


def test_without_an_event_loop_the_render_happens_in_process(probe: _Probe) -> None:
    body, _ = Renderer(None).from_thread(None)
    assert _probe(body)[0] == PARENT


async def test_concurrent_scrapes_share_one_forked_render(probe: _Probe) -> None:
    probe.act = lambda: time.sleep(0.3)  # long enough for every scrape to arrive meanwhile
    renderer = Renderer(None, loop=asyncio.get_running_loop())
    answers = await asyncio.gather(*(renderer.on_loop(None) for _ in range(20)))
    children = {_probe(body)[0] for body, _ in answers}
    assert len(children) == 1 and PARENT not in children
    # Another format is another render; a later scrape, a fresh one.
    openmetrics, _ = await renderer.on_loop("application/openmetrics-text")
    later, _ = await renderer.on_loop(None)
    assert len({*children, _probe(openmetrics)[0], _probe(later)[0]}) == 3
