"""Comparisons as paired ratios, round by round: throughput on a shared core, latency back to back.

This machine's speed drifts by several percent within minutes (a VM on a shared host),
more than some of the differences measured, and a neighbour's burst can land in one
measurement and not the next.

- Throughput (`shared_core`): the variant and the baseline serve at the same time, both
  pinned to the one server core and each saturated by its own wrk on the load core. The
  kernel gives two busy processes equal shares of the core, so the ratio of their
  request rates is the ratio of their costs per request, and whatever the host does to
  the core in those seconds it does to both. The baseline against itself measured
  100.7% (middle half 100.4-101.0%), where the back-to-back ratios of one comparison
  had a middle half 11 points wide (93.5-105.0%) on the same day.
- Latency (`interleaved`): a shared core would put the other process's time slices into
  every latency, so each variant runs alone, one after another, in rotating order.

The median over many rounds drops the rounds a neighbour disturbed; the spread of the
ratios is reported with them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench import wrk
from bench.plan import Plan
from bench.report import median, percentile
from bench.services import Services


@dataclass(frozen=True)
class Paired:
    ratios: list[float]

    @property
    def median(self) -> float:
        return median(self.ratios)

    def spread(self) -> str:
        """The middle half of the ratios, and how many there are."""
        low, high = percentile(self.ratios, 25), percentile(self.ratios, 75)
        return f"middle half of {len(self.ratios)} paired ratios {low:.1%}-{high:.1%}"


def interleaved(
    services: Services, plan: Plan, urls: dict[str, str], lua: Path
) -> dict[str, list[wrk.WrkResult]]:
    """`plan.pair_rounds` rounds of every URL; the order rotates and reverses by round, so
    no variant always follows the same one."""
    names = list(urls)
    for name in names:  # warm each process (JIT-free, but caches, pools, first requests)
        wrk.run(urls[name], lua, pinning=services.pinning, duration=plan.warmup)
    results: dict[str, list[wrk.WrkResult]] = {name: [] for name in names}
    for round_ in range(plan.pair_rounds):
        shift = round_ % len(names)
        order = names[shift:] + names[:shift]
        if round_ % 2:
            order.reverse()
        for name in order:
            results[name].append(
                wrk.run(urls[name], lua, pinning=services.pinning, duration=plan.pair_seconds)
            )
    failed = sum(r.socket_errors + r.non2xx for rs in results.values() for r in rs)
    if failed:
        raise RuntimeError(f"{failed} failed requests")
    return results


def shared_core(services: Services, plan: Plan, url: str, base_url: str, lua: Path) -> Paired:
    """`url`'s request rate over `base_url`'s, both served at once on the server core."""
    ratios = []
    with ThreadPoolExecutor(2) as pool:
        for round_ in range(plan.shared_rounds):
            # Half the connections each, one wrk thread each: together what one variant
            # gets alone. The one started first runs alone for a moment: alternate it.
            pair = [url, base_url] if round_ % 2 else [base_url, url]
            runs = {
                target: pool.submit(
                    wrk.run,
                    target,
                    lua,
                    pinning=services.pinning,
                    duration=plan.pair_seconds,
                    connections=16,
                    threads=1,
                )
                for target in pair
            }
            variant, base = runs[url].result(), runs[base_url].result()
            if variant.socket_errors + variant.non2xx + base.socket_errors + base.non2xx:
                raise RuntimeError(f"failed requests on a shared core: {variant}, {base}")
            ratios.append(variant.rps / base.rps)
    return Paired(ratios)


def p99(results: dict[str, list[wrk.WrkResult]], name: str, base: str) -> Paired:
    return Paired([a.p99_ms / b.p99_ms for a, b in zip(results[name], results[base], strict=True)])
