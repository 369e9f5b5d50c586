"""The API-economy benchmark (bench/api_economy.py) is a deterministic simulation: its bars
are checked here, so a change that spends more of GitHub's rate limit fails the suite."""

from __future__ import annotations

from bench.api_economy import (
    BAR_POINTS_PER_GREEN_MERGE,
    BAR_POINTS_PER_WAITING_HOUR,
    BAR_SHOWING_WRITES_PER_GREEN_MERGE,
    NOW,
    PREVIOUS,
    behind,
    failing,
    green,
    waiting_hour,
)


async def test_a_green_merge_costs_at_most_15_rate_limit_points() -> None:
    measured = await green(NOW)
    assert measured.merged == 1
    assert measured.queue_points <= BAR_POINTS_PER_GREEN_MERGE


async def test_showing_a_green_merge_on_its_pull_request_writes_once_per_state_shown() -> None:
    measured = await green(NOW)
    # Testing, then landed: the status and the status comment, each posted then updated.
    assert 0 < measured.showing <= BAR_SHOWING_WRITES_PER_GREEN_MERGE


async def test_an_hour_waiting_on_ci_costs_at_most_60_rate_limit_points() -> None:
    measured = await waiting_hour(NOW)
    assert measured.points <= BAR_POINTS_PER_WAITING_HOUR


async def test_the_behind_and_failing_paths_stay_cheap_too() -> None:
    updated, dequeued = await behind(NOW), await failing(NOW)
    assert updated.merged == 1 and updated.queue_points <= 20
    assert dequeued.merged == 0 and dequeued.queue_points <= BAR_POINTS_PER_GREEN_MERGE


async def test_conditional_requests_and_pacing_are_what_saves_the_budget() -> None:
    # The same hour without them: the comparison the benchmark reports.
    assert (await waiting_hour(PREVIOUS)).points > 10 * (await waiting_hour(NOW)).points
