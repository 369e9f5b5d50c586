"""How many staging builds to run at once when a repository asks for `auto`: the fewest
that keep up with the pull requests arriving, within a budget of CI builds per landed pull
request, from what the repository's recent builds measured.

The model (docs/benchmarks.md, "Throughput", explains it with the measurements). The k
builds of a chain are tested together, in rounds of one CI duration D. A build fails with
probability q (the measured share of builds that failed). A round lands the builds ahead of
the first failure, and everything behind a failure is made again, so a round of k builds
lands, on average,

    L(k) = sum over i = 1..k of (1 - q)^i = (1 - q) (1 - (1 - q)^k) / q

builds (k when q = 0), and costs k builds: k / L(k) CI builds per landed one. Throughput is
L(k) / D builds an hour. L grows with k, but ever more slowly, while the cost grows: past
some k, more builds buy nothing but CI minutes.

`auto_builds` picks the smallest k whose throughput keeps up with the arrivals (with a
margin) or takes the current backlog in one round, whichever asks more, unless that costs
more than the budget: then the largest k within the budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Final

# Keep up with a quarter more than arrives: arrivals come in bursts.
HEADROOM: Final = 1.25
DEFAULT_CI_BUDGET: Final = 2.0
# How far back the measurements reach.
WINDOW: Final = timedelta(days=1)
# Build outcomes (Build.outcome) that count as a pass or a failure of CI.
PASSED_OUTCOMES: Final = frozenset({"passed"})
FAILED_OUTCOMES: Final = frozenset({"failed", "timed_out", "flaky"})


@dataclass(frozen=True)
class Measured:
    """What the repository's recent staging builds and queue showed."""

    builds_passed: int
    builds_failed: int
    ci_duration: timedelta | None  # median time from a build's start to its outcome
    arrivals_per_hour: float  # pull requests queued per hour

    @property
    def failure_rate(self) -> float:
        done = self.builds_passed + self.builds_failed
        return self.builds_failed / done if done else 0.0


def measured(
    builds: Sequence[tuple[str | None, datetime, datetime | None]],
    arrivals: Sequence[datetime],
    now: datetime,
) -> Measured:
    """`Measured` from (outcome, created, finished) of finished builds and when pull
    requests were queued (over the window, or since the first of them when the queue is
    younger than that)."""
    passed = [(c, f) for o, c, f in builds if o in PASSED_OUTCOMES and f is not None]
    failed = sum(1 for o, _, _ in builds if o in FAILED_OUTCOMES)
    durations = [(f - c).total_seconds() for c, f in passed]
    first = min(arrivals, default=now)
    hours = max((now - first).total_seconds() / 3600, 0.25)
    return Measured(
        builds_passed=len(passed),
        builds_failed=failed,
        ci_duration=timedelta(seconds=median(durations)) if durations else None,
        arrivals_per_hour=len(arrivals) / hours,
    )


def landed_per_round(builds: int, failure_rate: float) -> float:
    """L(k): builds landed on average by a round of `builds` chained builds."""
    if failure_rate <= 0.0:
        return float(builds)
    passing = 1.0 - failure_rate
    return passing * (1.0 - passing**builds) / failure_rate


def cost_per_landed(builds: int, failure_rate: float) -> float:
    landed = landed_per_round(builds, failure_rate)
    return builds / landed if landed > 0 else float("inf")


def auto_builds(
    measured: Measured, *, budget: float, limit: int, fallback: int, waiting: int = 0
) -> int:
    """The number of builds at once, between 1 and `limit`; `fallback` until enough has
    been measured (fewer than ten finished builds, or no duration yet). `waiting`: the
    pull requests queued now; a backlog asks for as many builds as it holds (within the
    budget), so it drains rather than only keeping level."""
    if measured.builds_passed + measured.builds_failed < 10 or measured.ci_duration is None:
        return fallback
    hours = measured.ci_duration.total_seconds() / 3600
    # Landed per round to keep up with arrivals, or to take the whole backlog in a round.
    needed = max(measured.arrivals_per_hour * HEADROOM * hours, float(waiting))
    q = measured.failure_rate
    within_budget = [k for k in range(1, limit + 1) if cost_per_landed(k, q) <= budget] or [1]
    for k in within_budget:
        if landed_per_round(k, q) >= needed:
            return k
    return within_budget[-1]
