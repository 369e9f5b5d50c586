"""Riding out a Redis outage: arq's worker, kept alive and reconnecting with backoff.

arq's `Worker.main` lets any Redis error out of its poll loop, and `run()` then closes
the worker: the process exited about 2 s after Redis went away and did not come back
without a supervisor. `OutageTolerantWorker.main` catches the errors that mean "Redis is
unreachable", waits with exponential backoff (0.5 s doubling to 5 s) until Redis answers
a PING, and resumes arq's own loop; `on_startup` is not run again (`jobs.worker.startup`
returns at once for a context already set up). Nothing is lost meanwhile: deliveries are
in the database and the sweeper re-enqueues them; queues are re-read by reconciliation.

`RedisLink` is what the worker's `/healthz` reports: alive and riding out an outage
(200, with how long Redis has been unreachable), or stuck (503: arq's loop has made no
progress, neither a poll nor a reconnection attempt, for `STUCK_AFTER` seconds).

arq builds its `Worker` from the name `arq.worker.Worker` (in `create_worker`, which its
CLI calls), so `install()` puts this subclass there. That name, `main`, `heart_beat`,
`close`, `tasks` and `_last_health_check` are arq's (pinned below 0.29):
tests/jobs/test_redis_outage.py fails if an upgrade changes what they do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import arq.worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

log = logging.getLogger("mergequeue.worker")

# What Redis being away looks like: refused or reset connections, timeouts, a server
# still loading its data after a restart (a ConnectionError subclass).
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 5.0
# arq polls every 50 ms and retries Redis at least every 5 s: a loop silent for this long
# is stuck, not waiting.
STUCK_AFTER = 30.0


def redis_down(exc: BaseException) -> bool:
    """Whether `exc` means Redis is unreachable. redis-py reports a connection lost while
    a key is WATCHed (arq's start_jobs and enqueue_job) as a WatchError raised while
    handling the ConnectionError; an ordinary WatchError (the key changed) is not one."""
    if isinstance(exc, WatchError):
        return isinstance(exc.__context__, REDIS_DOWN)
    return isinstance(exc, REDIS_DOWN)


class RedisLink:
    """The worker loop's last sign of life and Redis's reachability, for `/healthz`.
    Written on the event loop, read from the metrics listener's threads."""

    def __init__(self) -> None:
        self.progress_at = time.monotonic()
        self.down_since: float | None = None

    def progress(self) -> None:
        self.progress_at = time.monotonic()

    def health(self) -> tuple[int, dict[str, Any]]:
        now = time.monotonic()
        silent = now - self.progress_at
        down_since = self.down_since
        body: dict[str, Any] = {
            "status": "ok",
            "redis": "up" if down_since is None else "unreachable",
        }
        if down_since is not None:
            body["redis_unreachable_seconds"] = round(now - down_since, 1)
        if silent > STUCK_AFTER:
            body["status"] = "stuck"
            body["loop_silent_seconds"] = round(silent, 1)
            return 503, body
        return 200, body


LINK = RedisLink()


class OutageTolerantWorker(arq.worker.Worker):
    async def main(self) -> None:
        while True:
            try:
                await super().main()
                return
            except (*REDIS_DOWN, WatchError) as exc:
                if not redis_down(exc):
                    raise
                await self._wait_for_redis(exc)

    async def heart_beat(self) -> None:
        LINK.progress()
        await super().heart_beat()

    async def _wait_for_redis(self, exc: BaseException) -> None:
        started = time.monotonic()
        LINK.down_since = started
        log.warning(
            "redis unreachable; retrying with backoff",
            extra={"error": f"{type(exc).__name__}: {exc}"[:300]},
        )
        delay = FIRST_BACKOFF_SECONDS
        attempts = 0
        while True:
            LINK.progress()
            self._forget_finished_jobs()
            await asyncio.sleep(delay)
            attempts += 1
            try:
                if self._pool is not None:
                    await self._pool.ping()
                break
            except (*REDIS_DOWN, WatchError):
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
        LINK.down_since = None
        LINK.progress()
        # Write the health key at the next poll, not up to 10 s later: a restarted Redis
        # has lost it, and `arq --check` should pass again as soon as the worker is back.
        self._last_health_check = 0
        log.info(
            "redis reachable again",
            extra={"outage_seconds": round(time.monotonic() - started, 1), "attempts": attempts},
        )

    def _forget_finished_jobs(self) -> None:
        # arq's poll loop removes finished jobs from `tasks`; while it is paused, this does,
        # so a SIGTERM during the outage does not wait its whole grace period for jobs
        # that are long over. Their errors were logged by arq when they ended.
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                if not task.cancelled():
                    task.exception()

    async def close(self) -> None:
        try:
            await super().close()
        except (*REDIS_DOWN, WatchError) as exc:
            if not redis_down(exc):
                raise
            # Stopped while Redis is away: arq's close() could not delete its health key,
            # and gave up before running on_shutdown. The key expires by itself.
            log.warning("redis unreachable at shutdown; closing without it")
            if self.on_shutdown:
                await self.on_shutdown(self.ctx)
            if self._pool is not None:
                with contextlib.suppress(*REDIS_DOWN):
                    await self._pool.close(close_connection_pool=True)
                self._pool = None


def install() -> None:
    """Make arq's CLI (`arq jobs.WorkerSettings`) build an OutageTolerantWorker."""
    arq.worker.Worker = OutageTolerantWorker  # type: ignore[misc]
