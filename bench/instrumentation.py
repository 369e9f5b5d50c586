"""1. Request instrumentation overhead: one route, four ways of instrumenting it."""

from __future__ import annotations

from bench import wrk
from bench.plan import Plan
from bench.report import Row, median, pct
from bench.services import Services

VARIANTS = {
    "none": "bench.apps:plain",
    "mergequeue": "bench.apps:mergequeue",
    "starlette-exporter": "bench.apps:starlette_exporter",
    "instrumentator": "bench.apps:instrumentator",
}
SCENARIO = "1 request instrumentation"


def run(services: Services, plan: Plan) -> list[Row]:
    urls = {
        name: services.web(f"instr-{name}", app, factory=True) for name, app in VARIANTS.items()
    }
    lua = wrk.script(services.workdir, "instrumentation")
    results: dict[str, list[wrk.WrkResult]] = {name: [] for name in VARIANTS}
    names = list(VARIANTS)
    for round_ in range(plan.rounds):
        # Rotate the order each round, so drift over the run spreads across variants.
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            url = urls[name] + "/items/42"
            wrk.run(url, lua, pinning=services.pinning, duration=plan.warmup)
            results[name].append(
                wrk.run(url, lua, pinning=services.pinning, duration=plan.duration)
            )

    rps = {n: median([r.rps for r in rs]) for n, rs in results.items()}
    p99 = {n: median([r.p99_ms for r in rs]) for n, rs in results.items()}
    errors = sum(r.socket_errors + r.non2xx for rs in results.values() for r in rs)
    if errors:
        raise RuntimeError(f"instrumentation: {errors} failed requests")
    base_rps, base_p99 = rps["none"], p99["none"]
    rows = []
    for name in names[1:]:
        throughput = rps[name] / base_rps
        latency = p99[name] / base_p99
        is_mq = name == "mergequeue"
        rows.append(
            Row(
                SCENARIO,
                f"{name}: throughput vs none",
                pct(throughput),
                ">= 95%" if is_mq else "",
                throughput >= 0.95 if is_mq else None,
                f"{rps[name]:,.0f} vs {base_rps:,.0f} req/s",
            )
        )
        rows.append(
            Row(
                SCENARIO,
                f"{name}: p99 vs none",
                pct(latency),
                "<= 110%" if is_mq else "",
                latency <= 1.10 if is_mq else None,
                f"{p99[name]:.2f} vs {base_p99:.2f} ms",
            )
        )
    return rows
