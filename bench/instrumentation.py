"""1. Request instrumentation overhead: one route, four ways of instrumenting it.

A fifth variant, not shipped, takes the request id out of mergequeue's layer, so the
table shows what the id costs apart from the metrics.
"""

from __future__ import annotations

from bench import compare, wrk
from bench.plan import Plan
from bench.report import Row, median, pct
from bench.services import Services

VARIANTS = {
    "none": "bench.apps:plain",
    "mergequeue": "bench.apps:mergequeue",
    "mergequeue without request ids (ablation)": "bench.apps:mergequeue_without_request_ids",
    "starlette-exporter": "bench.apps:starlette_exporter",
    "instrumentator": "bench.apps:instrumentator",
}
SHIPPED = "mergequeue"
SCENARIO = "1 request instrumentation"


def run(services: Services, plan: Plan) -> list[Row]:
    urls = {
        name: services.web(f"instr-{index}", app, factory=True) + "/items/42"
        for index, (name, app) in enumerate(VARIANTS.items())
    }
    lua = wrk.script(services.workdir, "instrumentation")
    results = compare.interleaved(services, plan, urls, lua)
    rps = {name: median([r.rps for r in rs]) for name, rs in results.items()}
    p99 = {name: median([r.p99_ms for r in rs]) for name, rs in results.items()}
    rows = []
    for name in list(VARIANTS)[1:]:
        barred = name == SHIPPED
        throughput = compare.shared_core(services, plan, urls[name], urls["none"], lua)
        latency = compare.p99(results, name, "none")
        rows.append(
            Row(
                SCENARIO,
                f"{name}: throughput vs none",
                pct(throughput.median),
                ">= 95%" if barred else "",
                throughput.median >= 0.95 if barred else None,
                f"{throughput.spread()} on a shared core; alone "
                f"{rps[name]:,.0f} vs {rps['none']:,.0f} req/s",
            )
        )
        rows.append(
            Row(
                SCENARIO,
                f"{name}: p99 vs none",
                pct(latency.median),
                "<= 110%" if barred else "",
                latency.median <= 1.10 if barred else None,
                f"{p99[name]:.2f} vs {p99['none']:.2f} ms; {latency.spread()}",
            )
        )
    return rows
