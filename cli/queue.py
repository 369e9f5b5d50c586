"""`mergequeue queue show OWNER/REPO`: a repository's queue, as the REST API shows it."""

from __future__ import annotations

import argparse
import re
from typing import Any

from cli._output import add_json_option, lazy

_FULL_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def full_name(value: str) -> str:
    if not _FULL_NAME.fullmatch(value):
        raise argparse.ArgumentTypeError(f"expected OWNER/REPO, got {value!r}")
    return value


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("queue", help="inspect a repository's queue")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show",
        help="the queue in merge order",
        description="The repository's live queue in merge order (per base branch), as "
        "GET /api/v1/repos/OWNER/REPO/queue answers.",
    )
    show.add_argument("repository", metavar="OWNER/REPO", type=full_name)
    add_json_option(show)
    show.set_defaults(run=lazy("cli._queue", "run_show"))
