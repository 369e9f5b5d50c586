"""The web process's entry point: `uvicorn api.main:app`.

The composition root: settings are built here, once, and passed down explicitly.
"""

from __future__ import annotations

import sys

from mergequeue.settings import ConfigError, load_settings

try:
    settings = load_settings()
except ConfigError as exc:
    # One line naming the variable, not a traceback from deep inside uvicorn's import.
    print(f"mergequeue: invalid configuration: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(2) from None

from api.app import create_app
from observability.logging import configure_logging

configure_logging(level=settings.LOG_LEVEL, fmt=settings.LOG_FORMAT)
app = create_app(settings)
