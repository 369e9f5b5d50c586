"""docs/operations.md 3 and 4: the web process's Prometheus endpoint and the Flask-era metrics."""

from __future__ import annotations

import httpx
from prometheus_client.openmetrics import parser as openmetrics_parser

from tests.e2e.conftest import StartWeb
from tests.support.metrics import promtool_check, samples, series_names, total, value
from tests.support.request_ids import is_generated

TOKEN = "test-token-0123456789"
# Standard methods and ones only WebDAV or caches use: the latter must share one label value.
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "PURGE", "MKCOL", "LOCK"]
DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]


def test_metrics_endpoint_is_404_when_flag_off(start_web: StartWeb, sqlite_url: str) -> None:
    web = start_web(DATABASE_URL=sqlite_url)
    assert web.get("/debug/metrics").status_code == 404
    web_false = start_web(DATABASE_URL=sqlite_url, SERVE_PROMETHEUS_ENDPOINT="FALSE")
    assert web_false.get("/debug/metrics").status_code == 404


def test_metrics_endpoint_answers_at_exactly_its_path_without_redirect(
    start_web: StartWeb, sqlite_url: str
) -> None:
    web = start_web(DATABASE_URL=sqlite_url, SERVE_PROMETHEUS_ENDPOINT="true")
    response = web.get("/debug/metrics", follow_redirects=False)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "mergequeue_build_info" in response.text


def test_flask_metrics_carry_contract_names_labels_and_buckets(
    start_web: StartWeb, database_url: str
) -> None:
    web = start_web(DATABASE_URL=database_url, SERVE_PROMETHEUS_ENDPOINT="yes", API_TOKENS=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(3):
        assert web.get("/api/v1/repos", headers=auth).status_code == 200
    assert web.get("/api/v1/repos/acme/widgets/queue", headers=auth).status_code == 404
    assert web.get("/healthz").status_code == 200
    assert httpx.post(web.url + "/healthz").status_code == 405

    text = web.get("/debug/metrics").text
    repos = {"method": "GET", "path": "/api/v1/repos", "status": "200"}
    assert value(text, "flask_http_request_duration_seconds_count", **repos) == 3
    buckets = sorted(
        float(s.labels["le"])
        for s in samples(text)
        if s.name == "flask_http_request_duration_seconds_bucket"
        and s.labels["path"] == "/api/v1/repos"
    )
    assert buckets[:-1] == DEFAULT_BUCKETS and buckets[-1] == float("inf")
    queue = {"method": "GET", "path": "/api/v1/repos/{owner}/{repo}/queue", "status": "404"}
    assert value(text, "flask_http_request_duration_seconds_count", **queue) == 1
    assert (
        value(
            text,
            "flask_http_request_duration_seconds_count",
            method="POST",
            path="/healthz",
            status="405",
        )
        == 1
    )
    # The counter's exposed sample name is exactly flask_http_request_total, labels method+status.
    counters = [s for s in samples(text) if s.name == "flask_http_request_total"]
    assert counters and all(set(s.labels) == {"method", "status"} for s in counters)
    # 3 x /api/v1/repos, /healthz, and the start-up readiness poll's /healthz.
    assert value(text, "flask_http_request_total", method="GET", status="200") == 5
    assert "# TYPE flask_http_request_duration_seconds histogram" in text
    assert "# TYPE flask_http_request_total counter" in text
    assert "# TYPE flask_http_request_exceptions_total counter" in text


def test_metrics_endpoint_requests_are_not_counted(start_web: StartWeb, sqlite_url: str) -> None:
    web = start_web(DATABASE_URL=sqlite_url, SERVE_PROMETHEUS_ENDPOINT="1")
    for _ in range(5):
        web.get("/debug/metrics")
    text = web.get("/debug/metrics").text
    assert "/debug/metrics" not in {s.labels.get("path") for s in samples(text)}
    assert total(text, "flask_http_request_total") == 1  # the readiness poll's /healthz


def test_unhandled_exception_counts_once_in_each_metric_with_status_500(
    start_web: StartWeb, sqlite_url: str
) -> None:
    web = start_web(
        "--factory",
        app="tests.support.apps:app_with_failing_route",
        DATABASE_URL=sqlite_url,
        SERVE_PROMETHEUS_ENDPOINT="true",
    )
    response = web.get("/test/explode/first")
    assert response.status_code == 500
    text = web.get("/debug/metrics").text
    labels = {"method": "GET", "status": "500"}
    assert value(text, "flask_http_request_exceptions_total", **labels) == 1
    assert value(text, "flask_http_request_total", **labels) == 1
    assert (
        value(
            text,
            "flask_http_request_duration_seconds_count",
            path="/test/explode/{item}",
            **labels,
        )
        == 1
    )
    assert "DeliberateFailure" in web.process.output()


def test_ten_thousand_distinct_unmatched_urls_add_no_series(
    start_web: StartWeb, sqlite_url: str
) -> None:
    web = start_web(DATABASE_URL=sqlite_url, SERVE_PROMETHEUS_ENDPOINT="true")
    with httpx.Client(base_url=web.url, timeout=10) as client:
        for method in METHODS:
            client.request(method, "/no/such/page/warmup")
        before = series_names(client.get("/debug/metrics").text)
        for i in range(10_000):
            method = METHODS[i % len(METHODS)]
            assert client.request(method, f"/no/such/page/{i}?q={i}").status_code < 500
        after_text = client.get("/debug/metrics").text
    after = series_names(after_text)
    http_series = {s for s in after if s[0].startswith("flask_http_")}
    assert http_series == {s for s in before if s[0].startswith("flask_http_")}
    assert (
        total(after_text, "flask_http_request_duration_seconds_count", path="<unmatched>") >= 10_002
    )


def test_promtool_reports_nothing_on_web_metrics(start_web: StartWeb, database_url: str) -> None:
    web = start_web(
        DATABASE_URL=database_url,
        SERVE_PROMETHEUS_ENDPOINT="true",
        ENABLE_DB_METRICS="true",
        API_TOKENS=TOKEN,
    )
    web.get("/api/v1/repos", headers={"Authorization": f"Bearer {TOKEN}"})
    web.get("/nowhere")
    text = web.get("/debug/metrics").text
    assert "sqlalchemy_query_latency_seconds_count" in text
    assert promtool_check(text) == ""
    openmetrics = web.get(
        "/debug/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    # promtool (2.42) lints only the classic text format; the OpenMetrics answer is checked
    # by prometheus_client's strict OpenMetrics parser, which rejects malformed exemplars.
    families = list(openmetrics_parser.text_string_to_metric_families(openmetrics.text))
    exemplars = [
        s.exemplar
        for f in families
        if f.name == "flask_http_request_duration_seconds"
        for s in f.samples
        if s.exemplar is not None
    ]
    assert exemplars and all(is_generated(e.labels["request_id"]) for e in exemplars)


def test_db_metrics_present_only_with_the_flag(start_web: StartWeb, database_url: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    off = start_web(DATABASE_URL=database_url, SERVE_PROMETHEUS_ENDPOINT="true", API_TOKENS=TOKEN)
    off.get("/api/v1/repos", headers=auth)
    assert "sqlalchemy_query_latency_seconds_count" not in off.get("/debug/metrics").text

    on = start_web(
        DATABASE_URL=database_url,
        SERVE_PROMETHEUS_ENDPOINT="true",
        ENABLE_DB_METRICS="true",
        API_TOKENS=TOKEN,
    )
    on.get("/api/v1/repos", headers=auth)
    text = on.get("/debug/metrics").text
    assert value(text, "sqlalchemy_query_latency_seconds_count", operation="select")
