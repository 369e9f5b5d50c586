"""The throughput simulation (bench/throughput.py), short: two seeded 3-hour days per mode
at 12 pull requests an hour. Its invariants hold in every mode, and parallel mode with 8
builds lands more per hour than serial mode. The recorded run (docs/benchmarks.md) checks
the bars; nothing here is a timing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bench.throughput import MODES, Inputs, Mode, Outcome, limit, simulate

SHORT = Inputs(arrivals_per_hour=12, day=timedelta(hours=3))
SEEDS = (0, 1)
_OUTCOMES: dict[str, Outcome] = {}


async def _outcome(mode: Mode) -> Outcome:
    if mode.name not in _OUTCOMES:
        _OUTCOMES[mode.name] = await simulate(mode, SHORT, SEEDS)
    return _OUTCOMES[mode.name]


def _mode(name: str) -> Mode:
    return next(m for m in MODES if m.name == name)


@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
async def test_nothing_bad_or_untested_lands_and_every_arrival_finishes(mode: Mode) -> None:
    out = await _outcome(mode)
    assert out.arrivals > 0 and out.bad_arrivals > 0
    assert out.bad_landed == 0
    assert out.untested_trees == 0
    # After the drain every arrival landed or was dequeued with a reason.
    assert out.unfinished == 0
    assert out.landed + sum(out.dequeued.values()) == out.arrivals
    assert out.dequeued["bad"] == out.bad_arrivals
    assert out.stalls == 0
    assert out.landed > 0 and out.ci_runs >= out.landed


async def test_parallel_with_eight_builds_lands_more_per_hour_than_serial() -> None:
    serial = await _outcome(_mode("serial"))
    eight = await _outcome(_mode("parallel, 8 builds"))
    assert eight.landed_per_hour > serial.landed_per_hour


def test_the_limit_model() -> None:
    busy = Inputs(arrivals_per_hour=100, bad=0, flake=0)
    # Without failures: k b / D; serial 1 / D.
    assert limit(_mode("serial"), busy) == pytest.approx(2.0)
    assert limit(_mode("parallel, 8 builds, batch 4"), busy) == pytest.approx(64.0)
    # Failures reduce it; it never exceeds what arrives and can land.
    failing = Inputs(arrivals_per_hour=100)
    for mode in MODES:
        assert limit(mode, failing) < limit(mode, busy)
    quiet = Inputs(arrivals_per_hour=2)
    assert limit(_mode("parallel, 8 builds"), quiet) == pytest.approx(2 * 0.95 * 0.98)
