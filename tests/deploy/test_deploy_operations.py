"""What makes the chart safe to expose and to roll: what the Ingress routes, NetworkPolicy,
disruption budgets, autoscaling, graceful termination, image pinning, and alert rules an
operator can tune without forking the chart."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import CHART, DIGEST, REPO, SCENARIOS, Helm, Rendered, require_tool, run

RUNBOOK = REPO / "docs" / "runbook.md"


def ingress_paths(rendered: Rendered) -> list[tuple[str, str]]:
    return [
        (p["path"], p["pathType"])
        for ingress in rendered.all("Ingress")
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    ]


def routes_debug(path: str, path_type: str) -> bool:
    """Would a request for /debug/metrics match this Ingress path?"""
    if path_type == "Exact":
        return path.startswith("/debug/")
    elements = [e for e in path.split("/") if e]
    return ["debug", "metrics"][: len(elements)] == elements or (
        path_type == "ImplementationSpecific" and "/debug/metrics".startswith(path)
    )


def ingress(**ingress_values: Any) -> dict[str, Any]:
    return {"web": {"ingress": {"enabled": True, **ingress_values}}}


# --- ingress ---------------------------------------------------------------------------


def test_ingress_routes_only_the_webhook_by_default(helm: Helm) -> None:
    assert ingress_paths(helm.render(ingress())) == [("/api/webhook", "Exact")]


@pytest.mark.parametrize(
    ("switch", "paths"),
    [
        ("api", [("/api/v1", "Prefix")]),
        ("graphql", [("/graphql", "Exact")]),
        ("docs", [("/docs", "Prefix"), ("/redoc", "Exact"), ("/openapi.json", "Exact")]),
        (
            "dashboard",
            [
                ("/", "Exact"),
                ("/login", "Exact"),
                ("/logout", "Exact"),
                ("/oauth/callback", "Exact"),
                ("/repos", "Prefix"),
                ("/static", "Prefix"),
            ],
        ),
    ],
)
def test_other_paths_are_opt_in(helm: Helm, switch: str, paths: list[tuple[str, str]]) -> None:
    rendered = helm.render(ingress(paths={switch: True}))
    assert ingress_paths(rendered) == [("/api/webhook", "Exact"), *paths]


def test_webhook_can_be_left_out_but_an_ingress_with_no_path_is_refused(helm: Helm) -> None:
    assert ingress_paths(helm.render(ingress(paths={"webhook": False, "api": True}))) == [
        ("/api/v1", "Prefix")
    ]
    assert "no path" in helm.render_error(ingress(paths={"webhook": False}))


@pytest.mark.parametrize(
    ("path", "path_type"),
    [
        ("/", "Prefix"),
        ("/", "ImplementationSpecific"),
        ("/debug", "Prefix"),
        ("/debug/", "Exact"),
        ("/debug/metrics", "Exact"),
        ("/debug/pprof", "Prefix"),
        ("/de", "ImplementationSpecific"),
    ],
)
def test_extra_paths_that_would_route_debug_are_refused(
    helm: Helm, path: str, path_type: str
) -> None:
    error = helm.render_error(ingress(extraPaths=[{"path": path, "pathType": path_type}]))
    assert "/debug" in error


def test_extra_paths_are_added(helm: Helm) -> None:
    extra = [
        {"path": "/debugger-ui", "pathType": "Exact"},
        {"path": "/static", "pathType": "Prefix"},
    ]
    paths = ingress_paths(helm.render(ingress(extraPaths=extra)))
    assert paths[1:] == [("/debugger-ui", "Exact"), ("/static", "Prefix")]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_no_scenario_routes_debug_through_the_ingress(helm: Helm, name: str) -> None:
    for path, path_type in ingress_paths(helm.render(SCENARIOS[name])):
        assert not routes_debug(path, path_type), (path, path_type)


def _readme_values_examples() -> list[str]:
    readme = (CHART / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.DOTALL)
    return [b for b in blocks if isinstance(yaml.safe_load(b), dict)]


def test_chart_readme_examples_do_not_publish_metrics(helm: Helm) -> None:
    examples = _readme_values_examples()
    assert examples
    for example in examples:
        values = yaml.safe_load(example)
        values.setdefault("web", {}).setdefault("ingress", {})["enabled"] = True
        rendered = helm.render(values)
        for path, path_type in ingress_paths(rendered):
            assert not routes_debug(path, path_type), (example, path)
        for service in rendered.all("Service"):
            assert service["spec"].get("type", "ClusterIP") == "ClusterIP", example


# --- forwarded headers, image ------------------------------------------------------------


def test_forwarded_allow_ips_is_a_value_for_web_only(helm: Helm) -> None:
    rendered = helm.render({"web": {"forwardedAllowIps": "10.0.0.0/8,192.168.0.0/16"}})
    assert rendered.env("web")["FORWARDED_ALLOW_IPS"] == {
        "name": "FORWARDED_ALLOW_IPS",
        "value": "10.0.0.0/8,192.168.0.0/16",
    }
    assert "FORWARDED_ALLOW_IPS" not in rendered.env("worker")
    assert "FORWARDED_ALLOW_IPS" not in helm.render({}).env("web")


def test_allowed_hosts_is_a_web_value_rendered_as_allowed_hosts(helm: Helm) -> None:
    rendered = helm.render({"web": {"allowedHosts": ["mq.example.com", "*.example.org"]}})
    assert rendered.env("web")["ALLOWED_HOSTS"] == {
        "name": "ALLOWED_HOSTS",
        "value": "mq.example.com,*.example.org",
    }
    assert "ALLOWED_HOSTS" not in rendered.env("worker")
    assert "ALLOWED_HOSTS" not in helm.render({}).env("web")


def test_image_digest_wins_over_the_tag(helm: Helm) -> None:
    rendered = helm.render(
        {"image": {"repository": "r.example/mq", "tag": "1.2.3", "digest": DIGEST}}
    )
    for component in ("web", "worker", "migrations"):
        assert rendered.container(component)["image"] == f"r.example/mq@{DIGEST}"
    assert helm.render({"image": {"tag": "1.2.3"}}).container("web")["image"] == "mergequeue:1.2.3"
    assert helm.render({}).container("web")["image"] == "mergequeue:0.1.0"


def test_a_malformed_digest_is_refused(helm: Helm) -> None:
    assert "digest" in helm.render_error({"image": {"digest": "sha256:abc"}})


# --- rollouts ----------------------------------------------------------------------------


def test_web_rollout_waits_for_a_ready_pod_and_drains_the_old_one(scenario: Any) -> None:
    rendered = scenario("defaults")
    deployment = rendered.workload("web")["spec"]
    assert deployment["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert deployment["revisionHistoryLimit"] == 3
    assert rendered.workload("worker")["spec"]["revisionHistoryLimit"] == 3
    pre_stop = rendered.container("web")["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop == ["sleep", "10"]
    grace = rendered.pod("web")["spec"]["terminationGracePeriodSeconds"]
    assert grace > int(pre_stop[1])
    assert rendered.container("web")["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_pre_stop_can_be_turned_off_and_must_fit_in_the_grace_period(helm: Helm) -> None:
    assert "lifecycle" not in helm.render({"web": {"preStopSleepSeconds": 0}}).container("web")
    error = helm.render_error(
        {"web": {"preStopSleepSeconds": 30, "terminationGracePeriodSeconds": 30}}
    )
    assert "terminationGracePeriodSeconds" in error


def test_strategy_and_history_are_values(helm: Helm) -> None:
    rendered = helm.render(
        {"worker": {"strategy": {"type": "Recreate"}, "revisionHistoryLimit": 1}}
    )
    assert rendered.workload("worker")["spec"]["strategy"] == {"type": "Recreate"}
    assert rendered.workload("worker")["spec"]["revisionHistoryLimit"] == 1


def test_disruption_budgets_cover_web_and_worker(scenario: Any, helm: Helm) -> None:
    rendered = scenario("defaults")
    for component in ("web", "worker"):
        pdb = rendered.one("PodDisruptionBudget", component)
        assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert selector.items() <= rendered.pod(component)["metadata"]["labels"].items()
    rendered = helm.render(
        {"web": {"podDisruptionBudget": {"maxUnavailable": None, "minAvailable": 2}}}
    )
    assert rendered.one("PodDisruptionBudget", "web")["spec"]["minAvailable"] == 2
    off = helm.render({"worker": {"podDisruptionBudget": {"enabled": False}}})
    assert [p["metadata"]["name"] for p in off.all("PodDisruptionBudget")] == ["mq-mergequeue-web"]
    both = {"web": {"podDisruptionBudget": {"maxUnavailable": 1, "minAvailable": 1}}}
    assert "only one" in helm.render_error(both)


def test_web_autoscaling_owns_the_replica_count(helm: Helm) -> None:
    assert not helm.render({}).all("HorizontalPodAutoscaler")
    rendered = helm.render({"web": {"replicas": 4, "autoscaling": {"enabled": True}}})
    assert "replicas" not in rendered.workload("web")["spec"]
    hpa = rendered.one("HorizontalPodAutoscaler", "web")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "mq-mergequeue-web",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 70,
    }
    none = {"enabled": True, "targetCPUUtilizationPercentage": None}
    assert "targetCPUUtilizationPercentage" in helm.render_error({"web": {"autoscaling": none}})


# --- network policy --------------------------------------------------------------------


def test_network_policy_is_opt_in(scenario: Any) -> None:
    assert not scenario("defaults").all("NetworkPolicy")


def _ports(rules: list[dict[str, Any]]) -> list[Any]:
    return [p["port"] for rule in rules for p in rule["ports"]]


@pytest.mark.parametrize(
    ("env", "web_metrics_rule"),
    [([], False), ([{"name": "WEB_PROMETHEUS_PORT", "value": "9100"}], True)],
)
def test_network_policy_opens_metrics_only_to_the_monitoring_namespace(
    helm: Helm, env: list[dict[str, str]], web_metrics_rule: bool
) -> None:
    rendered = helm.render({"networkPolicy": {"enabled": True}, "common": {"env": env}})
    monitoring = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {},
    }
    worker = rendered.one("NetworkPolicy", "worker")["spec"]
    assert worker["policyTypes"] == ["Ingress", "Egress"]
    assert worker["ingress"] == [
        {"ports": [{"protocol": "TCP", "port": "metrics"}], "from": [monitoring]}
    ]
    web = rendered.one("NetworkPolicy", "web")["spec"]
    assert web["ingress"][0] == {"ports": [{"protocol": "TCP", "port": "http"}]}
    assert (len(web["ingress"]) == 2) is web_metrics_rule
    if web_metrics_rule:
        assert web["ingress"][1] == worker["ingress"][0]
    for component, policy in (("web", web), ("worker", worker)):
        labels = rendered.pod(component)["metadata"]["labels"]
        assert policy["podSelector"]["matchLabels"].items() <= labels.items()
        assert _ports(policy["egress"]) == [53, 53, 5432, 6379, 443]
        assert all("to" not in rule for rule in policy["egress"])


def test_network_policy_peers_and_ports_are_values(scenario: Any) -> None:
    rendered = scenario("everything")
    web = rendered.one("NetworkPolicy", "web")["spec"]
    peers = web["ingress"][0]["from"]
    assert peers[0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    # /debug/metrics is on the HTTP port: Prometheus is let in there too.
    assert peers[1]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    database = next(r for r in web["egress"] if _ports([r]) == [5432])
    assert database["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
    assert _ports(web["egress"])[-1] == 3128


# --- alert rules -----------------------------------------------------------------------


def _rule(rendered: Rendered, alert: str) -> dict[str, Any] | None:
    rules = rendered.one("PrometheusRule", "")["spec"]["groups"][0]["rules"]
    return next((r for r in rules if r.get("alert") == alert), None)


def test_alert_thresholds_for_and_severity_are_values(helm: Helm) -> None:
    rules = {
        "MergequeueHighErrorRatio": {"threshold": 0.2, "for": "2m", "severity": "warning"},
        "MergequeueGitHubRateLimitLow": {"threshold": 1500},
    }
    rendered = helm.render({"metrics": {"prometheusRule": {"enabled": True, "rules": rules}}})
    ratio = _rule(rendered, "MergequeueHighErrorRatio")
    assert ratio is not None
    assert ratio["expr"].rstrip().endswith("> 0.2")
    assert ratio["for"] == "2m" and ratio["labels"]["severity"] == "warning"
    limit = _rule(rendered, "MergequeueGitHubRateLimitLow")
    assert limit is not None and limit["expr"].rstrip().endswith("< 1500")


def test_alerts_can_be_disabled_and_rules_added(helm: Helm) -> None:
    extra = {"alert": "MyAlert", "expr": "vector(1)", "labels": {"severity": "info"}}
    values = {
        "enabled": True,
        "rules": {"MergequeueWorkerAbsent": {"enabled": False}},
        "extraRules": [extra],
    }
    rendered = helm.render({"metrics": {"prometheusRule": values}})
    assert _rule(rendered, "MergequeueWorkerAbsent") is None
    assert _rule(rendered, "MergequeueWorkerDown") is not None
    assert _rule(rendered, "MyAlert") == extra


def test_unknown_alert_names_in_values_are_refused(helm: Helm) -> None:
    values = {"enabled": True, "rules": {"MergequeueWorkerDwn": {"enabled": False}}}
    assert "MergequeueWorkerDwn" in helm.render_error({"metrics": {"prometheusRule": values}})


def test_default_rule_values_are_the_alerts_file_values() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())["metrics"]["prometheusRule"]
    alerts = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    rules = {r["alert"]: r for g in alerts["groups"] for r in g["rules"]}
    assert set(values["rules"]) == set(rules)
    for name, settings in values["rules"].items():
        rule = rules[name]
        assert settings["enabled"] is True
        assert settings["for"] == rule["for"] and settings["severity"] == rule["labels"]["severity"]
        ends = re.search(r"[<>]=?\s*([0-9.]+)\s*$", rule["expr"])
        if "threshold" in settings:
            assert ends and float(ends.group(1)) == settings["threshold"], name


def test_customised_rules_pass_promtool(helm: Helm, tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rule = helm.render(SCENARIOS["everything"]).one("PrometheusRule", "")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    result = run([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def _runbook_anchors() -> set[str]:
    """GitHub's anchors for the runbook's headings."""
    anchors = set()
    for heading in re.findall(r"^#+\s+(.+)$", RUNBOOK.read_text(), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_every_alert_links_to_its_runbook_section(helm: Helm) -> None:
    base = "https://git.example.com/ops/mergequeue/blob/main/docs/runbook.md"
    rendered = helm.render(
        {"metrics": {"prometheusRule": {"enabled": True, "runbookBaseUrl": base}}}
    )
    anchors = _runbook_anchors()
    rules = rendered.one("PrometheusRule", "")["spec"]["groups"][0]["rules"]
    assert len(rules) >= 10
    for rule in rules:
        url = rule["annotations"]["runbook_url"]
        assert url == f"{base}#{rule['alert'].lower()}"
        assert url.split("#")[1] in anchors, f"docs/runbook.md has no section for {rule['alert']}"


def test_install_notes_give_the_webhook_url_and_what_the_ingress_routes(helm: Helm) -> None:
    values = ingress(hosts=[{"host": "mq.example.org"}], tls=[{"hosts": ["mq.example.org"]}])
    notes = helm.notes(values)
    assert "GitHub App webhook URL: https://mq.example.org/api/webhook" in notes
    assert "The Ingress routes: /api/webhook (never /debug/*)." in notes
    notes = helm.notes(ingress(paths={"webhook": False, "graphql": True}))
    assert "webhook URL" not in notes and "routes: /graphql (never" in notes


def test_uvicorn_reads_forwarded_allow_ips_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What web.forwardedAllowIps relies on: uvicorn's default for --forwarded-allow-ips.
    import uvicorn

    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8")
    assert uvicorn.Config("api.main:app").forwarded_allow_ips == "10.0.0.0/8"
