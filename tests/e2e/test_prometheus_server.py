"""docs/operations.md 4: a real Prometheus server scrapes web and worker.

What an operator's Prometheus sees, read back through its HTTP API: targets up, the
contract's series and labels, request-id exemplars (Prometheus negotiates OpenMetrics),
and basic auth honoured both ways.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import StartWeb, StartWorker
from tests.support.prometheus import PrometheusServer, ScrapeTarget, running_prometheus

StartPrometheus = Callable[..., PrometheusServer]
USER, PASSWORD = "prometheus", "s3cret-scrape-pass"
AUTH_ENV = {"PROMETHEUS_BASIC_AUTH_USERNAME": USER, "PROMETHEUS_BASIC_AUTH_PASSWORD": PASSWORD}
REQUEST_ID = "prometheus-probe-0123456789"


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[StartPrometheus]:
    with ExitStack() as stack:

        def start(targets: list[ScrapeTarget], **options: Any) -> PrometheusServer:
            return stack.enter_context(running_prometheus(tmp_path, targets, **options))

        yield start


def _labels_besides_target(prom: PrometheusServer, selector: str) -> set[frozenset[str]]:
    """The label names of every series `selector` matches, minus __name__, job, instance."""
    return {
        frozenset(set(series) - {"__name__", "job", "instance"}) for series in prom.series(selector)
    }


def _wait_for_job_metrics(prom: PrometheusServer, web_job: str, worker_job: str) -> None:
    # The worker counts its gauge refresh job (run at start-up) once it has finished.
    prom.wait_until(
        lambda: (
            prom.series_exist(f'arq_jobs_total{{job="{worker_job}"}}')
            and prom.series_exist(f'flask_http_request_total{{job="{web_job}"}}')
        ),
        what="web and worker series scraped",
    )


def test_prometheus_scrapes_web_and_worker(
    start_web: StartWeb,
    start_worker: StartWorker,
    start_prometheus: StartPrometheus,
    sqlite_url: str,
    redis_url: str,
) -> None:
    web = start_web(DATABASE_URL=sqlite_url, SERVE_PROMETHEUS_ENDPOINT="true")
    worker = start_worker(DATABASE_URL=sqlite_url, REDIS_URL=redis_url)
    assert web.get("/healthz", headers={"X-Request-ID": REQUEST_ID}).status_code == 200
    prom = start_prometheus(
        [
            ScrapeTarget("mergequeue-web", web.url + "/debug/metrics"),
            ScrapeTarget("mergequeue-worker", worker.metrics_url),
        ],
        exemplar_storage=True,
    )
    prom.wait_for_scrapes()
    _wait_for_job_metrics(prom, "mergequeue-web", "mergequeue-worker")

    assert prom.value('up{job="mergequeue-web"}') == 1
    assert prom.value('up{job="mergequeue-worker"}') == 1
    assert {t["health"] for t in prom.targets()} == {"up"}
    assert _labels_besides_target(prom, "flask_http_request_total") == {
        frozenset({"method", "status"})
    }
    assert _labels_besides_target(prom, "flask_http_request_duration_seconds_bucket") == {
        frozenset({"method", "path", "status", "le"})
    }
    assert _labels_besides_target(prom, "arq_jobs_total") == {frozenset({"function", "outcome"})}
    # Each series comes from the process that owns it.
    assert {s["job"] for s in prom.series("flask_http_request_total")} == {"mergequeue-web"}
    assert {s["job"] for s in prom.series("arq_jobs_total")} == {"mergequeue-worker"}
    names = prom.metric_names()
    assert {"flask_http_request_total", "arq_jobs_total", "mergequeue_build_info"} <= names
    assert (
        prom.metadata("flask_http_request_duration_seconds")["flask_http_request_duration_seconds"][
            0
        ]["type"]
        == "histogram"
    )
    # Prometheus asks for OpenMetrics first; the exemplar reached its storage.
    exemplars = prom.exemplars('flask_http_request_duration_seconds_bucket{path="/healthz"}')
    request_ids = {e["labels"]["request_id"] for series in exemplars for e in series["exemplars"]}
    assert REQUEST_ID in request_ids


def test_prometheus_scrapes_with_basic_auth_and_is_refused_without_it(
    start_web: StartWeb,
    start_worker: StartWorker,
    start_prometheus: StartPrometheus,
    sqlite_url: str,
    redis_url: str,
) -> None:
    web = start_web(DATABASE_URL=sqlite_url, SERVE_PROMETHEUS_ENDPOINT="true", **AUTH_ENV)
    worker = start_worker(DATABASE_URL=sqlite_url, REDIS_URL=redis_url, **AUTH_ENV)
    web_url = web.url + "/debug/metrics"
    prom = start_prometheus(
        [
            ScrapeTarget("web", web_url, basic_auth=(USER, PASSWORD)),
            ScrapeTarget("worker", worker.metrics_url, basic_auth=(USER, PASSWORD)),
            ScrapeTarget("web-wrong-password", web_url, basic_auth=(USER, "wrong")),
            ScrapeTarget("worker-wrong-user", worker.metrics_url, basic_auth=("nobody", PASSWORD)),
            ScrapeTarget("worker-anonymous", worker.metrics_url),
        ]
    )
    prom.wait_for_scrapes()
    _wait_for_job_metrics(prom, "web", "worker")

    up = {r["metric"]["job"]: float(r["value"][1]) for r in prom.query("up")}
    assert up == {
        "web": 1,
        "worker": 1,
        "web-wrong-password": 0,
        "worker-wrong-user": 0,
        "worker-anonymous": 0,
    }
    refused = {t["labels"]["job"]: t["lastError"] for t in prom.targets() if t["health"] != "up"}
    assert set(refused) == {"web-wrong-password", "worker-wrong-user", "worker-anonymous"}
    assert all("401" in error for error in refused.values()), refused
    assert _labels_besides_target(prom, "flask_http_request_total") == {
        frozenset({"method", "status"})
    }
    assert _labels_besides_target(prom, "arq_jobs_total") == {frozenset({"function", "outcome"})}
    # Nothing but `up` and Prometheus's own scrape series from the refused jobs.
    scraped = 'count by (job) ({job=~".+", __name__!~"up|scrape_.*"})'
    assert {r["metric"]["job"] for r in prom.query(scraped)} == {"web", "worker"}
