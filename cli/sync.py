"""`mergequeue sync`: installations, repositories and labelled pull requests, now."""

from __future__ import annotations

from typing import Any

from cli._output import add_json_option, lazy


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "sync",
        help="synchronise installations, repositories and labelled pull requests now",
        description="Synchronise with GitHub now, as the worker does periodically: the "
        "App's installations, their repositories, and labelled pull requests or "
        "/mergequeue commands a missed webhook left unqueued.",
    )
    add_json_option(parser)
    parser.set_defaults(run=lazy("cli._sync", "run"))
