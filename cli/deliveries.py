"""`mergequeue deliveries list|replay|redeliver`: the stored webhook deliveries."""

from __future__ import annotations

import argparse
import re
from typing import Any

from cli._output import add_json_option, lazy

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# GitHub keeps an App's deliveries for three days.
MAX_SINCE_SECONDS = 3 * 86400
# mergequeue.models.DeliveryState's values (a test keeps them equal), spelled out so that
# `--help` does not load the database models.
STATES = ("received", "processed", "failed")


def duration(value: str) -> int:
    """`90m`, `24h`, `2d`, `3600s` or plain seconds, within GitHub's 3-day retention."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", value)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration such as 90m, 24h or 2d: {value!r}")
    seconds = int(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not 1 <= seconds <= MAX_SINCE_SECONDS:
        raise argparse.ArgumentTypeError("expected 1 s to 3 d (GitHub keeps deliveries 3 days)")
    return seconds


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("deliveries", help="stored webhook deliveries")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    list_ = actions.add_parser(
        "list",
        help="stored deliveries, the latest first",
        description="Stored webhook deliveries, the latest first: received (not yet "
        "processed), processed, or failed (parked, with the error).",
    )
    list_.add_argument("--state", choices=STATES)
    list_.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    add_json_option(list_)
    list_.set_defaults(run=lazy("cli._deliveries", "run_list"))

    replay = actions.add_parser(
        "replay",
        help="process a stored delivery again",
        description="Put a stored delivery back to `received` with no attempts and "
        "enqueue it for the worker (if Redis is down, the worker's sweeper picks it up).",
    )
    replay.add_argument("id", metavar="ID", help="the delivery id (X-GitHub-Delivery)")
    add_json_option(replay)
    replay.set_defaults(run=lazy("cli._deliveries", "run_replay"))

    redeliver = actions.add_parser(
        "redeliver",
        help="ask GitHub to redeliver what failed or was never stored",
        description="What the worker does periodically, now: ask GitHub (as the App) to "
        "redeliver every webhook of the period that no attempt delivered or that the "
        "database never stored, skipping those asked for recently.",
    )
    redeliver.add_argument(
        "--since",
        type=duration,
        required=True,
        metavar="DURATION",
        help="how far back: 90m, 24h, 2d... (at most 3d)",
    )
    redeliver.add_argument(
        "--limit", type=int, default=None, help="at most this many (WEBHOOK_REDELIVERY_MAX_PER_RUN)"
    )
    add_json_option(redeliver)
    redeliver.set_defaults(run=lazy("cli._deliveries", "run_redeliver"))
