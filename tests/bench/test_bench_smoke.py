"""The benchmark harness still runs: `python -m bench --smoke`, every scenario, one table.

Not a timed test: the numbers of a smoke run mean nothing and no bar is asserted here.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support.processes import ROOT

SCENARIO_ROWS = (
    "| 1 request instrumentation |",
    "| 2 scrape under load |",
    "| 3 webhook ingest |",
    "| 4 database metrics |",
    "| 5 time to merge |",
    "| 6 memory |",
)


def test_the_harness_completes_in_smoke_mode_and_prints_every_scenario() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        # It takes about a minute on an idle machine of this kind; the margin is for a
        # loaded one (a bounded run, not a timing).
        timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    for row in SCENARIO_ROWS:
        assert row in done.stdout, f"no {row} row in:\n{output}"
    assert "did not complete" not in done.stdout, output
