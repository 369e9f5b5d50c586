"""3. Webhook ingest: signed deliveries as fast as one web process accepts them.

PostgreSQL is the database and Redis the job transport; no worker runs, so the web
process's work per delivery is exactly what GitHub waits for: verify, store, enqueue.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench.plan import Plan
from bench.report import Row
from bench.services import WEBHOOK_SECRET, Services

SCENARIO = "3 webhook ingest"
# Prepared deliveries per second of load: well above what one process accepts.
PREPARED_PER_SECOND = 6_000


@dataclass(frozen=True)
class IngestResult:
    answered: int
    seconds: float
    statuses: dict[str, int]
    errors: int
    exhausted: bool
    p50_ms: float
    p99_ms: float

    @property
    def accepted(self) -> int:
        return self.statuses.get("202", 0)


def deliver(
    services: Services,
    base_url: str,
    seconds: float,
    *,
    connections: int = 32,
    count: int | None = None,
) -> IngestResult:
    """Deliveries for `seconds`, or exactly `count` of them when given."""
    port = base_url.rsplit(":", 1)[1]
    if count is None:
        count = int(PREPARED_PER_SECOND * max(seconds, 1))
    argv = [*services.pinning.load_prefix(), sys.executable, "-m", "bench.ingest_client"]
    argv += ["--port", port, "--secret", WEBHOOK_SECRET, "--seconds", str(seconds)]
    argv += ["--connections", str(connections)]
    argv += ["--count", str(count)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            return IngestResult(**json.loads(line.removeprefix("BENCH ")))
    raise RuntimeError(f"ingest client failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def count_rows(database_url: str, table: str, where: str = "true") -> int:
    async def count() -> Any:
        dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {where}")
        finally:
            await conn.close()

    return int(asyncio.run(count()))


def run(services: Services, plan: Plan) -> list[Row]:
    database_url = services.postgres_url()
    base = services.web(
        "ingest-web",
        "api.main:app",
        DATABASE_URL=database_url,
        REDIS_URL=services.redis_url(),
        GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET,
        LOG_LEVEL="WARNING",
    )
    warmup = deliver(services, base, plan.warmup)
    measured = deliver(services, base, plan.ingest_seconds)
    stored = count_rows(database_url, "webhook_deliveries")
    answered_202 = warmup.accepted + measured.accepted
    other = {k: v for r in (warmup, measured) for k, v in r.statuses.items() if k != "202"}
    if measured.exhausted:
        raise RuntimeError("ingest: the client ran out of prepared deliveries; prepare more")
    rate = measured.accepted / measured.seconds
    return [
        Row(
            SCENARIO,
            "accepted deliveries/s, one web process",
            f"{rate:,.0f}/s",
            ">= 1,000/s",
            rate >= 1000,
            f"{measured.accepted:,} in {measured.seconds:.1f} s, 32 connections",
        ),
        Row(
            SCENARIO,
            "answer p99",
            f"{measured.p99_ms:.1f} ms",
            "< 100 ms",
            measured.p99_ms < 100,
            f"p50 {measured.p50_ms:.1f} ms",
        ),
        Row(
            SCENARIO,
            "stored = answered 202",
            f"{stored:,} = {answered_202:,}",
            "equal, no other answer",
            stored == answered_202 and not other and not warmup.errors + measured.errors,
            f"other answers {other or 'none'}, connection errors {warmup.errors + measured.errors}",
        ),
    ]
