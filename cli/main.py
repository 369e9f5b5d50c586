"""`mergequeue`: the entry point; each command group lives in its own module.

Exit status: 0 success, 1 failure (said in one line on stderr, or by `check`'s report),
2 usage error. Every command reads the same environment as web and
worker (docs/operations.md 2).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from cli import app_manifest, check, deliveries, queue, sync
from cli._output import USAGE, CommandError, UsageError, fail

COMMANDS = (check, sync, queue, deliveries, app_manifest)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="mergequeue",
        description="Operate a mergequeue installation: check its configuration and "
        "connections, synchronise with GitHub, inspect queues and webhook deliveries.",
        epilog="Exit status: 0 success, 1 failure, 2 usage error. Configuration comes "
        "from the environment, as for the web and worker processes.",
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parser(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings: Any = None
    if getattr(args, "needs_settings", True):
        # Loaded after parsing: `--help` and usage errors need no settings.
        from mergequeue.settings import ConfigError, load_settings

        try:
            settings = load_settings()
        except ConfigError as exc:
            if args.command != "check":
                return fail(f"invalid configuration: {exc}")
            args.config_error = str(exc)
    try:
        status: int = asyncio.run(args.run(args, settings))
    except UsageError as exc:
        fail(str(exc))
        return USAGE
    except CommandError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # A database or Redis that went away mid-command: one line, as for every other
        # failure; LOG_LEVEL=DEBUG keeps the traceback for a bug report.
        if settings is not None and settings.LOG_LEVEL == "DEBUG":
            raise
        return fail(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return status


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
