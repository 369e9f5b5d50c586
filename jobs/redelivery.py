"""The worker's periodic recovery of webhook deliveries GitHub could not make."""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from jobs.context import WorkerContext
from jobs.deferral import defer_when_github_says_wait
from mergequeue.webhooks.redelivery import (
    RedeliveryReport,
    RedisRedeliveryLedger,
    redeliver_missed,
    stored_in,
)
from observability.metrics import WEBHOOK_REDELIVERIES_REQUESTED

log = logging.getLogger("mergequeue.redelivery")

# Of the job's 30 s: reading the App's deliveries stops after this long (the newest come
# first), leaving time to ask for up to WEBHOOK_REDELIVERY_MAX_PER_RUN redeliveries.
LISTING_SECONDS = 12.0


async def redeliver_failed_webhooks(ctx: dict[str, Any]) -> int:
    """Ask GitHub to redeliver what failed or was never stored; returns how many."""
    worker = WorkerContext.of(ctx)
    github = worker.github
    if github is None or not github.authenticates_as_app:
        # Only an App's own credentials can list and redeliver its deliveries.
        return 0
    settings = worker.settings

    async def stored(guids: Collection[str]) -> set[str]:
        return await stored_in(worker.database, guids)

    report = await redeliver_missed(
        github=github,
        stored=stored,
        ledger=RedisRedeliveryLedger(
            worker.redis, window_seconds=settings.WEBHOOK_REDELIVERY_REPEAT_AFTER_SECONDS
        ),
        horizon_seconds=settings.WEBHOOK_REDELIVERY_HORIZON_SECONDS,
        limit=settings.WEBHOOK_REDELIVERY_MAX_PER_RUN,
        listing_seconds=LISTING_SECONDS,
    )
    record(report)
    if report.stopped_by is not None:
        # What was asked is remembered; the rest is asked for when GitHub allows it.
        with defer_when_github_says_wait(ctx):
            raise report.stopped_by
    return len(report.requested)


def record(report: RedeliveryReport) -> None:
    """Count and log one run (the worker's job and the command line alike)."""
    WEBHOOK_REDELIVERIES_REQUESTED.labels("missed").inc(len(report.requested))
    if not report.horizon_reached:
        log.warning(
            "listing the App's webhook deliveries stopped before the horizon (time budget); "
            "older failures are asked for by `mergequeue deliveries redeliver --since`",
            extra={"examined": report.examined},
        )
    if report.requested or report.left_over or report.refused:
        log.info(
            "asked GitHub to redeliver missed webhooks",
            extra={
                "requested": len(report.requested),
                "left_over": report.left_over,
                "refused": report.refused,
                "already_requested": report.already_requested,
            },
        )
