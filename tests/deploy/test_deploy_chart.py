"""The Helm chart (deploy/helm) keeps the operator contract (docs/operations.md): rendered with
a real helm v3."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from deploy_helpers import (
    BASIC_AUTH,
    CHART,
    CONTRACT_SNIPPET,
    NAMESPACE,
    SCENARIOS,
    SECRET_VALUES,
    Helm,
    Rendered,
    b64,
)

COMPONENTS = ("web", "worker", "migrations")
SECRET_ENV = {
    "DATABASE_URL": "databaseUrl",
    "REDIS_URL": "redisUrl",
    "GITHUB_APP_PRIVATE_KEY": "githubAppPrivateKey",
    "GITHUB_WEBHOOK_SECRET": "githubWebhookSecret",
    "API_TOKENS": "apiTokens",
    "GITHUB_TOKEN": "githubToken",
    "GITHUB_OAUTH_CLIENT_SECRET": "githubOauthClientSecret",
    "SESSION_SECRET": "sessionSecret",
}
PROM_KEYS = ("prometheus.io/scrape", "prometheus.io/port", "prometheus.io/path")


def serve(value: str, where: str = "common") -> dict[str, Any]:
    env = [{"name": "SERVE_PROMETHEUS_ENDPOINT", "value": value}]
    return {"common": {"env": env}} if where == "common" else {"web": {"env": env}}


def prom_annotations(rendered: Rendered, component: str) -> dict[str, str]:
    return {
        k: v for k, v in rendered.annotations(component).items() if k.startswith("prometheus.io/")
    }


def ports(rendered: Rendered, component: str) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in rendered.container(component).get("ports", [])}


# --- lint and schema -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_helm_lint_passes_for_every_values_combination(helm: Helm, name: str) -> None:
    result = helm.lint(SCENARIOS[name])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"web": {"replicaz": 2}}, "replicaz"),
        ({"wroker": {"replicas": 2}}, "wroker"),
        ({"metrics": {"serviceMonitor": {"enabeld": True}}}, "enabeld"),
        ({"common": {"env": [{"name": "SERVE_PROMETHEUS_ENDPOINT", "value": True}]}}, "string"),
        ({"worker": {"metrics": {"port": "8491"}}}, "integer"),
    ],
)
def test_schema_rejects_unknown_keys_and_wrong_types(
    helm: Helm, values: dict[str, Any], complaint: str
) -> None:
    assert complaint in helm.render_error(values)


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return schema


def _leaves(values: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every value of values.yaml by dotted path, down to the chart-defined keys: a free-form
    Kubernetes object (resources, affinity...) counts as one value. Fails on keys the
    schema does not know."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        assert key in schema.get("properties", {}), f"{path}: not in values.schema.json"
        node = schema["properties"][key]
        if isinstance(value, dict) and "properties" in node:
            out.update(_leaves(value, node, path))
        else:
            out[path] = (value, node)
    return out


def _values_leaves() -> dict[str, Any]:
    return _leaves(yaml.safe_load((CHART / "values.yaml").read_text()), _schema())


def test_schema_describes_every_value_with_its_default() -> None:
    for path, (value, node) in _values_leaves().items():
        assert node.get("description"), f"{path}: no description"
        assert node.get("default") == value, (
            f"{path}: schema default {node.get('default')!r} != {value!r}"
        )


def test_schema_closes_every_chart_defined_object() -> None:
    schema = _schema()

    def walk(node: dict[str, Any], path: str) -> None:
        if "properties" in node:
            assert node.get("additionalProperties") is False, (
                f"{path or 'top'} accepts unknown keys"
            )
            for key, child in node["properties"].items():
                walk(child, f"{path}.{key}" if path else key)

    walk(schema, "")


def test_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    missing = [path for path in _values_leaves() if path not in documented]
    assert not missing, f"values missing from deploy/helm/README.md: {missing}"


# --- environment -----------------------------------------------------------------------


def test_common_env_reaches_web_worker_and_migrations(helm: Helm) -> None:
    rendered = helm.render({"common": {"env": [{"name": "QUEUE_LABEL", "value": "ship-it"}]}})
    for component in COMPONENTS:
        assert rendered.env(component)["QUEUE_LABEL"] == {"name": "QUEUE_LABEL", "value": "ship-it"}


def test_component_env_wins_over_common_env_without_duplicates(helm: Helm) -> None:
    rendered = helm.render(
        {
            "common": {"env": [{"name": "MERGE_METHOD", "value": "squash"}]},
            "worker": {"env": [{"name": "MERGE_METHOD", "value": "rebase"}]},
            "web": {"env": [{"name": "LOG_LEVEL", "value": "DEBUG"}]},
        }
    )
    assert rendered.env("worker")["MERGE_METHOD"]["value"] == "rebase"
    assert rendered.env("web")["MERGE_METHOD"]["value"] == "squash"
    assert rendered.env("web")["LOG_LEVEL"]["value"] == "DEBUG"
    assert "LOG_LEVEL" not in rendered.env("worker")


def test_worker_gets_prometheus_port_8491_and_a_named_metrics_port(scenario: Any) -> None:
    rendered = scenario("defaults")
    assert rendered.env("worker")["PROMETHEUS_PORT"] == {"name": "PROMETHEUS_PORT", "value": "8491"}
    assert ports(rendered, "worker") == {"metrics": 8491}


def test_worker_metrics_port_follows_worker_metrics_port(helm: Helm) -> None:
    rendered = helm.render({"worker": {"metrics": {"port": 9300}}})
    assert rendered.env("worker")["PROMETHEUS_PORT"]["value"] == "9300"
    assert ports(rendered, "worker") == {"metrics": 9300}
    assert prom_annotations(rendered, "worker")["prometheus.io/port"] == "9300"


def test_prometheus_port_in_env_is_refused_in_favour_of_worker_metrics_port(helm: Helm) -> None:
    error = helm.render_error({"common": {"env": [{"name": "PROMETHEUS_PORT", "value": "9999"}]}})
    assert "worker.metrics.port" in error


def test_invalid_boolean_fails_rendering_like_the_app_would_at_start(helm: Helm) -> None:
    error = helm.render_error(serve("enabled"))
    assert "SERVE_PROMETHEUS_ENDPOINT" in error and "true/false" in error


# --- metrics placement and scrape annotations -------------------------------------------


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_worker_pods_are_always_annotated_for_metrics_on_its_port(scenario: Any, name: str) -> None:
    assert prom_annotations(scenario(name), "worker") == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8491",
        "prometheus.io/path": "/metrics",
    }


def test_web_pods_carry_no_scrape_annotations_when_web_serves_no_metrics(scenario: Any) -> None:
    rendered = scenario("defaults")
    assert prom_annotations(rendered, "web") == {}
    assert ports(rendered, "web") == {"http": 8000}


def test_contract_snippet_annotates_web_for_debug_metrics_on_port_8000(scenario: Any) -> None:
    rendered = scenario("contract-snippet")
    assert prom_annotations(rendered, "web") == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8000",
        "prometheus.io/path": "/debug/metrics",
    }
    assert ports(rendered, "web") == {"http": 8000}
    for component in ("web", "worker"):
        assert rendered.env(component)["SERVE_PROMETHEUS_ENDPOINT"]["value"] == "true"


@pytest.mark.parametrize("value", ["true", "TRUE", "True", "1", "yes", "YES"])
@pytest.mark.parametrize("where", ["common", "web"])
def test_serve_prometheus_endpoint_true_in_any_spelling_annotates_web(
    helm: Helm, value: str, where: str
) -> None:
    annotations = prom_annotations(helm.render(serve(value, where)), "web")
    assert annotations["prometheus.io/path"] == "/debug/metrics"
    assert annotations["prometheus.io/port"] == "8000"


@pytest.mark.parametrize("value", ["false", "FALSE", "0", "no", "No"])
def test_serve_prometheus_endpoint_false_leaves_web_unannotated(helm: Helm, value: str) -> None:
    assert prom_annotations(helm.render(serve(value)), "web") == {}


def test_web_env_overrides_common_env_for_metrics_placement(helm: Helm) -> None:
    values = serve("true")
    values["web"] = {"env": [{"name": "SERVE_PROMETHEUS_ENDPOINT", "value": "false"}]}
    assert prom_annotations(helm.render(values), "web") == {}


def test_separate_web_metrics_port_gets_annotations_named_port_and_service_port(
    scenario: Any,
) -> None:
    rendered = scenario("separate-port")
    assert prom_annotations(rendered, "web") == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9100",
        "prometheus.io/path": "/metrics",
    }
    assert ports(rendered, "web") == {"http": 8000, "metrics": 9100}
    service_ports = {p["name"]: p for p in rendered.one("Service", "web")["spec"]["ports"]}
    assert service_ports["metrics"]["port"] == 9100
    assert service_ports["metrics"]["targetPort"] == "metrics"


def test_separate_web_metrics_port_wins_over_serve_prometheus_endpoint(helm: Helm) -> None:
    values = serve("true")
    values["web"] = {"env": [{"name": "WEB_PROMETHEUS_PORT", "value": "9200"}]}
    annotations = prom_annotations(helm.render(values), "web")
    assert annotations["prometheus.io/port"] == "9200"
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("port", ["8000", "70000", "nine"])
def test_unusable_web_metrics_port_fails_rendering(helm: Helm, port: str) -> None:
    error = helm.render_error({"common": {"env": [{"name": "WEB_PROMETHEUS_PORT", "value": port}]}})
    assert "WEB_PROMETHEUS_PORT" in error


# --- probes, commands, security -------------------------------------------------------


def test_web_probes_use_healthz_and_readyz_on_the_main_port(scenario: Any) -> None:
    container = scenario("defaults").container("web")
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_worker_liveness_probe_asks_its_healthz_without_spawning_a_process(
    scenario: Any,
) -> None:
    container = scenario("defaults").container("worker")
    probe = container["livenessProbe"]
    assert probe["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert "exec" not in probe
    # The worker answers 503 after 30 s without a sign of life: the probe must not give
    # up on a worker far sooner than that.
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 30
    assert "readinessProbe" not in container


def test_worker_readiness_probe_when_enabled_stays_arq_check(helm: Any) -> None:
    container = helm.render({"worker": {"readinessProbe": {"enabled": True}}}).container("worker")
    assert container["readinessProbe"]["exec"]["command"] == [
        "arq",
        "--check",
        "jobs.WorkerSettings",
    ]


def test_processes_start_with_the_contract_commands(scenario: Any) -> None:
    rendered = scenario("defaults")
    assert rendered.container("web")["command"] == [
        "uvicorn",
        "api.main:app",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]
    assert rendered.container("worker")["command"] == ["arq", "jobs.WorkerSettings"]
    assert rendered.container("migrations")["command"] == ["alembic", "upgrade", "head"]


@pytest.mark.parametrize("component", COMPONENTS)
def test_pods_run_non_root_with_a_read_only_root_filesystem_and_writable_tmp(
    scenario: Any, component: str
) -> None:
    rendered = scenario("defaults")
    pod = rendered.pod(component)["spec"]
    container = rendered.container(component)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    volume = next(v for v in pod["volumes"] if v["name"] == tmp["name"])
    assert "emptyDir" in volume


def test_several_web_workers_aggregate_metrics_in_a_multiprocess_emptydir(helm: Helm) -> None:
    rendered = helm.render({"web": {"workers": 4}})
    command = rendered.container("web")["command"]
    assert command[-2:] == ["--workers", "4"]
    directory = rendered.env("web")["PROMETHEUS_MULTIPROC_DIR"]["value"]
    mount = next(
        m for m in rendered.container("web")["volumeMounts"] if m["mountPath"] == directory
    )
    volume = next(v for v in rendered.pod("web")["spec"]["volumes"] if v["name"] == mount["name"])
    assert "emptyDir" in volume
    assert "PROMETHEUS_MULTIPROC_DIR" not in rendered.env("worker")


def test_scheduling_and_resources_are_set_per_component(helm: Helm) -> None:
    rendered = helm.render(
        {
            "web": {
                "replicas": 3,
                "nodeSelector": {"pool": "web"},
                "resources": {"limits": {"cpu": "2"}},
            },
            "worker": {
                "replicas": 2,
                "tolerations": [{"key": "batch", "operator": "Exists"}],
                "affinity": {"nodeAffinity": {}},
                "podAnnotations": {"team": "infra"},
            },
        }
    )
    assert rendered.workload("web")["spec"]["replicas"] == 3
    assert rendered.pod("web")["spec"]["nodeSelector"] == {"pool": "web"}
    assert rendered.container("web")["resources"]["limits"]["cpu"] == "2"
    assert rendered.workload("worker")["spec"]["replicas"] == 2
    assert rendered.pod("worker")["spec"]["tolerations"] == [{"key": "batch", "operator": "Exists"}]
    assert rendered.pod("worker")["spec"]["affinity"] == {"nodeAffinity": {}}
    assert rendered.annotations("worker")["team"] == "infra"
    assert "nodeSelector" not in rendered.pod("worker")["spec"]


def test_config_checksum_rolls_pods_when_configuration_changes(helm: Helm) -> None:
    def checksums(values: dict[str, Any]) -> dict[str, str]:
        rendered = helm.render(values)
        return {c: rendered.annotations(c)["checksum/config"] for c in ("web", "worker")}

    base = checksums({})
    assert checksums({"common": {"env": [{"name": "QUEUE_LABEL", "value": "go"}]}}) != base
    changed_secret = checksums({"secrets": {"databaseUrl": "postgresql+asyncpg://other/db"}})
    assert changed_secret["web"] != base["web"] and changed_secret["worker"] != base["worker"]
    assert checksums({"web": {"replicas": 5}}) == base


def test_names_fit_63_characters_and_stay_distinct(helm: Helm) -> None:
    rendered = helm.render(
        {"fullnameOverride": "x" * 70, "metrics": {"serviceMonitor": {"enabled": True}}}
    )
    names = [(d["kind"], d["metadata"]["name"]) for d in rendered.docs]
    assert all(len(name) <= 63 for _, name in names), names
    assert len(set(names)) == len(names), names
    deployments = {name.rsplit("-", 1)[-1] for kind, name in names if kind == "Deployment"}
    assert deployments == {"web", "worker"}


def test_ingress_routes_to_the_web_service(helm: Helm) -> None:
    rendered = helm.render(
        {
            "web": {
                "ingress": {
                    "enabled": True,
                    "className": "nginx",
                    "hosts": [{"host": "mq.example.org"}],
                }
            }
        }
    )
    ingress = rendered.one("Ingress", "web")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {
        "name": rendered.one("Service", "web")["metadata"]["name"],
        "port": {"name": "http"},
    }
    assert not helm.render({}).all("Ingress")


def test_the_dashboard_switch_routes_its_pages_and_sign_in_and_nothing_else(
    helm: Helm,
) -> None:
    def routed(dashboard: bool) -> set[tuple[str, str]]:
        rendered = helm.render(
            {
                "web": {
                    "ingress": {
                        "enabled": True,
                        "hosts": [{"host": "mq.example.org"}],
                        "paths": {"dashboard": dashboard},
                    }
                }
            }
        )
        paths = rendered.one("Ingress", "web")["spec"]["rules"][0]["http"]["paths"]
        return {(p["path"], p["pathType"]) for p in paths}

    # Off by default: the webhook alone.
    assert routed(False) == {("/api/webhook", "Exact")}
    assert routed(True) - routed(False) == {
        ("/", "Exact"),
        ("/login", "Exact"),
        ("/logout", "Exact"),
        ("/oauth/callback", "Exact"),
        ("/repos", "Prefix"),
        ("/static", "Prefix"),
    }
    assert not any(path.startswith(("/debug", "/api/v1")) for path, _ in routed(True))


# --- migrations hook -------------------------------------------------------------------


def test_migration_job_is_a_pre_install_pre_upgrade_hook_with_a_delete_policy(
    scenario: Any,
) -> None:
    annotations = scenario("defaults").workload("migrations")["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"].split(",")
    assert scenario("defaults").pod("migrations")["spec"]["restartPolicy"] == "Never"


def test_migration_job_uses_hook_time_secret_and_service_account_created_before_it(
    scenario: Any,
) -> None:
    rendered = scenario("all-secrets")
    job = rendered.workload("migrations")
    weight = int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    secret_name = rendered.env("migrations")["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"]
    secret = next(d for d in rendered.all("Secret") if d["metadata"]["name"] == secret_name)
    account_name = rendered.pod("migrations")["spec"]["serviceAccountName"]
    account = next(
        d for d in rendered.all("ServiceAccount") if d["metadata"]["name"] == account_name
    )
    for prerequisite in (secret, account):
        hook = prerequisite["metadata"]["annotations"]
        assert set(hook["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
        assert int(hook["helm.sh/hook-weight"]) < weight
    assert secret["data"]["DATABASE_URL"] == b64(SECRET_VALUES["databaseUrl"])


def test_migrations_can_be_turned_off(helm: Helm) -> None:
    rendered = helm.render({"migrations": {"enabled": False}})
    assert not rendered.all("Job")


# --- secrets ---------------------------------------------------------------------------


def test_no_secret_value_appears_inline_in_any_workload(scenario: Any) -> None:
    rendered = scenario("all-secrets")
    secrets = [*SECRET_VALUES.values(), *BASIC_AUTH.values()]
    for doc in rendered.docs:
        text = yaml.safe_dump(doc)
        for value in secrets:
            for line in value.splitlines():
                assert line not in text, (
                    f"{doc['kind']} {doc['metadata']['name']} holds a secret in clear"
                )
            if doc["kind"] != "Secret":
                assert b64(value) not in text, f"{doc['kind']} {doc['metadata']['name']}"
    for component in COMPONENTS:
        for name, entry in rendered.env(component).items():
            if name in SECRET_ENV or name.startswith("PROMETHEUS_BASIC_AUTH"):
                assert "value" not in entry and "secretKeyRef" in entry["valueFrom"], (
                    component,
                    name,
                )


@pytest.mark.parametrize("name", [*SECRET_ENV, "PROMETHEUS_BASIC_AUTH_PASSWORD"])
def test_secret_variables_are_refused_as_plain_env_values(helm: Helm, name: str) -> None:
    error = helm.render_error({"worker": {"env": [{"name": name, "value": "hunter2"}]}})
    assert name in error and "plain value" in error


def test_chart_created_secret_holds_the_given_values_under_the_variable_names(
    scenario: Any,
) -> None:
    rendered = scenario("all-secrets")
    secret = rendered.one("Secret", "")
    assert secret["data"] == {name: b64(SECRET_VALUES[key]) for name, key in SECRET_ENV.items()}
    for component in ("web", "worker"):
        ref = rendered.env(component)["GITHUB_WEBHOOK_SECRET"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": secret["metadata"]["name"], "key": "GITHUB_WEBHOOK_SECRET"}


def test_unset_secret_values_create_no_secret_and_no_reference(scenario: Any) -> None:
    rendered = scenario("defaults")
    assert not rendered.all("Secret")
    for component in COMPONENTS:
        assert not set(rendered.env(component)) & set(SECRET_ENV)


def test_existing_secret_is_referenced_and_never_created(scenario: Any) -> None:
    rendered = scenario("existing-secret")
    created = {d["metadata"]["name"] for d in rendered.all("Secret")}
    assert "mq-secrets" not in created and "mq-metrics-auth" not in created
    for component in COMPONENTS:
        env = rendered.env(component)
        for name in SECRET_ENV:
            ref = env[name]["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "mq-secrets" and ref["key"] == name
            required = name in ("DATABASE_URL", "REDIS_URL")
            assert ref.get("optional", False) is not required, (component, name)


# --- basic auth and prometheus-operator ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "secret"),
    [("basic-auth", "mq-mergequeue-metrics-auth"), ("existing-secret", "mq-metrics-auth")],
)
def test_basic_auth_sets_credentials_on_web_and_worker_from_one_secret(
    scenario: Any, name: str, secret: str
) -> None:
    rendered = scenario(name)
    for component in ("web", "worker"):
        env = rendered.env(component)
        assert env["PROMETHEUS_BASIC_AUTH_USERNAME"]["valueFrom"]["secretKeyRef"] == {
            "name": secret,
            "key": "username",
        }
        assert env["PROMETHEUS_BASIC_AUTH_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": secret,
            "key": "password",
        }
    if name == "basic-auth":
        data = rendered.one("Secret", "metrics-auth")["data"]
        assert data == {
            "username": b64(BASIC_AUTH["username"]),
            "password": b64(BASIC_AUTH["password"]),
        }


@pytest.mark.parametrize(
    ("name", "secret"),
    [("basic-auth", "mq-mergequeue-metrics-auth"), ("existing-secret", "mq-metrics-auth")],
)
def test_service_monitors_read_basic_auth_from_the_secret_the_app_reads(
    scenario: Any, name: str, secret: str
) -> None:
    monitors = scenario(name).all("ServiceMonitor")
    assert monitors
    for monitor in monitors:
        auth = monitor["spec"]["endpoints"][0]["basicAuth"]
        assert auth == {
            "username": {"name": secret, "key": "username"},
            "password": {"name": secret, "key": "password"},
        }


def test_basic_auth_without_credentials_fails_rendering(helm: Helm) -> None:
    error = helm.render_error({"metrics": {"basicAuth": {"enabled": True}}})
    assert "metrics.basicAuth.username" in error


def test_monitoring_objects_are_off_by_default(scenario: Any) -> None:
    rendered = scenario("defaults")
    kinds = {d["kind"] for d in rendered.docs}
    assert not kinds & {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap"}


@pytest.mark.parametrize("name", ["monitoring", "separate-port"])
def test_service_monitors_scrape_where_the_pods_serve_metrics(helm: Helm, name: str) -> None:
    values = SCENARIOS[name]
    assert isinstance(values, dict)
    values = {**values, "metrics": {"serviceMonitor": {"enabled": True}}}
    rendered = helm.render(values)
    for component in ("web", "worker"):
        endpoint = rendered.one("ServiceMonitor", component)["spec"]["endpoints"][0]
        annotations = prom_annotations(rendered, component)
        assert endpoint["path"] == annotations["prometheus.io/path"]
        port = ports(rendered, component)[endpoint["port"]]
        assert str(port) == annotations["prometheus.io/port"]
        assert {
            "targetLabel": "job",
            "replacement": f"mergequeue-{component}",
            "action": "replace",
        } in (endpoint["relabelings"])
    worker_service = rendered.one("Service", "worker-metrics")
    assert worker_service["spec"]["ports"][0]["targetPort"] == "metrics"
    monitor = rendered.one("ServiceMonitor", "worker")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items()
        <= worker_service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_service_monitor_leaves_out_web_when_it_serves_no_metrics(helm: Helm) -> None:
    rendered = helm.render({"metrics": {"serviceMonitor": {"enabled": True}}})
    assert [m["metadata"]["name"] for m in rendered.all("ServiceMonitor")] == [
        "mq-mergequeue-worker"
    ]


def test_service_monitor_and_rule_carry_the_selector_labels(scenario: Any) -> None:
    rendered = scenario("monitoring")
    for monitor in rendered.all("ServiceMonitor"):
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert (
        rendered.one("PrometheusRule", "")["metadata"]["labels"]["release"]
        == "kube-prometheus-stack"
    )


def test_prometheus_rule_renders_the_alerts_file_unchanged(scenario: Any) -> None:
    rule = scenario("monitoring").one("PrometheusRule", "")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())


def test_dashboard_configmap_carries_the_sidecar_label_and_the_dashboard(scenario: Any) -> None:
    configmap = scenario("monitoring").one("ConfigMap", "dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(configmap["data"]["mergequeue.json"])
    assert dashboard == json.loads((CHART / "dashboards" / "mergequeue.json").read_text())


def test_dashboard_sidecar_label_and_namespace_are_configurable(helm: Helm) -> None:
    rendered = helm.render(
        {
            "metrics": {
                "grafanaDashboard": {
                    "enabled": True,
                    "label": "dashboards",
                    "labelValue": "mergequeue",
                    "namespace": "grafana",
                    "annotations": {"grafana_folder": "Merge queue"},
                }
            }
        }
    )
    configmap = rendered.one("ConfigMap", "dashboard")
    assert configmap["metadata"]["labels"]["dashboards"] == "mergequeue"
    assert "grafana_dashboard" not in configmap["metadata"]["labels"]
    assert configmap["metadata"]["namespace"] == "grafana"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Merge queue"}


def test_service_account_is_created_without_an_api_token(scenario: Any) -> None:
    rendered = scenario("defaults")
    account = rendered.one("ServiceAccount", "")
    assert account["automountServiceAccountToken"] is False
    for component in ("web", "worker"):
        assert rendered.pod(component)["spec"]["serviceAccountName"] == account["metadata"]["name"]


def test_install_notes_say_where_metrics_are_and_warn_about_missing_urls(helm: Helm) -> None:
    notes = helm.notes(CONTRACT_SNIPPET)
    assert "/debug/metrics on port 8000" in notes
    assert "/metrics on port 8491" in notes
    assert "WARNING: no DATABASE_URL" in notes and "WARNING: no REDIS_URL" in notes
    notes = helm.notes({"secrets": {"existingSecret": "mq-secrets"}})
    assert "WARNING" not in notes
    assert "web:    not served" in notes


def test_env_entries_with_value_from_pass_through_and_replace_the_chart_secret(
    helm: Helm,
) -> None:
    own_ref = {"secretKeyRef": {"name": "platform-db", "key": "url"}}
    rendered = helm.render(
        {
            "common": {
                "env": [
                    {"name": "DATABASE_URL", "valueFrom": own_ref},
                    {
                        "name": "GITHUB_APP_ID",
                        "valueFrom": {"configMapKeyRef": {"name": "gh", "key": "id"}},
                    },
                ]
            },
            "secrets": {"databaseUrl": SECRET_VALUES["databaseUrl"]},
        }
    )
    for component in COMPONENTS:
        env = rendered.env(component)  # also asserts there are no duplicate names
        assert env["DATABASE_URL"]["valueFrom"] == own_ref
        assert env["GITHUB_APP_ID"]["valueFrom"]["configMapKeyRef"]["name"] == "gh"


@pytest.mark.parametrize("name", ["SERVE_PROMETHEUS_ENDPOINT", "WEB_PROMETHEUS_PORT"])
def test_metrics_placement_variables_must_be_literal_values(helm: Helm, name: str) -> None:
    ref = {"configMapKeyRef": {"name": "mq", "key": "x"}}
    error = helm.render_error({"common": {"env": [{"name": name, "valueFrom": ref}]}})
    assert name in error and "literal value" in error
