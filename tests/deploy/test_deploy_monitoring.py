"""Alert rules and Grafana dashboard: every PromQL expression parses (promtool) and names
only metrics the app exposes; the alerts pass their `promtool test rules` unit tests."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml
from deploy_helpers import REPO, require_tool, run
from promql import (
    ALERTS,
    COUNTERS_AND_GAUGES,
    DASHBOARD,
    HISTOGRAMS,
    TARGET_LABELS,
    all_expressions,
    concrete,
    dashboard_expressions,
    dashboard_legends,
    dashboard_variable_queries,
    known_series,
    label_names,
    metric_names,
    rule_expressions,
)

ALERTS_TEST = Path(__file__).parent / "alerts_test.yaml"
EXPRESSIONS = all_expressions()


@pytest.fixture(scope="module")
def promtool() -> str:
    path: str = require_tool("promtool")
    return path


# --- alert rules -------------------------------------------------------------------------


def test_alert_rules_file_passes_promtool_check(promtool: str) -> None:
    result = run([promtool, "check", "rules", str(ALERTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_their_promtool_unit_tests(promtool: str) -> None:
    result = run([promtool, "test", "rules", str(ALERTS_TEST)], cwd=ALERTS_TEST.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_sees_it_fire() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    firing = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - firing == set()


def test_alerts_cover_the_promised_failures() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    by_metric: dict[str, set[str]] = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            by_metric[rule["alert"]] = metric_names(rule["expr"])
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    used = set().union(*by_metric.values())
    for metric in (
        "flask_http_request_total",  # high 5xx ratio
        "github_webhook_latency_bucket",  # webhook latency near GitHub's 10 s
        "mergequeue_github_rate_limit_remaining",  # rate limit nearly exhausted
        "up",  # worker down
        "arq_jobs_total",  # jobs failing
        "mergequeue_queue_depth",  # a queue not moving
        "mergequeue_merges_total",
        "mergequeue_queue_paused",  # ... unless paused on purpose
        "mergequeue_webhook_inbox_pending",  # inbox backlog
    ):
        assert metric in used, metric
    assert any(expr.strip().startswith("absent(up") for expr in rule_expressions())


# --- every expression ------------------------------------------------------------------


def test_every_promql_expression_parses(promtool: str, tmp_path: Path) -> None:
    # Each expression becomes a recording rule: `promtool check rules` parses them all.
    rules = {
        "groups": [
            {
                "name": "parse-check",
                "rules": [
                    {"record": f"mergequeue_check:{origin}:{i}", "expr": concrete(expr)}
                    for i, (origin, expr) in enumerate(EXPRESSIONS)
                ],
            }
        ]
    }
    path = tmp_path / "expressions.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = run([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(EXPRESSIONS)} rules found" in result.stdout


@pytest.mark.parametrize(
    ("origin", "expr"), EXPRESSIONS, ids=[f"{o}-{i}" for i, (o, _) in enumerate(EXPRESSIONS)]
)
def test_expression_names_only_metrics_the_app_exposes(origin: str, expr: str) -> None:
    series = known_series()
    names = metric_names(expr)
    assert names, f"no metric found in {expr!r}"
    assert names <= set(series), f"unknown metrics {names - set(series)} in {origin}: {expr}"
    allowed = set().union(*(series[n] for n in names)) | TARGET_LABELS
    assert label_names(expr) <= allowed, f"labels {label_names(expr) - allowed} in {expr}"


def test_metric_name_extraction_sees_through_functions_and_grouping() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (event, le) (rate(github_webhook_latency_bucket"
        '{namespace=~"$namespace",event!="ping"}[$__rate_interval]))) > 8 unless on (namespace)'
        ' absent(up{job="x"}) offset 5m'
    )
    assert metric_names(expr) == {"github_webhook_latency_bucket", "up"}
    assert label_names(expr) == {"event", "le", "namespace", "job"}


# --- dashboard -------------------------------------------------------------------------


def test_dashboard_picks_prometheus_through_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "__inputs" not in dashboard  # provisioned by a sidecar, not imported
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"


def test_dashboard_variable_queries_name_known_metrics() -> None:
    series = known_series()
    for query in dashboard_variable_queries():
        match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query)
        assert match, query
        assert match.group(1) in series
        assert match.group(2) in series[match.group(1)] | TARGET_LABELS


def test_dashboard_legends_use_labels_the_expression_keeps() -> None:
    for expr, legend in dashboard_legends():
        for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", legend):
            assert label in label_names(expr), f"legend {legend!r} of {expr!r}"


def test_dashboard_shows_every_promised_signal() -> None:
    used = set().union(*(metric_names(e) for e in dashboard_expressions()))
    promised = {
        "flask_http_request_total",  # request rate, error ratio
        "flask_http_request_duration_seconds_bucket",  # latency quantiles per route
        "github_api_call_latency_bucket",  # GitHub API latency
        "mergequeue_github_rate_limit_remaining",  # rate-limit headroom
        "github_webhook_latency_bucket",  # webhook latency per event
        "graphql_requests_total",  # GraphQL errors
        "sqlalchemy_query_latency_seconds_bucket",  # DB query latency
        "arq_jobs_total",  # worker job outcomes
        "arq_queue_depth",
        "mergequeue_queue_depth",  # queue depth per repo
        "mergequeue_time_to_merge_seconds_bucket",  # time to merge
        "mergequeue_builds_in_flight",  # parallel mode: builds in flight
        "mergequeue_builds_total",  # builds by outcome
        "mergequeue_batch_size_bucket",  # batch sizes
        "mergequeue_bisections_total",
        "mergequeue_landings_total",
    }
    assert promised <= used, promised - used
    assert {f"{h}_bucket" for h in HISTOGRAMS} <= used
    latency_by_route = [
        e for e in dashboard_expressions() if "flask_http_request_duration_seconds_bucket" in e
    ]
    quantiles = {
        q for e in latency_by_route for q in re.findall(r"histogram_quantile\(([\d.]+)", e)
    }
    assert quantiles >= {"0.5", "0.9", "0.99"}
    assert all("by (path, le)" in e for e in latency_by_route)


def test_dashboard_panels_have_unique_ids_and_fit_the_grid() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    assert dashboard["uid"] == "mergequeue"


def _app_metric_definitions() -> dict[str, tuple[str, set[str]]]:
    """name -> (type, labels) of every metric created in observability/metrics.py."""
    tree = ast.parse((REPO / "observability" / "metrics.py").read_text())
    found: dict[str, tuple[str, set[str]]] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"Counter", "Gauge", "Histogram"}
        ):
            name = ast.literal_eval(node.args[0])
            labels = ast.literal_eval(node.args[2]) if len(node.args) > 2 else []
            found[name] = (node.func.id, set(labels))
    return found


def test_metric_catalogue_matches_what_the_app_defines() -> None:
    # The dashboard and alerts are checked against promql.py's catalogue; the catalogue
    # must be what observability/metrics.py really creates, names, types and labels.
    defined = _app_metric_definitions()
    for name, labels in HISTOGRAMS.items():
        assert defined.get(name) == ("Histogram", labels), name
    for name, labels in COUNTERS_AND_GAUGES.items():
        if name == "up":
            continue
        kind, defined_labels = defined[name]
        assert kind in {"Counter", "Gauge"} and defined_labels == labels, name
        if kind == "Counter":
            assert name.endswith("_total"), name


def test_dashboard_filters_queues_by_a_repository_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    repository = variables["repository"]
    assert repository["query"]["query"] == "label_values(mergequeue_queue_depth, repository)"
    assert repository["includeAll"] and repository["multi"]
    per_repository = [e for e in dashboard_expressions() if "by (repository" in e]
    assert per_repository
    for expr in per_repository:
        assert 'repository=~"$repository"' in expr, expr


def test_dashboard_shows_process_cpu_memory_and_restarts() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    by_title = {p["title"]: p for p in dashboard["panels"]}
    used = {
        title: set().union(*(metric_names(t["expr"]) for t in by_title[title]["targets"]))
        for title in ("CPU per process", "Resident memory per process", "Restarts (1h)")
    }
    assert used == {
        "CPU per process": {"process_cpu_seconds_total"},
        "Resident memory per process": {"process_resident_memory_bytes"},
        "Restarts (1h)": {"process_start_time_seconds"},
    }
    assert "rate(" in by_title["CPU per process"]["targets"][0]["expr"]
    assert "changes(" in by_title["Restarts (1h)"]["targets"][0]["expr"]
