"""`mergequeue check`: configuration, database, Redis and GitHub, one line each."""

from __future__ import annotations

from typing import Any

from cli._output import add_json_option, lazy


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "check",
        help="check configuration, database, Redis and GitHub credentials",
        description="Check the configuration, that the database answers and is migrated, "
        "that Redis answers, and that the GitHub credentials work (an App: a JWT and "
        "GET /app/installations; a token: GET /user). One line per check; exit status 1 "
        "when any fails.",
    )
    add_json_option(parser)
    parser.set_defaults(run=lazy("cli._check", "run"))
