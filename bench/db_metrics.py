"""4. Database metrics: a DB-bound endpoint with ENABLE_DB_METRICS off and on.

Two web processes on the same seeded PostgreSQL database: throughput on a shared core,
latency back to back, in many short rounds (`bench.compare`).
"""

from __future__ import annotations

import asyncio

import asyncpg

from bench import compare, wrk
from bench.plan import Plan
from bench.report import Row, median, pct
from bench.services import API_TOKEN, Services

SCENARIO = "4 database metrics"
REPOSITORIES = 20


def seed_repositories(database_url: str, count: int) -> None:
    async def insert() -> None:
        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.executemany(
                "INSERT INTO repositories (id, owner, name, default_branch, paused)"
                " VALUES ($1, $2, $3, 'main', false)",
                [(1000 + i, "acme", f"repo-{i:03d}") for i in range(count)],
            )
        finally:
            await conn.close()

    asyncio.run(insert())


def run(services: Services, plan: Plan) -> list[Row]:
    database_url = services.postgres_url()
    seed_repositories(database_url, REPOSITORIES)
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": services.redis_url(),
        "API_TOKENS": API_TOKEN,
        "LOG_LEVEL": "WARNING",
    }
    urls = {
        "off": services.web("db-off", "api.main:app", ENABLE_DB_METRICS="false", **env),
        "on": services.web("db-on", "api.main:app", ENABLE_DB_METRICS="true", **env),
    }
    lua = wrk.script(services.workdir, "repos", headers={"Authorization": f"Bearer {API_TOKEN}"})
    targets = {name: url + "/api/v1/repos" for name, url in urls.items()}
    results = compare.interleaved(services, plan, targets, lua)
    rps = {n: median([r.rps for r in rs]) for n, rs in results.items()}
    p99 = {n: median([r.p99_ms for r in rs]) for n, rs in results.items()}
    ratio = compare.shared_core(services, plan, targets["on"], targets["off"], lua)
    return [
        Row(
            SCENARIO,
            "GET /api/v1/repos throughput, on vs off",
            pct(ratio.median),
            ">= 97%",
            ratio.median >= 0.97,
            f"{ratio.spread()} on a shared core; alone {rps['on']:,.0f} vs "
            f"{rps['off']:,.0f} req/s, p99 {p99['on']:.1f} vs {p99['off']:.1f} ms; "
            f"{REPOSITORIES} rows",
        )
    ]
