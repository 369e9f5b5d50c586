"""Every manifest the chart renders, for every values combination of deploy_helpers.SCENARIOS
(defaults, each feature, everything switched on), is valid against Kubernetes' published
schemas (PyPI kubernetes-validate, strict: unknown fields are errors) for the oldest
Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest the validator knows;
ServiceMonitors and PrometheusRules against prometheus-operator's CRD schemas
(tests/deploy/schemas, see its README)."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from deploy_helpers import CHART, SCENARIOS, Helm
from kubernetes_validate.utils import all_versions, latest_version

SCHEMAS = Path(__file__).parent / "schemas"
CRDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring-v1.json",
}


def oldest_supported() -> str:
    kube_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    match = re.fullmatch(r">=\s*(\d+\.\d+)\.\d+(-0)?", kube_version)
    assert match, f"Chart.yaml kubeVersion {kube_version!r} is not of the form >=X.Y.Z-0"
    return match.group(1)


VERSIONS = [oldest_supported(), ".".join(latest_version().split(".")[:2])]


def _closed(schema: Any) -> Any:
    """The CRD schema with every structural object closed to unknown fields."""
    if isinstance(schema, dict):
        schema = {k: _closed(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / CRDS[(api_version, kind)]).read_text())
    return jsonschema.Draft7Validator(_closed(schema))


@pytest.fixture(scope="module")
def every_manifest(helm: Helm) -> list[tuple[str, dict[str, Any]]]:
    return [(name, doc) for name, values in SCENARIOS.items() for doc in helm.render(values).docs]


def test_the_oldest_supported_version_has_published_schemas() -> None:
    known = {".".join(v.split(".")[:2]) for v in all_versions()}
    assert set(VERSIONS) <= known, (VERSIONS, sorted(known))


def test_scenarios_render_every_kind_the_chart_can_make(
    every_manifest: list[tuple[str, dict[str, Any]]],
) -> None:
    kinds = {doc["kind"] for _, doc in every_manifest}
    assert kinds >= {
        "Deployment",
        "Service",
        "Ingress",
        "Job",
        "Secret",
        "ServiceAccount",
        "ConfigMap",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "ServiceMonitor",
        "PrometheusRule",
    }, kinds
    assert {name for name, _ in every_manifest} == set(SCENARIOS)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_rendered_manifest_is_valid_for_kubernetes(
    every_manifest: list[tuple[str, dict[str, Any]]], version: str
) -> None:
    errors = []
    checked = 0
    for scenario, doc in every_manifest:
        if (doc["apiVersion"], doc["kind"]) in CRDS:
            continue
        try:
            kubernetes_validate.validate(copy.deepcopy(doc), version, strict=True)
            checked += 1
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            errors.append(
                f"{scenario}: {doc['kind']} {doc['metadata']['name']}: {path}: {error.message}"
            )
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{scenario}: {error.message}")
    assert not errors, "\n".join(errors)
    assert checked > 50


def test_service_monitors_and_prometheus_rules_match_their_crd_schemas(
    every_manifest: list[tuple[str, dict[str, Any]]],
) -> None:
    errors = []
    checked = set()
    for scenario, doc in every_manifest:
        key = (doc["apiVersion"], doc["kind"])
        if key not in CRDS:
            continue
        checked.add(doc["kind"])
        for error in crd_validator(*key).iter_errors(doc):
            path = ".".join(str(p) for p in error.path)
            errors.append(
                f"{scenario}: {doc['kind']} {doc['metadata']['name']}: {path}: {error.message}"
            )
    assert not errors, "\n".join(errors)
    assert checked == {"ServiceMonitor", "PrometheusRule"}


@pytest.mark.parametrize(
    ("doc", "complaint"),
    [
        ({"spec": {"endpoints": [{"port": "metrics", "intervall": "30s"}]}}, "intervall"),
        ({"spec": {"endpoints": [{"port": "metrics", "interval": 30}]}}, "30"),
    ],
)
def test_crd_check_catches_misspelt_and_mistyped_fields(
    doc: dict[str, Any], complaint: str
) -> None:
    manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "x"},
        **doc,
    }
    messages = [
        e.message
        for e in crd_validator("monitoring.coreos.com/v1", "ServiceMonitor").iter_errors(manifest)
    ]
    assert any(complaint in m for m in messages), messages


def test_kubernetes_check_catches_unknown_fields() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "revisionHistoryLimitt": 3,
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)
