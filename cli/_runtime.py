"""The settings' database, Redis and GitHub client, for the commands that need them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.exceptions import RedisError

from cli._output import CommandError
from jobs.context import WorkerContext
from mergequeue.db import Database, create_database
from mergequeue.github import GitHubClient
from mergequeue.github_setup import github_client
from mergequeue.settings import Settings

# A command line must not hang on an unreachable server.
REDIS_TIMEOUT_SECONDS = 3


@dataclass
class Runtime:
    settings: Settings
    database: Database
    redis: ArqRedis
    github: GitHubClient | None

    def worker_ctx(self) -> dict[str, Any]:
        """A context the worker's job functions accept, so commands run them as they are."""
        ctx: dict[str, Any] = {"job_try": 1}
        WorkerContext(
            settings=self.settings, database=self.database, redis=self.redis, github=self.github
        ).attach(ctx)
        return ctx


def redis_settings(url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    settings.conn_timeout = REDIS_TIMEOUT_SECONDS
    settings.conn_retries = 0
    return settings


@asynccontextmanager
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    database = create_database(settings.DATABASE_URL)
    github = github_client(settings)
    try:
        try:
            redis = await create_pool(redis_settings(settings.REDIS_URL))
        except (RedisError, OSError, TimeoutError) as exc:
            raise CommandError(f"Redis unreachable: {type(exc).__name__}: {exc}") from None
        try:
            yield Runtime(settings=settings, database=database, redis=redis, github=github)
        finally:
            await redis.aclose()
    finally:
        if github is not None:
            await github.aclose()
        await database.dispose()
