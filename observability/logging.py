"""Structured logs: JSON lines when not on a terminal, readable text when on one.

Every record carries the request id (web) or job id (worker) of the work it belongs to.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

from observability import context

# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


# Extras that only decorate a terminal: uvicorn passes `color_message`, the message with ANSI
# colour codes, for its own formatter. JSON lines keep the plain `message`.
_TERMINAL_ONLY = frozenset({"color_message"})
# ANSI escape sequences (colours, cursor moves) anywhere else in a record's strings.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def _plain(text: str) -> str:
    return _ANSI.sub("", text) if "\x1b" in text else text


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = context.request_id.get()
        record.job_id = context.job_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _plain(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _TERMINAL_ONLY and value is not None:
                if isinstance(value, str):
                    entry[key] = _plain(value)
                else:
                    entry[key] = (
                        value if isinstance(value, int | float | bool) else _plain(str(value))
                    )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(
            f"{key}={value}"
            for key in ("request_id", "job_id")
            if (value := getattr(record, key, None))
        )
        line = (
            f"{time.strftime('%H:%M:%S', time.localtime(record.created))} "
            f"{record.levelname:<7} {record.name}: {record.getMessage()}"
        )
        if ids:
            line += f" [{ids}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(*, level: str, fmt: str) -> None:
    """Route every logger (ours, uvicorn's, arq's) through one handler on stderr."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "arq.worker"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
