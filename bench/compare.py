"""Throughput comparisons as paired ratios: variants measured back to back, round by round.

This machine's speed drifts by several percent within minutes (a VM on a shared host),
more than some of the differences measured. Each round runs every variant for a few
seconds, one after another, so a variant's ratio to the baseline is taken between
measurements seconds apart; the median over many rounds drops the rounds a neighbour
disturbed. The spread of the ratios is reported with them.
"""

from __future__ import annotations

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


def throughput(results: dict[str, list[wrk.WrkResult]], name: str, base: str) -> Paired:
    return Paired([a.rps / b.rps for a, b in zip(results[name], results[base], strict=True)])


def p99(results: dict[str, list[wrk.WrkResult]], name: str, base: str) -> Paired:
    return Paired([a.p99_ms / b.p99_ms for a, b in zip(results[name], results[base], strict=True)])
