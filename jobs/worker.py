"""`arq jobs.WorkerSettings`: the worker process.

arq reads the class's own attributes (not inherited ones), so everything is set here.
Settings are built once, when arq imports this module.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from typing import Any, ClassVar

from arq.connections import RedisSettings
from arq.cron import CronJob, cron
from arq.worker import func

from jobs import redis_outage
from jobs.context import WorkerContext
from jobs.deliveries import PROCESS_TIMEOUT_SECONDS, process_delivery, sweep_inbox
from jobs.evaluate import evaluate_queue
from jobs.gauges import refresh_gauges
from jobs.notifications import send_notifications, watch_notifications
from jobs.reconcile import reconcile_queues, recover_missed_requests
from jobs.redelivery import redeliver_failed_webhooks
from jobs.repositories import sync_all_installations, sync_repositories
from mergequeue.db import create_database
from mergequeue.github_setup import github_client
from mergequeue.heap import freeze_startup_heap
from mergequeue.settings import ConfigError, Settings, load_settings
from mergequeue.tasks import EVALUATE_QUEUE, PROCESS_DELIVERY, SYNC_REPOSITORIES
from mergequeue.version import build_version
from observability import context
from observability.db import install_query_timing
from observability.exposition import Renderer
from observability.github import observe_github_call, observe_rate_limit
from observability.jobs import instrument_job
from observability.listener import MetricsListener
from observability.logging import configure_logging
from observability.metrics import BUILD_INFO

log = logging.getLogger("mergequeue.worker")

# How often the worker refreshes its health-check key; the key expires a second after
# that, so `arq --check` reports a crashed or stuck worker within about 11 seconds.
HEALTH_CHECK_INTERVAL_SECONDS = 10
# How often reconciliation looks for queues that are due (a deadline passed, or quiet
# for a minute); looking costs only a database query, the re-read is paced (jobs.reconcile).
RECONCILE_EVERY_SECONDS = 15
# One key per host, so the check run inside a pod (a liveness probe) is about that pod's
# worker, not "some worker somewhere on this queue".
HEALTH_CHECK_KEY = f"arq:queue:health-check:{socket.gethostname()}"
# On SIGTERM, stop taking jobs and let running ones finish for up to this long before
# cancelling them (arq's default, 0, cancels at once: a delivery half-processed is redone
# later, a merge half-done is left for reconciliation). Below the chart's 60 s grace
# period, so Kubernetes does not SIGKILL the worker first.
SHUTDOWN_GRACE_SECONDS = 45
POLL_DELAY_SECONDS = 0.05
# How often the notifications outbox is looked at (a cheap query while it is empty).
NOTIFY_SEND_EVERY_SECONDS = 5


def _load() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"mergequeue: invalid configuration: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


async def startup(ctx: dict[str, Any]) -> None:
    if "mergequeue" in ctx:
        return  # arq's main loop resumed after a Redis outage: everything is set up
    settings: Settings = ctx["settings"]
    configure_logging(level=settings.LOG_LEVEL, fmt=settings.LOG_FORMAT)
    database = create_database(settings.DATABASE_URL)
    if settings.ENABLE_DB_METRICS:
        install_query_timing(database.engine)
    renderer = Renderer(None, loop=asyncio.get_running_loop())
    listener = MetricsListener(
        host="0.0.0.0",
        port=settings.PROMETHEUS_PORT,
        credentials=settings.basic_auth,
        renderer=renderer,
        health=redis_outage.LINK.health,
    )
    listener.start()
    BUILD_INFO.labels(build_version()).set(1)
    github = github_client(
        settings, observe_call=observe_github_call, observe_rate_limit=observe_rate_limit
    )
    WorkerContext(
        settings=settings,
        database=database,
        redis=ctx["redis"],
        metrics_listener=listener,
        renderer=renderer,
        github=github,
    ).attach(ctx)
    freeze_startup_heap()
    log.info(
        "worker started",
        extra={"version": build_version(), "metrics_port": listener.port},
    )


async def on_job_start(ctx: dict[str, Any]) -> None:
    # run_job's task lives for the whole job, so arq's own "job finished" line gets it too.
    context.job_id.set(str(ctx.get("job_id")))


async def shutdown(ctx: dict[str, Any]) -> None:
    if "mergequeue" not in ctx:
        return
    worker = WorkerContext.of(ctx)
    if worker.metrics_listener is not None:
        worker.metrics_listener.stop()
    if worker.renderer is not None:
        worker.renderer.close()
    if worker.github is not None:
        await worker.github.aclose()
    await worker.database.dispose()
    log.info("worker stopped")


_settings = _load()
# `arq jobs.WorkerSettings` then runs a worker that rides out Redis outages.
redis_outage.install()


def every(seconds: int) -> dict[str, Any]:
    """arq's cron schedule for "every `seconds`" (5-3600): under a minute, the seconds of
    each minute it divides (a remainder shortens the minute's last gap); from a minute,
    every `seconds // 60` minutes of each hour, at second 40 (clear of the other jobs)."""
    if seconds < 60:
        return {"second": set(range(0, 60, seconds))}
    return {"minute": set(range(0, 60, seconds // 60)), "second": {40}}


def _periodic(job: Any, *, run_at_startup: bool = True, **schedule: Any) -> CronJob:
    """A cron job under its function's name, instrumented like every job, never two runs
    at once, no kept result."""
    return cron(
        instrument_job(job),  # type: ignore[arg-type]
        name=job.__name__,
        run_at_startup=run_at_startup,
        unique=True,
        timeout=30,
        keep_result=0,
        **schedule,
    )


class WorkerSettings:
    functions: ClassVar[list[Any]] = [
        # No kept result: a kept result would refuse the sweeper's re-enqueue of the same id.
        func(
            instrument_job(process_delivery),  # type: ignore[arg-type]
            name=PROCESS_DELIVERY,
            keep_result=0,
            max_tries=10,
            timeout=PROCESS_TIMEOUT_SECONDS,
        ),
        func(
            instrument_job(evaluate_queue),  # type: ignore[arg-type]
            name=EVALUATE_QUEUE,
            # No kept result: it would refuse the next wake-up's enqueue for an hour.
            keep_result=0,
            max_tries=50,
            timeout=30,
        ),
        func(
            instrument_job(sync_repositories),  # type: ignore[arg-type]
            name=SYNC_REPOSITORIES,
            keep_result=0,
            max_tries=20,
            timeout=30,
        ),
    ]
    cron_jobs: ClassVar[list[CronJob]] = [
        _periodic(reconcile_queues, second=set(range(0, 60, RECONCILE_EVERY_SECONDS))),
        # Labels and commands a missed webhook left undone: two conditional requests per
        # repository every five minutes (free while nothing changed).
        _periodic(recover_missed_requests, minute=set(range(2, 60, 5)), second=30),
        _periodic(sync_all_installations, minute=17, second=0, run_at_startup=False),
        # Webhooks GitHub failed to deliver (the service was down): asked for again.
        _periodic(
            redeliver_failed_webhooks, **every(_settings.WEBHOOK_REDELIVERY_INTERVAL_SECONDS)
        ),
        _periodic(sweep_inbox, second={5, 15, 25, 35, 45, 55}),
        _periodic(refresh_gauges, second={0, 10, 20, 30, 40, 50}),
        # Notifications: decided from the database every 30 s, sent every 5 s (a retry's
        # backoff starts at 2 s); apart from queue evaluations, so a chat never slows them.
        _periodic(watch_notifications, second={12, 42}),
        _periodic(send_notifications, second=set(range(3, 60, NOTIFY_SEND_EVERY_SECONDS))),
    ]
    on_startup = startup
    on_shutdown = shutdown
    on_job_start = on_job_start
    redis_settings = RedisSettings.from_dsn(_settings.REDIS_URL)
    health_check_interval = HEALTH_CHECK_INTERVAL_SECONDS
    health_check_key = HEALTH_CHECK_KEY
    job_completion_wait = SHUTDOWN_GRACE_SECONDS
    # arq polls Redis for new jobs; its default 0.5 s made every webhook wait up to two
    # polls (delivery, then queue evaluation) before a merge. 20 polls a second is cheap.
    poll_delay = POLL_DELAY_SECONDS
    ctx: ClassVar[dict[str, Any]] = {"settings": _settings}
    # arq holds a killed job's id "in progress" for the longest timeout + 10 s (40 s), refusing
    # wake-ups with that id meanwhile: keep every timeout short (no job needs long).
    job_timeout = 30
    max_tries = 5
