"""Enqueueing from the web process (mergequeue.tasks) against a real Redis and arq."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import Job, JobStatus
from arq.worker import Worker, func

from mergequeue.tasks import TaskQueue


@pytest.fixture
async def arq_redis(redis_url: str) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    yield pool
    await pool.aclose()


@pytest.fixture
async def tasks(redis_url: str) -> AsyncIterator[TaskQueue]:
    queue = TaskQueue(redis_url)
    yield queue
    await queue.close()


async def test_jobs_enqueued_together_are_queued_once_each_with_their_arguments(
    tasks: TaskQueue, arq_redis: ArqRedis
) -> None:
    results = await asyncio.gather(
        *(tasks.enqueue("process_delivery", f"d-{i}", job_id=f"job-{i}") for i in range(20)),
        tasks.enqueue("process_delivery", "d-0", job_id="job-0"),
    )
    assert results == [True] * 21
    queued = await arq_redis.queued_jobs()
    assert sorted(j.job_id for j in queued) == sorted(f"job-{i}" for i in range(20))
    info = await Job("job-7", arq_redis).info()
    assert info is not None and info.function == "process_delivery" and info.args == ("d-7",)


async def test_a_job_already_queued_or_finished_is_not_enqueued_again(
    tasks: TaskQueue, arq_redis: ArqRedis
) -> None:
    assert await arq_redis.enqueue_job("process_delivery", "a", _job_id="taken") is not None
    assert await tasks.enqueue("process_delivery", "b", job_id="taken")
    info = await Job("taken", arq_redis).info()
    assert info is not None and info.args == ("a",)  # arq's own job kept, not overwritten
    assert len(await arq_redis.queued_jobs()) == 1


async def test_arqs_worker_runs_what_was_enqueued(tasks: TaskQueue, arq_redis: ArqRedis) -> None:
    seen: list[str] = []

    async def process_delivery(ctx: dict[str, Any], delivery_id: str) -> str:
        seen.append(delivery_id)
        return delivery_id

    await asyncio.gather(
        *(tasks.enqueue("process_delivery", f"d-{i}", job_id=f"run-{i}") for i in range(5))
    )
    worker = Worker(
        functions=[func(process_delivery, name="process_delivery")],
        redis_pool=arq_redis,
        burst=True,
        poll_delay=0.01,
        handle_signals=False,
    )
    await worker.main()
    assert sorted(seen) == [f"d-{i}" for i in range(5)]
    assert await Job("run-3", arq_redis).status() == JobStatus.complete
    # A finished job's id stays taken while arq keeps its result.
    assert await tasks.enqueue("process_delivery", "again", job_id="run-3")
    assert await arq_redis.queued_jobs() == []


async def test_redis_down_answers_false_for_every_waiting_job(unused_tcp_port: int) -> None:
    queue = TaskQueue(f"redis://127.0.0.1:{unused_tcp_port}/0")
    try:
        results = await asyncio.gather(
            *(queue.enqueue("process_delivery", str(i), job_id=f"down-{i}") for i in range(3))
        )
        assert results == [False, False, False]
    finally:
        await queue.close()
