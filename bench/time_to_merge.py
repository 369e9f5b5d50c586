"""5. Time to merge: from the last required check's success webhook to GitHub's merge call.

Real web and worker processes against the fake GitHub (answering instantly), PostgreSQL
and Redis. Pull requests go through one at a time: labelled, seen waiting for checks,
then CI reports success. The merge call's time comes from the fake's call log.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from bench.plan import Plan
from bench.report import Row, percentile
from bench.services import Services
from tests.support import webhooks
from tests.support.scenario import Scenario

SCENARIO = "5 time to merge"
MERGE_ROUTE = "/repos/{owner}/{repo}/pulls/{pull_number}/merge"


def _entry_status(database_url: str, number: int) -> str | None:
    async def fetch() -> Any:
        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return await conn.fetchval(
                "SELECT qe.status FROM queue_entries qe"
                " JOIN pull_requests pr ON pr.id = qe.pull_request_id"
                " WHERE pr.number = $1 ORDER BY qe.id DESC LIMIT 1",
                number,
            )
        finally:
            await conn.close()

    return asyncio.run(fetch())


def _wait(predicate: Any, timeout: float, what: str, every: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(every)
    raise RuntimeError(f"time-to-merge: not within {timeout}s: {what}")


def run(services: Services, plan: Plan) -> list[Row]:
    fake = services.fake_github()
    database_url = services.postgres_url()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": services.redis_url(),
        "LOG_LEVEL": "WARNING",
        **fake.app_env(),
    }
    web = services.web("ttm-web", "api.main:app", GITHUB_WEBHOOK_SECRET=webhooks.SECRET, **env)
    services.worker("ttm-worker", **env)
    scenario = Scenario(fake, web)
    scenario.setup(required=("ci",), strict=True)

    to_merge: list[float] = []
    to_answer: list[float] = []
    for _ in range(plan.merges):
        number = scenario.open_pull()
        scenario.add_label(number)
        _wait(
            lambda n=number: _entry_status(database_url, n) == "waiting_for_checks",
            30,
            f"pull request {number} waiting for checks",
        )
        head = scenario.head(number)
        sent = time.time()
        scenario.report(head, "ci", "success")
        to_answer.append(time.time() - sent)
        path = f"/repos/{scenario.full_name}/pulls/{number}/merge"
        [call] = _wait(
            lambda p=path: [c for c in fake.calls(MERGE_ROUTE, "PUT") if c["path"] == p],
            30,
            f"merge call for pull request {number}",
            every=0.05,
        )
        to_merge.append(call["at"] - sent)

    p50, p99 = percentile(to_merge, 50), percentile(to_merge, 99)
    return [
        Row(
            SCENARIO,
            "success webhook -> merge call, p99",
            f"{p99 * 1000:.0f} ms",
            "< 1 s",
            p99 < 1.0,
            f"p50 {p50 * 1000:.0f} ms, max {max(to_merge) * 1000:.0f} ms over {len(to_merge)} "
            f"pull requests; webhook answered in p50 "
            f"{percentile(to_answer, 50) * 1000:.0f} ms",
        )
    ]
