"""`max_parallel_builds: auto`: the number of builds at once, from measured builds."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from mergequeue.models import Build, BuildState
from mergequeue.queue.sizing import Measured, auto_builds, cost_per_landed, landed_per_hour
from tests.queue.harness import Harness

HALF_HOUR = timedelta(minutes=30)


def test_without_failures_every_build_lands_and_costs_one_build() -> None:
    assert cost_per_landed(8, 0.0) == 1.0
    assert landed_per_hour(8, 0.0, HALF_HOUR) == 16.0


def test_a_failure_throws_away_the_builds_behind_it() -> None:
    # One build in ten fails: a landed pull request comes with 1/9 failure, each
    # discarding the 7 builds behind it.
    assert cost_per_landed(8, 0.1) == 1.0 + 7 / 9


def test_failures_make_each_more_build_worth_less_and_cost_more() -> None:
    rates = [landed_per_hour(k, 0.1, HALF_HOUR) for k in range(1, 12)]
    gains = [after - before for before, after in pairwise(rates)]
    assert all(g > 0 for g in gains) and gains == sorted(gains, reverse=True)
    costs = [cost_per_landed(k, 0.1) for k in range(1, 12)]
    assert costs == sorted(costs)


def test_auto_picks_the_fewest_builds_that_keep_up_with_arrivals() -> None:
    measured = Measured(95, 5, HALF_HOUR, arrivals_per_hour=12)
    # 12 an hour of which 95% land, with a tenth's headroom: 12.54 an hour.
    k = auto_builds(measured, budget=2.0, limit=32, fallback=4)
    assert k == 9
    assert landed_per_hour(k, 0.05, HALF_HOUR) >= 12.54 > landed_per_hour(k - 1, 0.05, HALF_HOUR)


def test_auto_stays_within_the_ci_budget_when_it_cannot_keep_up() -> None:
    measured = Measured(70, 30, HALF_HOUR, arrivals_per_hour=12)
    k = auto_builds(measured, budget=2.0, limit=32, fallback=4)
    assert k == 3
    assert cost_per_landed(k, 0.3) <= 2.0 < cost_per_landed(k + 1, 0.3)


def test_a_backlog_beyond_a_round_of_arrivals_asks_for_builds_to_drain_it_in_an_hour() -> None:
    measured = Measured(95, 5, HALF_HOUR, arrivals_per_hour=1)
    assert auto_builds(measured, budget=2.0, limit=32, fallback=4, waiting=0) == 1
    # Six waiting where half a pull request arrives a round: 5.5 to drain within the
    # hour on top of the arrivals, 6.5 an hour: 4 builds land 6.9.
    assert auto_builds(measured, budget=2.0, limit=32, fallback=4, waiting=6) == 4
    assert auto_builds(measured, budget=1.2, limit=32, fallback=4, waiting=30) == 4


def test_auto_uses_the_configured_number_until_enough_was_measured() -> None:
    assert auto_builds(Measured(3, 1, HALF_HOUR, 12), budget=2.0, limit=32, fallback=4) == 4
    assert auto_builds(Measured(50, 0, None, 12), budget=2.0, limit=32, fallback=4) == 4


async def test_a_repository_on_auto_starts_as_many_builds_as_its_measurements_say() -> None:
    h = Harness()
    h.configure(queue_mode="parallel", batch_wait_seconds=0, max_parallel_builds=0)
    # Ten hours of history: 20 builds of 30 minutes, one in ten failed.
    for i in range(20):
        h.store.builds.append(
            Build(
                id=1000 + i,
                repository_id=h.repository.id,
                base_ref="main",
                branch=f"mergequeue/main/{1000 + i}",
                state=BuildState.LANDED if i % 10 else BuildState.DROPPED,
                members=[],
                parent_sha="x",
                created_at=h.now - timedelta(hours=10) + timedelta(minutes=30 * i),
                finished_at=h.now - timedelta(hours=10) + timedelta(minutes=30 * i + 30),
                outcome="passed" if i % 10 else "failed",
            )
        )
    numbers = [h.open_pull() for _ in range(6)]
    for number in numbers:
        await h.label(number)
    await h.evaluate()
    testing = [b for b in h.store.builds if b.state == BuildState.TESTING]
    # Six queued at once (24 an hour so far), builds that fail one time in ten: up to 10
    # builds are within the budget, so each of the six gets one (the configured default
    # would have been 4).
    assert len(testing) == 6
