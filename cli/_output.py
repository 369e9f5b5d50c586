"""Exit statuses, errors and output shared by the commands (no application imports:
`--help` and usage errors answer without loading the application, about 2 s)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

OK, FAILURE, USAGE = 0, 1, 2


class CommandError(Exception):
    """A failure to report in one line (exit status 1)."""


class UsageError(CommandError):
    """Arguments argparse could not judge alone (exit status 2, like argparse's own)."""


def emit(as_json: bool, data: Any, text: Callable[[], str]) -> None:
    """Print `data` as JSON, or its text rendering for a person."""
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        rendered = text()
        if rendered:
            print(rendered)


def fail(message: str) -> int:
    print(f"mergequeue: {message}", file=sys.stderr)
    return FAILURE


def add_json_option(parser: Any) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print machine-readable JSON instead of text"
    )


Run = Callable[[argparse.Namespace, Any], Awaitable[int]]


def lazy(module: str, function: str) -> Run:
    """The command's function, imported only when that command runs."""

    async def run(args: argparse.Namespace, settings: Any) -> int:
        target: Run = getattr(importlib.import_module(module), function)
        return await target(args, settings)

    return run
