"""Every PromQL expression the deployment ships (Grafana dashboard and alert rules).

Reusable outside these tests: `all_expressions()` gives (origin, expression) pairs,
`concrete()` substitutes Grafana's variables so Prometheus can evaluate an expression, and
`metric_names()` / `label_names()` say what an expression refers to. A check against a
real Prometheus that scraped the real processes can run each `concrete(expr)` through
/api/v1/query and compare `metric_names(expr)` with /api/v1/label/__name__/values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "helm" / "dashboards" / "mergequeue.json"
ALERTS = REPO / "deploy" / "helm" / "files" / "alerts.yaml"

# The metrics the app exposes, with their labels (docs/operations.md, observability/metrics.py).
# Histograms are exposed as <name>_bucket (plus le), <name>_sum and <name>_count.
COUNTERS_AND_GAUGES: dict[str, set[str]] = {
    "flask_http_request_total": {"method", "status"},
    "flask_http_request_exceptions_total": {"method", "status"},
    "graphql_requests_total": {"operation_name", "status"},
    "mergequeue_build_info": {"version"},
    "arq_jobs_total": {"function", "outcome"},
    "arq_queue_depth": {"queue"},
    "mergequeue_queue_depth": {"repository"},
    "mergequeue_queue_paused": {"repository"},
    "mergequeue_merges_total": {"repository"},
    "mergequeue_dequeues_total": {"repository", "reason"},
    "mergequeue_builds_in_flight": {"repository"},
    "mergequeue_builds_total": {"repository", "outcome"},
    "mergequeue_landings_total": {"repository"},
    "mergequeue_bisections_total": {"repository"},
    "mergequeue_github_rate_limit_remaining": {"installation"},
    "mergequeue_webhook_inbox_pending": {"state"},
    "up": set(),
}
# prometheus_client's process collector (default registry, single-process mode): the
# dashboard's CPU, memory and restart panels.
PROCESS_METRICS: dict[str, set[str]] = {
    "process_cpu_seconds_total": set(),
    "process_resident_memory_bytes": set(),
    "process_start_time_seconds": set(),
}
HISTOGRAMS: dict[str, set[str]] = {
    "flask_http_request_duration_seconds": {"method", "path", "status"},
    "github_api_call_latency": {"method", "endpoint", "status"},
    "github_webhook_latency": {"event"},
    "sqlalchemy_query_latency_seconds": {"operation"},
    "arq_job_duration_seconds": {"function"},
    "mergequeue_time_to_merge_seconds": {"repository"},
    "mergequeue_batch_size": {"repository"},
}
# Labels Prometheus or Kubernetes service discovery add to every target.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "service", "endpoint"}


def known_series() -> dict[str, set[str]]:
    """Every series name an expression may use, with the labels it carries."""
    series = dict(COUNTERS_AND_GAUGES) | PROCESS_METRICS
    for name, labels in HISTOGRAMS.items():
        series[f"{name}_bucket"] = labels | {"le"}
        series[f"{name}_sum"] = labels
        series[f"{name}_count"] = labels
    return series


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_expressions(path: Path = DASHBOARD) -> list[str]:
    dashboard = json.loads(path.read_text())
    return [
        target["expr"]
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def dashboard_legends(path: Path = DASHBOARD) -> list[tuple[str, str]]:
    """(expression, legendFormat) pairs."""
    dashboard = json.loads(path.read_text())
    return [
        (target["expr"], target.get("legendFormat", ""))
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def dashboard_variable_queries(path: Path = DASHBOARD) -> list[str]:
    """Queries of the dashboard's query variables, e.g. label_values(metric, label)."""
    dashboard = json.loads(path.read_text())
    queries = []
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def rule_expressions(path: Path = ALERTS) -> list[str]:
    rules = yaml.safe_load(path.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def all_expressions() -> list[tuple[str, str]]:
    """(origin, expression) for every PromQL expression in the dashboard and the rules."""
    return [("dashboard", e) for e in dashboard_expressions()] + [
        ("alerts", e) for e in rule_expressions()
    ]


_GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "${namespace}": ".*",
    "$namespace": ".*",
    "${repository}": ".*",
    "$repository": ".*",
}


def concrete(expr: str) -> str:
    """The expression with Grafana's variables replaced by values Prometheus accepts."""
    for variable, value in _GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{([^}]*)\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_NUMBERS = re.compile(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:ms|s|m|h|d|w|y)?")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
}


def metric_names(expr: str) -> set[str]:
    """Names of the series an expression selects (identifiers that are not functions,
    keywords, label names or literals)."""
    text = _STRINGS.sub('""', concrete(expr))
    text = _MATCHERS.sub("{}", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub(" ", text)
    text = _NUMBERS.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        rest = text[match.end() :].lstrip()
        if match.group() in _KEYWORDS or rest.startswith("("):
            continue
        names.add(match.group())
    return names


def label_names(expr: str) -> set[str]:
    """Label names an expression refers to, in matchers and grouping clauses."""
    text = _STRINGS.sub('""', concrete(expr))
    labels: set[str] = set()
    for matchers in _MATCHERS.findall(text):
        labels.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    for _, grouping in _GROUPING.findall(text):
        labels.update(label.strip() for label in grouping.split(",") if label.strip())
    return labels
