"""`mergequeue sync`: installations, repositories and labelled pull requests, now.

Runs the worker's own job functions, in this process and in order, instead of waiting for
their schedule: the installations (an App lists them), each one's repositories, then the
recovery of labelled pull requests and commands a missed webhook left undone (the queues
it touches are woken for the worker).
"""

from __future__ import annotations

import argparse

from arq.worker import Retry

from cli._output import OK, CommandError, emit
from cli._runtime import runtime
from jobs.reconcile import recover_missed_requests
from jobs.repositories import sync_installations, sync_repositories
from mergequeue.settings import Settings


async def run(args: argparse.Namespace, settings: Settings | None) -> int:
    assert settings is not None
    if not (settings.GITHUB_APP_ID or settings.GITHUB_TOKEN):
        raise CommandError("no GitHub credentials configured: nothing to synchronise")
    async with runtime(settings) as rt:
        ctx = rt.worker_ctx()
        try:
            installations = await sync_installations(ctx)
            repositories = 0
            for installation_id in installations:
                repositories += await sync_repositories(ctx, installation_id)
            recovered = await recover_missed_requests(ctx)
        except Retry as exc:
            # The jobs' way of saying "GitHub says wait" (a rate limit or an outage).
            delay = getattr(exc, "defer_score", None)
            wait = f" for {delay / 1000:.0f} s" if isinstance(delay, int | float) else ""
            raise CommandError(f"GitHub says wait{wait} (rate limit or outage)") from None
    result = {
        "ok": True,
        "installations": len(installations),
        "repositories": repositories,
        "recovered": recovered,
    }
    emit(
        args.json,
        result,
        lambda: (
            f"{len(installations)} installation(s), {repositories} repositor"
            f"{'y' if repositories == 1 else 'ies'} synchronised; "
            f"{recovered} labelled pull request(s) or command(s) recovered"
        ),
    )
    return OK
