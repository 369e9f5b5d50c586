"""The private internals of dependencies that mergequeue's code touches, pinned.

pyproject.toml bounds these dependencies from above (the next minor release is excluded):
an upgrade is a deliberate change of the bound and of uv.lock/requirements, and these tests
then say whether what the code relies on still holds. Each test names the code that relies
on it; tests/observability/test_file_samples.py pins the multiprocess file format and merge
byte for byte against prometheus_client's own collector.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from importlib import metadata
from typing import Any

import pytest
from deploy_helpers import REPO
from packaging.requirements import Requirement
from packaging.version import Version

# distribution -> why it is bounded
BOUNDED = {
    "prometheus-client": "observability/http.py, mirror.py, file_samples.py: value objects, "
    "_metrics/_buckets/_sum/_created, the multiprocess file format",
    "arq": "mergequeue/tasks.py: batched enqueue writes arq's keys and job encoding itself",
    "starlette": "observability/middleware.py: takes the place of ServerErrorMiddleware",
}


def _requirements() -> dict[str, Requirement]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    found = {}
    for line in pyproject["project"]["dependencies"]:
        requirement = Requirement(line)
        found[requirement.name.lower()] = requirement
    return found


@pytest.mark.parametrize("name", list(BOUNDED))
def test_dependencies_whose_internals_are_used_have_an_upper_bound(name: str) -> None:
    requirement = _requirements()[name]
    uppers = [s for s in requirement.specifier if s.operator in {"<", "<=", "~=", "=="}]
    assert uppers, f"{name}: no upper bound in pyproject.toml ({BOUNDED[name]})"
    installed = Version(metadata.version(name))
    assert requirement.specifier.contains(installed), (name, str(installed))


# --- prometheus_client -----------------------------------------------------------------


def test_prometheus_counter_children_and_value_objects() -> None:
    from prometheus_client import CollectorRegistry, Counter
    from prometheus_client.values import MutexValue

    registry = CollectorRegistry()
    counter = Counter("c", "doc", ["a"], registry=registry)
    counter.labels("x").inc(2)
    # mirror._children: labelled metrics keep their children in _metrics, under _lock.
    assert counter._labelnames == ("a",)
    with counter._lock:
        children = list(counter._metrics.items())
    assert [key for key, _ in children] == [("x",)]
    child = children[0][1]
    # http._Series: a child's value object is a MutexValue holding a float in _value, read
    # by collect(): writing _value is counting.
    assert type(child._value) is MutexValue
    child._value._value += 3
    assert registry.get_sample_value("c_total", {"a": "x"}) == 5.0
    assert isinstance(child._created, float)
    # An unlabelled metric is its own only child.
    plain = Counter("p", "doc", registry=registry)
    assert plain._labelnames == () and type(plain._value) is MutexValue


def test_prometheus_histogram_buckets_are_per_bucket_value_objects() -> None:
    from prometheus_client import CollectorRegistry, Histogram

    registry = CollectorRegistry()
    observed = Histogram("o", "doc", buckets=(0.1, 1.0), registry=registry)
    written = Histogram("w", "doc", buckets=(0.1, 1.0), registry=registry)
    assert written._upper_bounds == [0.1, 1.0, float("inf")]
    for duration in (0.05, 0.5, 0.5, 3.0):
        observed.observe(duration)
        # http.HTTPMetrics.record: the bucket observe() counts is the first bound >= value,
        # and buckets are not cumulative until collect().
        index = next(i for i, bound in enumerate(written._upper_bounds) if duration <= bound)
        written._buckets[index]._value += 1
        written._sum._value += duration

    def samples(name: str) -> list[tuple[str, dict[str, str], float]]:
        metric = next(m for m in registry.collect() if m.name == name)
        return [
            (s.name[len(name) :], s.labels, s.value)
            for s in metric.samples
            if not s.name.endswith("_created")
        ]

    assert samples("w") == samples("o")


def test_prometheus_summary_and_gauge_value_objects() -> None:
    from prometheus_client import CollectorRegistry, Gauge, Summary

    registry = CollectorRegistry()
    summary = Summary("s", "doc", registry=registry)
    summary._count._value = 2.0
    summary._sum._value = 1.5
    assert registry.get_sample_value("s_count") == 2.0
    assert registry.get_sample_value("s_sum") == 1.5
    gauge = Gauge("g", "doc", registry=registry)
    gauge._value._value = 7.0
    assert registry.get_sample_value("g") == 7.0


def test_prometheus_names_units_created_flag_and_registry_lock() -> None:
    from prometheus_client import CollectorRegistry, Counter
    from prometheus_client import metrics as prometheus_metrics

    # mirror._build: a metric built under a placeholder name takes the parent's final name.
    registry = CollectorRegistry()
    counter = Counter("mirror", "doc", registry=None)
    counter._name = "requests"
    counter._unit = ""
    registry.register(counter)
    assert [m.name for m in registry.collect()] == ["requests"]
    # mirror.RegistryCopier: the registry's collectors are read under its _lock.
    with registry._lock:
        assert counter in registry._collector_to_names
    # mirror.Copy.use_created: the module flag disable_created_metrics() turns off.
    assert isinstance(prometheus_metrics._use_created, bool)
    # mirror: bucket value objects carry an _exemplar slot.
    from prometheus_client import Histogram

    histogram = Histogram("h", "doc", registry=None)
    assert hasattr(histogram._buckets[0], "_exemplar")


def test_prometheus_multiprocess_file_layout(tmp_path: Any) -> None:
    import struct

    from prometheus_client.mmap_dict import MmapedDict

    # file_samples: a 4-byte `used`, 4 bytes of padding, then int32 key length, the key
    # padded to 8 bytes, and two doubles (value, timestamp).
    path = tmp_path / "counter_1.db"
    mmaped = MmapedDict(str(path))
    mmaped.write_value("key", 2.5, 9.0)
    mmaped.close()
    data = path.read_bytes()
    (used,) = struct.unpack_from("i", data, 0)
    (length,) = struct.unpack_from("i", data, 8)
    assert data[12 : 12 + length] == b"key"
    value_at = 8 + 4 + length + (8 - (4 + length) % 8) % 8
    assert struct.unpack_from("dd", data, value_at) == (2.5, 9.0)
    assert used == value_at + 16


# --- arq -----------------------------------------------------------------------------------


def test_arq_key_layout() -> None:
    from arq.connections import ArqRedis
    from arq.constants import default_queue_name, job_key_prefix, result_key_prefix

    assert (job_key_prefix, result_key_prefix, default_queue_name) == (
        "arq:job:",
        "arq:result:",
        "arq:queue",
    )
    assert ArqRedis(host="localhost").expires_extra_ms == 86_400_000


def test_arq_job_encoding_round_trips_through_its_worker_decoder() -> None:
    from arq.jobs import deserialize_job, serialize_job
    from arq.utils import timestamp_ms

    enqueued = timestamp_ms()
    assert isinstance(enqueued, int) and abs(enqueued - __import__("time").time() * 1000) < 5000
    # mergequeue.tasks.enqueue_jobs: positional (function, args, kwargs, job_try,
    # enqueue_time_ms) and the serializer keyword.
    encoded = serialize_job("evaluate_queue", (42,), {}, None, enqueued, serializer=None)
    decoded = deserialize_job(encoded)
    assert (decoded.function, decoded.args, decoded.kwargs, decoded.job_try) == (
        "evaluate_queue",
        (42,),
        {},
        None,
    )
    assert decoded.enqueue_time.timestamp() * 1000 == pytest.approx(enqueued, abs=1)


@pytest.fixture
async def arq_pool(redis_url: str) -> AsyncIterator[Any]:
    from arq.connections import RedisSettings, create_pool

    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    yield pool
    await pool.aclose()


async def test_batched_enqueue_writes_what_arqs_enqueue_job_writes(arq_pool: Any) -> None:
    from arq.jobs import deserialize_job

    from mergequeue.tasks import _Job, enqueue_jobs

    await arq_pool.enqueue_job("evaluate_queue", 7, _job_id="by-arq")
    await enqueue_jobs(arq_pool, [_Job("evaluate_queue", (7,), "by-us")])

    async def stored(job_id: str) -> tuple[Any, ...]:
        raw = await arq_pool.get(f"arq:job:{job_id}")
        job = deserialize_job(raw)
        ttl = await arq_pool.pttl(f"arq:job:{job_id}")
        score = await arq_pool.zscore("arq:queue", job_id)
        return job.function, job.args, job.kwargs, job.job_try, ttl > 86_000_000, score > 0

    assert await stored("by-us") == await stored("by-arq")
    assert sorted(await arq_pool.keys("arq:*")) == sorted(
        [b"arq:job:by-arq", b"arq:job:by-us", b"arq:queue"]
    )
    # arq's rule, kept by the batch: an id whose job or result key exists is not queued again.
    await arq_pool.zrem("arq:queue", "by-us")
    await enqueue_jobs(arq_pool, [_Job("evaluate_queue", (7,), "by-us")])
    assert await arq_pool.zscore("arq:queue", "by-us") is None
    assert await arq_pool.enqueue_job("evaluate_queue", 7, _job_id="by-arq") is None


# --- starlette -----------------------------------------------------------------------------


def test_starlette_puts_server_error_middleware_outermost_with_handler_and_debug() -> None:
    from fastapi import FastAPI
    from starlette.middleware.errors import ServerErrorMiddleware
    from starlette.responses import PlainTextResponse

    async def on_error(request: Any, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse("x", status_code=500)

    app = FastAPI(debug=True, exception_handlers={Exception: on_error})
    outermost = app.build_middleware_stack()
    # observability.middleware.InstrumentedFastAPI rebuilds exactly this layer.
    assert type(outermost) is ServerErrorMiddleware
    assert outermost.handler is on_error and outermost.debug is True
    assert outermost.app is not None
    for method in ("debug_response", "error_response"):
        assert callable(getattr(outermost, method))
    rebuilt = ServerErrorMiddleware(outermost.app, handler=on_error, debug=False)
    assert (rebuilt.handler, rebuilt.debug) == (on_error, False)


def test_starlette_is_async_callable() -> None:
    import functools

    from starlette._utils import is_async_callable

    async def coroutine_function() -> None: ...

    def plain() -> None: ...

    assert is_async_callable(coroutine_function)
    assert is_async_callable(functools.partial(coroutine_function))
    assert not is_async_callable(plain)


def test_every_private_import_of_these_dependencies_is_covered_here() -> None:
    # A new `from starlette._x`, `prometheus_client.<private>` or arq internal in the code
    # should come with a test here.
    text = (REPO / "tests" / "deploy" / "test_deploy_dependency_internals.py").read_text()
    for package in ("api", "jobs", "mergequeue", "observability"):
        for path in (REPO / package).rglob("*.py"):
            for module, name in re.findall(
                r"^from ((?:starlette|prometheus_client|arq)[\w.]*) import (\w+)",
                path.read_text(),
                flags=re.MULTILINE,
            ):
                if module.split(".")[-1].startswith("_") or name.startswith("_"):
                    assert f"from {module} import {name}" in text, (path, module, name)
