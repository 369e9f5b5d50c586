"""Shared by the deployment tests: the values matrix and a real helm v3 that renders the chart
once per values set.

Tools are required, not optional: a missing helm, promtool or hadolint fails the test that
needs it (run ./scripts/install-tools).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm"
HELM = REPO / ".tools" / "bin" / "helm"
RELEASE = "mq"
NAMESPACE = "merge"

# Distinctive secret values: none of them may appear in a workload's manifest.
SECRET_VALUES = {
    "databaseUrl": "postgresql+asyncpg://mq:db-pass-7f3a91@db:5432/mq",
    "redisUrl": "redis://:redis-pass-51c2e8@redis:6379/0",
    "githubAppPrivateKey": (
        "-----BEGIN RSA PRIVATE KEY-----\npem-body-0c4d22\n-----END RSA PRIVATE KEY-----"
    ),
    "githubWebhookSecret": "webhook-secret-9b1e07",
    "apiTokens": "api-token-one-a1b2c3,api-token-two-d4e5f6",
    "githubToken": "ghp_tokenvalue8e8e8e",
    "githubOauthClientSecret": "oauth-client-secret-3c3c3c",
    "sessionSecret": "session-secret-5e5e5e-of-at-least-32-chars",
}
BASIC_AUTH = {"username": "scraper-user-42aa", "password": "metrics-pass-6d6d6d"}

# The snippet of docs/operations.md ("Helm chart"), character for character.
CONTRACT_SNIPPET = """\
common:
  env:
    - name: "SERVE_PROMETHEUS_ENDPOINT"
      value: "true"
"""

# The values matrix: every combination the tests promise something about.
SCENARIOS: dict[str, dict[str, Any] | str] = {
    "defaults": {},
    "contract-snippet": CONTRACT_SNIPPET,
    "separate-port": {"common": {"env": [{"name": "WEB_PROMETHEUS_PORT", "value": "9100"}]}},
    "basic-auth": {
        "common": {"env": [{"name": "SERVE_PROMETHEUS_ENDPOINT", "value": "true"}]},
        "metrics": {
            "basicAuth": {"enabled": True, **BASIC_AUTH},
            "serviceMonitor": {"enabled": True},
        },
    },
    "monitoring": {
        "common": {"env": [{"name": "SERVE_PROMETHEUS_ENDPOINT", "value": "true"}]},
        "metrics": {
            "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
            "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
            "grafanaDashboard": {"enabled": True},
        },
    },
    "existing-secret": {
        "secrets": {"existingSecret": "mq-secrets"},
        "metrics": {
            "basicAuth": {"enabled": True, "existingSecret": "mq-metrics-auth"},
            "serviceMonitor": {"enabled": True},
        },
    },
    "all-secrets": {
        "common": {"env": [{"name": "SERVE_PROMETHEUS_ENDPOINT", "value": "true"}]},
        "secrets": SECRET_VALUES,
        "metrics": {
            "basicAuth": {"enabled": True, **BASIC_AUTH},
            "serviceMonitor": {"enabled": True},
        },
    },
}
DIGEST = "sha256:" + "0123456789abcdef" * 4


def everything(metrics_env: dict[str, str]) -> dict[str, Any]:
    """Every optional object of the chart switched on."""
    return {
        "image": {"repository": "registry.example.com/mergequeue", "digest": DIGEST},
        "imagePullSecrets": [{"name": "regcred"}],
        "common": {"env": [metrics_env, {"name": "ENABLE_DB_METRICS", "value": "true"}]},
        "secrets": SECRET_VALUES,
        "web": {
            "workers": 2,
            "forwardedAllowIps": "10.0.0.0/8",
            "autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80},
            "podDisruptionBudget": {"maxUnavailable": None, "minAvailable": 1},
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "web"}},
                }
            ],
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
                "hosts": [{"host": "mq.example.org"}],
                "paths": {"api": True, "graphql": True, "docs": True, "dashboard": True},
                "extraPaths": [{"path": "/static", "pathType": "Prefix"}],
                "tls": [{"hosts": ["mq.example.org"], "secretName": "mq-tls"}],
            },
        },
        "worker": {
            "readinessProbe": {"enabled": True},
            "podDisruptionBudget": {"maxUnavailable": "50%"},
        },
        "metrics": {
            "basicAuth": {"enabled": True, **BASIC_AUTH},
            "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
            "prometheusRule": {
                "enabled": True,
                "runbookBaseUrl": "https://git.example.com/ops/mergequeue/blob/main/docs/runbook.md",
                "rules": {"MergequeueHighErrorRatio": {"threshold": 0.02}},
                "extraRules": [
                    {
                        "record": "mergequeue:merges:rate1h",
                        "expr": "sum(rate(mergequeue_merges_total[1h]))",
                    }
                ],
            },
            "grafanaDashboard": {"enabled": True},
        },
        "networkPolicy": {
            "enabled": True,
            "web": {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}
                        }
                    }
                ]
            },
            "egress": {
                "database": {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]},
                "extra": [
                    {
                        "to": [{"ipBlock": {"cidr": "10.30.0.5/32"}}],
                        "ports": [{"protocol": "TCP", "port": 3128}],
                    }
                ],
            },
        },
    }


SCENARIOS["everything"] = everything({"name": "SERVE_PROMETHEUS_ENDPOINT", "value": "true"})
SCENARIOS["everything-separate-port"] = everything({"name": "WEB_PROMETHEUS_PORT", "value": "9100"})


def require_tool(path_or_name: str | Path) -> str:
    """The tool's path; fails (never skips) when it is not installed."""
    found = shutil.which(str(path_or_name))
    if found is None:
        pytest.fail(f"{path_or_name} is not installed: run ./scripts/install-tools")
    return found


