"""A typed view of arq's untyped `ctx` dict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis

from mergequeue.db import Database
from mergequeue.github import GitHubClient
from mergequeue.settings import Settings
from observability.exposition import Renderer
from observability.listener import MetricsListener

_KEY = "mergequeue"


@dataclass
class WorkerContext:
    settings: Settings
    database: Database
    redis: ArqRedis
    github: GitHubClient | None
    # The worker process's own; None when the job functions run elsewhere (the CLI).
    metrics_listener: MetricsListener | None = None
    renderer: Renderer | None = None

    @staticmethod
    def of(ctx: dict[str, Any]) -> WorkerContext:
        found: WorkerContext = ctx[_KEY]
        return found

    def attach(self, ctx: dict[str, Any]) -> None:
        ctx[_KEY] = self
