"""6. Memory: web and worker RSS idle, after a warm-up, and after the full load.

The web process gets a mix of routes (health, REST reads, unmatched URLs, webhooks); the
worker processes every delivery the web stored (one job each). Growth is measured from
the warm-up (a tenth of the load) to the end, so one-time allocations do not count.
"""

from __future__ import annotations

import time

from bench import wrk
from bench.db_metrics import seed_repositories
from bench.ingest import count_rows, deliver
from bench.machine import rss_mib
from bench.plan import Plan
from bench.report import Row, pct
from bench.services import API_TOKEN, WEBHOOK_SECRET, Services

SCENARIO = "6 memory"
PATHS = [
    "/healthz",
    "/api/v1/repos",
    "/api/v1/repos/acme/repo-001",
    "/api/v1/repos/acme/repo-002/queue",
    "/api/v1/repos/acme/missing",
    *(f"/no/such/page/{i}" for i in range(16)),
]


def run(services: Services, plan: Plan) -> list[Row]:
    database_url = services.postgres_url()
    seed_repositories(database_url, 20)
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": services.redis_url(),
        "API_TOKENS": API_TOKEN,
        "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "LOG_LEVEL": "WARNING",
    }
    base = services.web("mem-web", "api.main:app", **env)
    services.worker("mem-worker", **env)
    web_pid, worker_pid = services.pids["mem-web"], services.pids["mem-worker"]
    lua = wrk.script(
        services.workdir, "mix", headers={"Authorization": f"Bearer {API_TOKEN}"}, paths=PATHS
    )
    time.sleep(2)
    idle = (rss_mib(web_pid), rss_mib(worker_pid))

    sent = {"requests": 0, "jobs": 0}

    def load(requests: int, jobs: int) -> None:
        # Requests: wrk in slices until the count is reached; jobs: one delivery each.
        while sent["requests"] < requests:
            result = wrk.run(base, lua, pinning=services.pinning, duration=plan.duration)
            if result.socket_errors:
                raise RuntimeError(f"memory: {result.socket_errors} socket errors")
            sent["requests"] += result.requests
        missing = jobs - sent["jobs"]
        if missing > 0:
            answered = deliver(services, base, 600, count=missing)
            if answered.statuses != {"202": missing}:
                raise RuntimeError(f"memory: deliveries answered {answered.statuses}")
            sent["jobs"] += missing
            sent["requests"] += missing
        deadline = time.monotonic() + 600
        while count_rows(database_url, "webhook_deliveries", "state = 'received'"):
            if time.monotonic() > deadline:
                raise RuntimeError("memory: the worker did not process every delivery")
            time.sleep(0.5)

    load(plan.memory_requests // 10, plan.memory_jobs // 10)
    warm = (rss_mib(web_pid), rss_mib(worker_pid))
    load(plan.memory_requests, plan.memory_jobs)
    time.sleep(1)
    end = (rss_mib(web_pid), rss_mib(worker_pid))

    rows = []
    for i, name in enumerate(("web", "worker")):
        growth = end[i] / warm[i] - 1
        rows.append(
            Row(
                SCENARIO,
                f"{name} RSS growth after warm-up",
                pct(growth),
                "<= 10%",
                growth <= 0.10,
                f"idle {idle[i]:.0f} MiB, warm {warm[i]:.0f} MiB, end {end[i]:.0f} MiB "
                f"after {sent['requests']:,} requests / {sent['jobs']:,} jobs",
            )
        )
    return rows
