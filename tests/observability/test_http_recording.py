"""observability/http.py writes prometheus_client's values directly: what a scrape then
reads must be exactly what `Histogram.observe` and `Counter.inc` would have produced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# On bucket bounds, between them, and past the last one (+Inf).
DURATIONS = [0.0, 0.005, 0.0050001, 0.1, 0.75, 7.5, 10.0, 11.0, 1e9]

# Run in a child: prometheus_client picks in-memory or mmap values when first imported.
# Records DURATIONS for one label set and prints its samples next to those of a reference
# histogram given the same values through observe(), and the request counter.
_RECORD_AND_COLLECT = """
import json, sys
from types import SimpleNamespace
from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from observability.http import HTTPMetrics

durations, multiproc_dir = json.loads(sys.argv[1]), sys.argv[2]
metrics = HTTPMetrics()
reference = Histogram("reference_seconds", "reference")
scope = {"method": "GET", "route": SimpleNamespace(path="/recording-probe")}
for value in durations:
    metrics.record(scope, 299, value, "probe-request-0001")
    reference.observe(value)
registry = REGISTRY
if multiproc_dir:
    from prometheus_client.multiprocess import MultiProcessCollector
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=multiproc_dir)
found = {"recorded": {}, "reference": {}, "total": None}
for family in registry.collect():
    for s in family.samples:
        suffix = s.name.rsplit("_", 1)[1] + s.labels.get("le", "")
        if family.name == "reference_seconds":
            found["reference"][suffix] = s.value
        elif s.labels.get("path") == "/recording-probe":
            found["recorded"][suffix] = s.value
        elif s.name == "flask_http_request_total" and s.labels["status"] == "299":
            found["total"] = s.value
print(json.dumps(found))
"""


def _record_in_a_child(multiproc_dir: Path | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONPATH"] = str(Path(__file__).parents[2])
    if multiproc_dir is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc_dir)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _RECORD_AND_COLLECT,
            json.dumps(DURATIONS),
            str(multiproc_dir or ""),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def test_single_process_samples_equal_what_observe_and_inc_give() -> None:
    found = _record_in_a_child(None)
    assert len(found["reference"]) == 17  # 15 buckets (+Inf included), _count and _sum
    assert found["recorded"] == found["reference"]
    assert found["total"] == len(DURATIONS)


def test_multiprocess_mode_writes_through_to_the_processes_files(tmp_path: Path) -> None:
    # Read back by MultiProcessCollector from the files alone, as any worker's scrape does.
    found = _record_in_a_child(tmp_path)
    assert len(found["reference"]) == 17
    assert found["recorded"] == found["reference"]
    assert found["total"] == len(DURATIONS)
