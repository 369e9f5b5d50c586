"""Reading an exposition back in tests."""

from __future__ import annotations

import subprocess

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

# What Prometheus sends to ask for OpenMetrics (and exemplars).
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def series_names(text: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {(s.name, tuple(sorted(s.labels.items()))) for s in samples(text)}


def value(text: str, name: str, **labels: str) -> float | None:
    for sample in samples(text):
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return None


def total(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples(text)
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def promtool_check(text: str) -> str:
    """What `promtool check metrics` reports for `text` (empty when clean)."""
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    report = (result.stdout + result.stderr).strip()
    if result.returncode != 0 and not report:
        report = f"promtool exited {result.returncode}"
    return report
