"""The arq worker: `arq jobs.WorkerSettings`.

WorkerSettings is loaded on first access, so importing a job module (in tests, or from
the web process) does not build the worker's settings.
"""

from typing import Any

__all__ = ["WorkerSettings"]


def __getattr__(name: str) -> Any:
    if name == "WorkerSettings":
        from jobs.worker import WorkerSettings

        return WorkerSettings
    raise AttributeError(name)
