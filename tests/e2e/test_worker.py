"""docs/operations.md 1 and 4.3: the worker process and its metrics listener."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.e2e.conftest import StartWorker
from tests.support.metrics import promtool_check, value
from tests.support.processes import arq_argv, base_env, free_port, run

CLOSED_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"


def _wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_worker_serves_metrics_on_prometheus_port_only_at_metrics_path(
    start_worker: StartWorker, database_url: str, redis_url: str
) -> None:
    worker = start_worker(DATABASE_URL=database_url, REDIS_URL=redis_url)
    response = httpx.get(worker.metrics_url)
    assert response.status_code == 200
    assert 'mergequeue_build_info{version="' in response.text
    assert httpx.get(worker.metrics_url.replace("/metrics", "/")).status_code == 404


def test_worker_metrics_listener_binds_all_interfaces(
    start_worker: StartWorker, sqlite_url: str, redis_url: str
) -> None:
    worker = start_worker(DATABASE_URL=sqlite_url, REDIS_URL=redis_url)
    listening = Path("/proc/net/tcp").read_text()
    port_hex = f"{worker.metrics_port:04X}"
    assert f"00000000:{port_hex}" in listening


def test_worker_counts_jobs_by_function_and_outcome(
    start_worker: StartWorker, database_url: str, redis_url: str
) -> None:
    worker = start_worker(DATABASE_URL=database_url, REDIS_URL=redis_url)

    def succeeded() -> bool:
        text = httpx.get(worker.metrics_url).text
        return bool(value(text, "arq_jobs_total", function="refresh_gauges", outcome="success"))

    _wait_for(succeeded)
    text = httpx.get(worker.metrics_url).text
    assert value(text, "arq_job_duration_seconds_count", function="refresh_gauges")
    # arq keeps a job in its queue until it finishes: the refresh job counts itself, and
    # the other start-up jobs (reconciliation, recovery, sweep, webhook redelivery,
    # notifications' sending and watching) may still be there.
    depth = value(text, "arq_queue_depth", queue="arq:queue")
    assert depth is not None and 1 <= depth <= 7
    assert value(text, "mergequeue_webhook_inbox_pending", state="received") == 0


def test_worker_counts_a_failing_job_as_failure(start_worker: StartWorker, redis_url: str) -> None:
    # With its database unreachable the gauge refresh job fails: a real failure outcome.
    worker = start_worker(DATABASE_URL=CLOSED_POSTGRES, REDIS_URL=redis_url)

    def failed() -> bool:
        text = httpx.get(worker.metrics_url).text
        return bool(value(text, "arq_jobs_total", function="refresh_gauges", outcome="failure"))

    _wait_for(failed)


def test_promtool_reports_nothing_on_worker_metrics(
    start_worker: StartWorker, postgres_url: str, redis_url: str
) -> None:
    worker = start_worker(DATABASE_URL=postgres_url, REDIS_URL=redis_url, ENABLE_DB_METRICS="true")
    _wait_for(lambda: "arq_jobs_total{" in httpx.get(worker.metrics_url).text)
    text = httpx.get(worker.metrics_url).text
    assert value(text, "sqlalchemy_query_latency_seconds_count", operation="select")
    assert promtool_check(text) == ""


def test_worker_db_metrics_present_only_with_the_flag(
    start_worker: StartWorker, sqlite_url: str, redis_url: str
) -> None:
    worker = start_worker(DATABASE_URL=sqlite_url, REDIS_URL=redis_url)
    _wait_for(lambda: "arq_jobs_total{" in httpx.get(worker.metrics_url).text)
    assert "sqlalchemy_query_latency_seconds_count" not in httpx.get(worker.metrics_url).text


def test_worker_stops_metrics_listener_on_shutdown(
    start_worker: StartWorker, sqlite_url: str, redis_url: str
) -> None:
    worker = start_worker(DATABASE_URL=sqlite_url, REDIS_URL=redis_url)
    assert worker.process.stop() == 0
    assert "worker stopped" in worker.process.output()
    try:
        httpx.get(worker.metrics_url, timeout=2)
        raise AssertionError("metrics listener still answering after shutdown")
    except httpx.ConnectError:
        pass


def test_arq_check_fails_within_a_minute_of_a_worker_crash(
    start_worker: StartWorker, sqlite_url: str, redis_url: str
) -> None:
    env = base_env(DATABASE_URL=sqlite_url, REDIS_URL=redis_url, PROMETHEUS_PORT=str(free_port()))
    worker = start_worker(DATABASE_URL=sqlite_url, REDIS_URL=redis_url)
    _wait_for(lambda: run(arq_argv("--check"), env).returncode == 0, timeout=15)
    worker.process.kill()
    crashed_at = time.monotonic()
    _wait_for(lambda: run(arq_argv("--check"), env).returncode != 0, timeout=60)
    assert time.monotonic() - crashed_at < 60
