"""`mergequeue deliveries list|replay|redeliver`: the stored webhook deliveries."""

from __future__ import annotations

import argparse
from collections.abc import Collection
from typing import Any

from cli._output import FAILURE, OK, CommandError, emit
from cli._runtime import runtime
from mergequeue.db import create_database
from mergequeue.models import DeliveryState
from mergequeue.settings import Settings
from mergequeue.tasks import PROCESS_DELIVERY, delivery_job_id
from mergequeue.webhooks.inbox import listed, reset_for_replay
from mergequeue.webhooks.redelivery import RedisRedeliveryLedger, redeliver_missed, stored_in


async def run_list(args: argparse.Namespace, settings: Settings | None) -> int:
    assert settings is not None
    if args.limit < 1:
        raise CommandError("--limit must be at least 1")
    database = create_database(settings.DATABASE_URL)
    try:
        async with database.sessions() as session:
            state = DeliveryState(args.state) if args.state else None
            found = await listed(session, state=state, limit=args.limit)
    finally:
        await database.dispose()
    rows: list[dict[str, Any]] = [
        {
            "id": d.id,
            "event": d.event,
            "action": d.action,
            "repository": d.repository_full_name,
            "state": d.state.value,
            "attempts": d.attempts,
            "received_at": d.received_at.isoformat(),
            "processed_at": d.processed_at.isoformat() if d.processed_at else None,
            "error": d.error,
        }
        for d in found
    ]

    def text() -> str:
        lines = []
        for r in rows:
            event = r["event"] + (f".{r['action']}" if r["action"] else "")
            error = f"  {r['error']}" if r["error"] else ""
            lines.append(
                f"{r['id']}  {r['state']:<9} {event:<32} {r['repository'] or '-'}  "
                f"{r['received_at']}{error}"
            )
        return "\n".join(lines) or "no deliveries"

    emit(args.json, rows, text)
    return OK


async def run_replay(args: argparse.Namespace, settings: Settings | None) -> int:
    assert settings is not None
    async with runtime(settings) as rt:
        async with rt.database.sessions() as session, session.begin():
            found = await reset_for_replay(session, args.id)
        if not found:
            raise CommandError(f"no stored delivery {args.id!r}")
        job = await rt.redis.enqueue_job(
            PROCESS_DELIVERY, args.id, _job_id=f"replay:{delivery_job_id(args.id, 0)}"
        )
    emit(
        args.json,
        {"ok": True, "id": args.id, "state": "received", "enqueued": job is not None},
        lambda: f"{args.id}: back to received and enqueued",
    )
    return OK


async def run_redeliver(args: argparse.Namespace, settings: Settings | None) -> int:
    assert settings is not None
    limit = args.limit if args.limit is not None else settings.WEBHOOK_REDELIVERY_MAX_PER_RUN
    if limit < 1:
        raise CommandError("--limit must be at least 1")
    async with runtime(settings) as rt:
        if rt.github is None or not rt.github.authenticates_as_app:
            raise CommandError(
                "redelivery needs a GitHub App (GITHUB_APP_ID and its private key): only the "
                "App's own credentials can list and redeliver its webhook deliveries"
            )

        async def stored(guids: Collection[str]) -> set[str]:
            return await stored_in(rt.database, guids)

        report = await redeliver_missed(
            github=rt.github,
            stored=stored,
            ledger=RedisRedeliveryLedger(
                rt.redis, window_seconds=settings.WEBHOOK_REDELIVERY_REPEAT_AFTER_SECONDS
            ),
            horizon_seconds=args.since,
            limit=limit,
        )
    data = {
        "ok": report.stopped_by is None,
        "examined": report.examined,
        "missed": report.missed,
        "requested": list(report.requested),
        "already_requested": report.already_requested,
        "left_over": report.left_over,
        "refused": report.refused,
        "horizon_reached": report.horizon_reached,
        "stopped_by": str(report.stopped_by) if report.stopped_by else None,
    }

    def text() -> str:
        line = (
            f"{report.examined} delivery attempt(s) read, {report.missed} missed: "
            f"{len(report.requested)} redelivery request(s) accepted, "
            f"{report.already_requested} asked for recently, {report.left_over} left over"
        )
        if report.refused:
            line += f", {report.refused} refused by GitHub"
        if report.stopped_by is not None:
            line += f"; stopped: {report.stopped_by}"
        return line

    emit(args.json, data, text)
    return OK if report.stopped_by is None else FAILURE
