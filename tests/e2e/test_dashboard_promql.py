"""Every PromQL expression of the Grafana dashboard and the alert rules, checked
against a real Prometheus server that scraped the real web and worker processes.

Each expression must parse and evaluate, and name only metrics Prometheus has really
scraped from mergequeue (by sample name or by metric family), so a renamed metric or a
typo in the dashboard fails here rather than as an empty panel in production.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.deploy.promql import all_expressions, concrete, metric_names
from tests.e2e.conftest import StartWeb, StartWorker
from tests.support import webhooks
from tests.support.fake_github import FakeGitHubServer, fake_github  # noqa: F401 (fixture)
from tests.support.prometheus import PrometheusServer, ScrapeTarget, running_prometheus
from tests.support.scenario import Scenario, wait_for

TOKEN = "promql-token-0123456789"
# The chart's ServiceMonitors give the jobs these names; the alert rules select on them.
WEB_JOB, WORKER_JOB = "mergequeue-web", "mergequeue-worker"
_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


@pytest.fixture
def scraped(
    tmp_path: Path,
    start_web: StartWeb,
    start_worker: StartWorker,
    postgres_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,  # noqa: F811
) -> PrometheusServer:
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "ENABLE_DB_METRICS": "true",
        **fake_github.app_env(),
    }
    web = start_web(
        SERVE_PROMETHEUS_ENDPOINT="true",
        GITHUB_WEBHOOK_SECRET=webhooks.SECRET,
        API_TOKENS=TOKEN,
        **env,
    )
    worker = start_worker(**env)
    # Real traffic for every kind of metric: webhooks, GitHub calls, a merge, a dequeue.
    scenario = Scenario(fake_github, web.url)
    scenario.setup()
    green, red = scenario.open_pull(), scenario.open_pull()
    scenario.add_label(green)
    scenario.add_label(red)
    scenario.report(scenario.head(green), "ci", "success")
    wait_for(lambda: scenario.merged(green), what="merge")
    httpx.get(web.url + "/api/v1/repos", headers={"Authorization": f"Bearer {TOKEN}"})
    httpx.post(
        web.url + "/graphql",
        json={"query": "{ __typename }"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    failed: set[str] = set()

    def dequeued() -> bool:
        # Once green merged, red may have been updated to a new head: fail that one too.
        head = scenario.head(red)
        if head not in failed:
            failed.add(head)
            scenario.report(head, "ci", "failure")
        text = httpx.get(worker.metrics_url).text
        return "mergequeue_dequeues_total{" in text

    wait_for(dequeued, what="dequeue")
    with running_prometheus(
        tmp_path,
        [
            ScrapeTarget(WEB_JOB, web.url + "/debug/metrics"),
            ScrapeTarget(WORKER_JOB, worker.metrics_url),
        ],
    ) as prometheus:
        prometheus.wait_for_scrapes(count=2)
        yield prometheus


def _known(name: str, scraped_names: set[str]) -> bool:
    if name in scraped_names:
        return True
    return any(name.endswith(s) and name.removesuffix(s) in scraped_names for s in _SUFFIXES)


def test_every_dashboard_and_alert_expression_evaluates_on_real_data(
    scraped: PrometheusServer,
) -> None:
    expressions = all_expressions()
    assert len(expressions) > 20
    failures = []
    for origin, expr in expressions:
        try:
            scraped.query(concrete(expr))
        except Exception as exc:  # the API's error names the parse problem
            failures.append(f"{origin}: {expr!r}: {exc}")
    assert failures == []


def test_every_expression_names_only_metrics_prometheus_scraped(
    scraped: PrometheusServer,
) -> None:
    known = scraped.metric_names()
    unknown = {
        (origin, name)
        for origin, expr in all_expressions()
        for name in metric_names(expr)
        if not _known(name, known)
    }
    assert unknown == set()


def test_the_jobs_the_alerts_select_are_up(scraped: PrometheusServer) -> None:
    assert scraped.value(f'up{{job="{WEB_JOB}"}}') == 1
    assert scraped.value(f'up{{job="{WORKER_JOB}"}}') == 1
