"""Enqueueing worker jobs from the web process, tolerating a Redis outage.

Redis is only the transport: the database is the record. When Redis is down the web
process still answers (the job's row is already stored) and the worker's sweeper enqueues
what was missed once Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from redis.exceptions import RedisError

from mergequeue.batching import Batcher

log = logging.getLogger("mergequeue.tasks")

PROCESS_DELIVERY = "process_delivery"
SYNC_REPOSITORIES = "sync_repositories"
ENQUEUE_TIMEOUT_SECONDS = 2.0


def sync_job_id(installation_id: int) -> str:
    return f"sync-repositories:{installation_id}"


def delivery_job_id(delivery_id: str, attempts: int) -> str:
    # One job id per attempt: a job orphaned by a killed worker keeps its id blocked in
    # arq until its in-progress key expires; the next attempt must not wait for that.
    return f"delivery:{delivery_id}:{attempts}"


@dataclass(frozen=True)
class _Job:
    function: str
    args: tuple[Any, ...]
    job_id: str


# Bounds one pipeline (each job is a few hundred bytes).
MAX_BATCH = 128


class TaskQueue:
    def __init__(self, redis_url: str) -> None:
        settings = RedisSettings.from_dsn(redis_url)
        # Fail fast: a webhook answer must not wait on Redis reconnection back-off.
        settings.conn_timeout = 1
        settings.conn_retries = 0
        self._settings = settings
        self._pool: ArqRedis | None = None
        self._lock = asyncio.Lock()
        self._batcher: Batcher[_Job, bool] = Batcher(self._send, max_batch=MAX_BATCH)

    async def _connected(self) -> ArqRedis:
        async with self._lock:
            if self._pool is None:
                self._pool = await create_pool(self._settings)
            return self._pool

    async def enqueue(self, function: str, *args: Any, job_id: str) -> bool:
        """Enqueue unless a job with `job_id` is already queued. False when Redis failed."""
        return await self._batcher.submit(_Job(function, args, job_id))

    async def _send(self, jobs: list[_Job]) -> list[bool]:
        try:
            pool = await asyncio.wait_for(self._connected(), ENQUEUE_TIMEOUT_SECONDS)
            await asyncio.wait_for(enqueue_jobs(pool, jobs), ENQUEUE_TIMEOUT_SECONDS)
        except (RedisError, OSError, TimeoutError) as exc:
            for job in jobs:
                log.warning(
                    "could not enqueue job; the sweeper will pick it up",
                    extra={"job": job.job_id, "error": type(exc).__name__},
                )
            await self._drop()
            return [False] * len(jobs)
        return [True] * len(jobs)

    async def wake_queue(self, repository_id: int) -> bool:
        """Ask the worker to evaluate a repository's queue now."""
        try:
            pool = await asyncio.wait_for(self._connected(), ENQUEUE_TIMEOUT_SECONDS)
            await asyncio.wait_for(
                pool.set(dirty_key(repository_id), b"1"), ENQUEUE_TIMEOUT_SECONDS
            )
        except (RedisError, OSError, TimeoutError):
            await self._drop()
            return False
        return await self.enqueue(
            EVALUATE_QUEUE, repository_id, job_id=evaluate_job_id(repository_id)
        )

    async def _drop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(RedisError, OSError):
                await pool.aclose()

    async def close(self) -> None:
        await self._batcher.drain()
        await self._drop()


async def enqueue_jobs(pool: ArqRedis, jobs: list[_Job]) -> None:
    """arq's `enqueue_job` for many jobs in two round trips instead of three each.

    The same keys and job encoding as arq (so its worker runs them unchanged), and the
    same rule: a job whose id is queued, running or finished is not enqueued again. arq
    WATCHes each job key between the check and the write; here a job enqueued by someone
    else in that instant would be written twice under the same id, which queues it once
    (a sorted set holds an id once), and every job of ours is idempotent anyway.
    """
    async with pool.pipeline(transaction=False) as check:
        for job in jobs:
            check.exists(job_key_prefix + job.job_id, result_key_prefix + job.job_id)
        existing = await check.execute()
    enqueued_at = timestamp_ms()
    async with pool.pipeline(transaction=True) as write:
        for job, exists in zip(jobs, existing, strict=True):
            if exists:
                continue
            encoded = serialize_job(
                job.function, job.args, {}, None, enqueued_at, serializer=pool.job_serializer
            )
            write.psetex(job_key_prefix + job.job_id, pool.expires_extra_ms, encoded)
            write.zadd(pool.default_queue_name, {job.job_id: enqueued_at})
        await write.execute()


EVALUATE_QUEUE = "evaluate_queue"


def evaluate_job_id(repository_id: int) -> str:
    return f"evaluate:{repository_id}"


def dirty_key(repository_id: int) -> str:
    """Set on every wake-up; a running evaluation checks it before it ends (no lost wake-up)."""
    return f"mergequeue:dirty:{repository_id}"
