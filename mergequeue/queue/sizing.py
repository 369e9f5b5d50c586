"""How many staging builds to run at once when a repository asks for `auto`: the fewest
that keep up with the pull requests arriving, within a budget of CI builds per landed pull
request, from what the repository's recent builds measured.

The model (docs/benchmarks.md, "Throughput", checks it against the simulation). k builds
are in flight, each taking the CI duration D. A build fails with probability q (the
measured share of builds that failed), and a failure throws away the builds behind it,
about k - 1 of them while the chain is full. A landed build comes with q / (1 - q)
failures, so each landed pull request costs

    C(k) = 1 + (k - 1) q / (1 - q)

CI builds, and k builds in flight land T(k) = k / (D C(k)) pull requests an hour. T grows
with k, ever more slowly, while C grows: past some k, more builds buy nothing but CI
minutes. (An earlier model counted a failure's cost within one round of k builds only; it
missed the builds dropped behind a failure that started later, and the measured cost ran
above it.)

`auto_builds` picks the smallest k whose T(k) keeps up with the pull requests that will
land (the arrivals times 1 - q, with a margin for bursts) plus a backlog beyond one round
drained within the hour, unless that costs more than the budget: then the largest k
within the budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Final

# Keep up with a tenth more than arrives: arrivals come in bursts.
HEADROOM: Final = 1.1
# A backlog beyond one round of arrivals is to be drained within this long.
DRAIN: Final = timedelta(hours=1)
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


def cost_per_landed(builds: int, failure_rate: float) -> float:
    """C(k): CI builds spent per landed pull request with `builds` in flight."""
    if failure_rate >= 1.0:
        return float("inf")
    return 1.0 + (builds - 1) * failure_rate / (1.0 - failure_rate)


def landed_per_hour(builds: int, failure_rate: float, ci_duration: timedelta) -> float:
    """T(k): pull requests landed an hour with `builds` in flight."""
    hours = ci_duration.total_seconds() / 3600
    return builds / (hours * cost_per_landed(builds, failure_rate)) if hours > 0 else float("inf")


def auto_builds(
    measured: Measured, *, budget: float, limit: int, fallback: int, waiting: int = 0
) -> int:
    """The number of builds at once, between 1 and `limit`; `fallback` until enough has
    been measured (fewer than ten finished builds, or no duration yet). `waiting`: the
    pull requests queued now; a backlog beyond a round of arrivals asks for more builds
    (within the budget), so it drains rather than only keeping level."""
    if measured.builds_passed + measured.builds_failed < 10 or measured.ci_duration is None:
        return fallback
    q = measured.failure_rate
    duration = measured.ci_duration
    arriving = measured.arrivals_per_hour * (1.0 - q)
    round_of_arrivals = measured.arrivals_per_hour * duration.total_seconds() / 3600
    backlog = max(0.0, waiting - round_of_arrivals)
    needed = arriving * HEADROOM + backlog / (DRAIN.total_seconds() / 3600)
    within_budget = [k for k in range(1, limit + 1) if cost_per_landed(k, q) <= budget] or [1]
    for k in within_budget:
        if landed_per_hour(k, q, duration) >= needed:
            return k
    return within_budget[-1]
