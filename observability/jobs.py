"""Wrapping arq job functions so each run is counted by function and outcome.

arq's on_job_start/on_job_end hooks know neither the function nor how the job ended,
hence a wrapper per function. The wrapper keeps the function's name, which arq uses as
the job's name.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from arq.worker import Retry

from observability import context
from observability.metrics import JOB_DURATION, JOBS

P = ParamSpec("P")
R = TypeVar("R")


def instrument_job(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    name = func.__name__
    duration = JOB_DURATION.labels(name)

    @functools.wraps(func)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx: dict[str, Any] = args[0] if args and isinstance(args[0], dict) else {}
        token = context.job_id.set(str(ctx.get("job_id")) if ctx.get("job_id") else None)
        start = time.perf_counter()
        outcome = "failure"
        try:
            result = await func(*args, **kwargs)
            outcome = "success"
            return result
        except Retry:
            outcome = "retry"
            raise
        except asyncio.CancelledError:
            # Job timeouts and worker shutdown both cancel the job.
            outcome = "cancelled"
            raise
        finally:
            duration.observe(time.perf_counter() - start)
            JOBS.labels(name, outcome).inc()
            context.job_id.reset(token)

    return run
