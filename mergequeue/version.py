from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def build_version() -> str:
    try:
        return version("mergequeue")
    except PackageNotFoundError:
        return "0.0.0+unknown"
