"""4. Database metrics: a DB-bound endpoint with ENABLE_DB_METRICS off and on.

Two web processes on the same seeded PostgreSQL database, measured in interleaved rounds.
"""

from __future__ import annotations

import asyncio

import asyncpg

from bench import wrk
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
    results: dict[str, list[wrk.WrkResult]] = {"off": [], "on": []}
    for round_ in range(plan.rounds):
        for name in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
            url = urls[name] + "/api/v1/repos"
            wrk.run(url, lua, pinning=services.pinning, duration=plan.warmup)
            results[name].append(
                wrk.run(url, lua, pinning=services.pinning, duration=plan.duration)
            )
    failed = sum(r.socket_errors + r.non2xx for rs in results.values() for r in rs)
    if failed:
        raise RuntimeError(f"db-metrics: {failed} failed requests")
    rps = {n: median([r.rps for r in rs]) for n, rs in results.items()}
    p99 = {n: median([r.p99_ms for r in rs]) for n, rs in results.items()}
    ratio = rps["on"] / rps["off"]
    return [
        Row(
            SCENARIO,
            "GET /api/v1/repos throughput, on vs off",
            pct(ratio),
            ">= 97%",
            ratio >= 0.97,
            f"{rps['on']:,.0f} vs {rps['off']:,.0f} req/s; p99 {p99['on']:.1f} vs "
            f"{p99['off']:.1f} ms; {REPOSITORIES} rows",
        )
    ]
