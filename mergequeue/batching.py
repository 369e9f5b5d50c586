"""Concurrent callers' items handled together, each caller still getting its own answer.

The web process pays a fixed cost per database transaction and per Redis round trip that
dwarfs the cost of one more row or one more command. A `Batcher` lets every request ask
for its own item and wait for its own outcome while one handler call serves all the items
that arrived together: the first caller starts a handler call at once (no added latency
when idle) and whatever arrives while it runs forms the next batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# A handler answers each item in order: its result, or the exception that item raises.
Handler = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]


class Batcher(Generic[T, R]):
    def __init__(self, handler: Handler[T, R], *, max_batch: int) -> None:
        self._handler = handler
        self._max_batch = max_batch
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._running: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[R] = loop.create_future()
        # Marks a failure as seen even when its caller was cancelled and never reads it.
        outcome.add_done_callback(_observe)
        self._waiting.append((item, outcome))
        if self._running is None or self._running.done():
            self._running = loop.create_task(self._run())
        # A caller cancelled while waiting (its client went away) must not cancel the
        # handler call the other callers share.
        return await asyncio.shield(outcome)

    async def drain(self) -> None:
        """Wait until every item submitted so far has its outcome."""
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)

    async def _run(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                outcomes = await self._handler([item for item, _ in batch])
            except Exception as exc:  # the whole batch shares the failure
                outcomes = [exc] * len(batch)
            except BaseException as exc:  # cancelled: answer the callers, then stop
                _settle(batch, [exc] * len(batch))
                raise
            _settle(batch, outcomes)


def _observe(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(
    batch: list[tuple[T, asyncio.Future[R]]], outcomes: Sequence[R | BaseException]
) -> None:
    # Callers wait through asyncio.shield, so these futures are only ever settled here.
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
