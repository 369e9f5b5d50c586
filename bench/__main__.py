"""`python -m bench [--smoke] [--only NAME,...]`: run the scenarios, print the table."""

from __future__ import annotations

import argparse
import datetime
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import (
    dashboard,
    db_metrics,
    ingest,
    instrumentation,
    machine,
    memory,
    scrape,
    time_to_merge,
)
from bench.plan import Plan
from bench.report import Row, table
from bench.services import Services, services

SCENARIOS: dict[str, Callable[[Services, Plan], list[Row]]] = {
    "instrumentation": instrumentation.run,
    "scrape": scrape.run,
    "ingest": ingest.run,
    "db-metrics": db_metrics.run,
    "time-to-merge": time_to_merge.run,
    "memory": memory.run,
    "dashboard": dashboard.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a few seconds per scenario (CI)")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(SCENARIOS)}")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (scripts/install-tools installs it)", file=sys.stderr)
        return 2

    plan = Plan.smoke() if args.smoke else Plan.full()
    pinning = machine.Pinning.detect()
    workdir = Path(tempfile.mkdtemp(prefix="mergequeue-bench-"))
    print(f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}")
    print(f"machine: {machine.describe()}")
    print(f"pinning: {pinning.describe()}")
    print(f"mode: {'smoke' if args.smoke else 'full'} ({plan})")
    print(f"logs: {workdir}", flush=True)

    rows: list[Row] = []
    failed: list[str] = []
    for name in chosen:
        started = time.monotonic()
        print(f"running {name} ...", flush=True)
        try:
            with services(workdir / name, pinning) as running:
                rows += SCENARIOS[name](running, plan)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            rows.append(Row(name, "did not complete", "error", "", False, "see the log above"))
        print(f"  {name} took {time.monotonic() - started:.0f}s", flush=True)

    print()
    print(table(rows))
    if not args.keep and not failed:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
