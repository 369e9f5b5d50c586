"""observability/jobs.py: every job run counted by function and outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from arq.worker import Retry
from prometheus_client import REGISTRY

from observability import context
from observability.jobs import instrument_job


def _count(function: str, outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("arq_jobs_total", {"function": function, "outcome": outcome})
        or 0.0
    )


async def probe_job(ctx: dict[str, Any], behaviour: str) -> str | None:
    if behaviour == "fail":
        raise ValueError("no")
    if behaviour == "retry":
        raise Retry(defer=1)
    if behaviour == "hang":
        await asyncio.sleep(10)
    return context.job_id.get()


async def test_outcomes_success_failure_retry_cancelled() -> None:
    job = instrument_job(probe_job)
    assert job.__name__ == "probe_job"  # arq names jobs after the function
    before = {o: _count("probe_job", o) for o in ("success", "failure", "retry", "cancelled")}
    assert await job({"job_id": "j-1"}, "ok") == "j-1"
    with pytest.raises(ValueError):
        await job({"job_id": "j-2"}, "fail")
    with pytest.raises(Retry):
        await job({"job_id": "j-3"}, "retry")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(job({"job_id": "j-4"}, "hang"), 0.05)
    after = {o: _count("probe_job", o) for o in before}
    assert {o: after[o] - before[o] for o in before} == {
        "success": 1,
        "failure": 1,
        "retry": 1,
        "cancelled": 1,
    }
    assert (
        REGISTRY.get_sample_value("arq_job_duration_seconds_count", {"function": "probe_job"}) == 4
    )
    assert context.job_id.get() is None
