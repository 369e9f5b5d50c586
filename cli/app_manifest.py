"""`mergequeue app-manifest`: placeholder, filled in by the manifest flow."""

from __future__ import annotations

from typing import Any


def add_parser(commands: Any) -> None:
    return None