def run(args: list[str], *, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@dataclass
class Rendered:
    text: str
    docs: list[dict[str, Any]] = field(default_factory=list)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        full = f"{RELEASE}-mergequeue-{name}" if name else f"{RELEASE}-mergequeue"
        found = [d for d in self.all(kind) if d["metadata"]["name"] == full]
        names = [d["metadata"]["name"] for d in self.all(kind)]
        assert len(found) == 1, f"expected one {kind} {full}, found {names}"
        return found[0]

    def workload(self, component: str) -> dict[str, Any]:
        kind = "Job" if component == "migrations" else "Deployment"
        return self.one(kind, component)

    def pod(self, component: str) -> dict[str, Any]:
        template: dict[str, Any] = self.workload(component)["spec"]["template"]
        return template

    def container(self, component: str) -> dict[str, Any]:
        containers: list[dict[str, Any]] = self.pod(component)["spec"]["containers"]
        assert len(containers) == 1
        return containers[0]

    def env(self, component: str) -> dict[str, dict[str, Any]]:
        entries = self.container(component).get("env", [])
        names = [e["name"] for e in entries]
        assert len(names) == len(set(names)), f"duplicate env names in {component}: {names}"
        return {e["name"]: e for e in entries}

    def annotations(self, component: str) -> dict[str, str]:
        annotations: dict[str, str] = self.pod(component)["metadata"].get("annotations") or {}
        return annotations


def _values_file(tmp: Path, values: dict[str, Any] | str) -> Path:
    text = values if isinstance(values, str) else yaml.safe_dump(values)
    name = f"values-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    path = tmp / name
    path.write_text(text)
    return path


class Helm:
    def __init__(self, tmp: Path) -> None:
        self.binary = require_tool(HELM)
        self.tmp = tmp
        self._cache: dict[str, subprocess.CompletedProcess[str]] = {}

    def _template(self, values: dict[str, Any] | str) -> subprocess.CompletedProcess[str]:
        key = values if isinstance(values, str) else json.dumps(values, sort_keys=True)
        if key not in self._cache:
            self._cache[key] = self._run_template(CHART, values)
        return self._cache[key]

    def _run_template(
        self, chart: Path, values: dict[str, Any] | str
    ) -> subprocess.CompletedProcess[str]:
        path = _values_file(self.tmp, values)
        args = ["template", RELEASE, str(chart), "--namespace", NAMESPACE, "-f", str(path)]
        return run([self.binary, *args])

    def render(self, values: dict[str, Any] | str) -> Rendered:
        result = self._template(values)
        assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        return Rendered(text=result.stdout, docs=docs)

    def render_error(self, values: dict[str, Any] | str) -> str:
        result = self._template(values)
        assert result.returncode != 0, "helm template unexpectedly succeeded"
        return result.stderr

    def notes(self, values: dict[str, Any] | str) -> str:
        """NOTES.txt as `helm install` would print it (helm template leaves it out: a copy of
        the chart renders it into a ConfigMap)."""
        chart = self.tmp / "notes-chart"
        if not chart.exists():
            shutil.copytree(CHART, chart)
            notes = (chart / "templates" / "NOTES.txt").read_text()
            (chart / "templates" / "_notes_test.tpl").write_text(
                '{{- define "notes.test" -}}\n' + notes + "\n{{- end }}\n"
            )
            (chart / "templates" / "notes_test.yaml").write_text(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
                'data:\n  notes: {{ include "notes.test" . | toJson }}\n'
            )
        result = self._run_template(chart, values)
        assert result.returncode == 0, result.stderr
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        notes_text: str = next(d for d in docs if d["metadata"]["name"] == "notes")["data"]["notes"]
        return notes_text

    def lint(self, values: dict[str, Any] | str) -> subprocess.CompletedProcess[str]:
        path = _values_file(self.tmp, values)
        return run(
            [self.binary, "lint", "--strict", str(CHART), "--namespace", NAMESPACE, "-f", str(path)]
        )


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()
