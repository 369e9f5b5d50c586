"""The batcher behind group commit and batched enqueue: one handler call per batch, each
caller its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from mergequeue.batching import Batcher


class Recorder:
    def __init__(self, *, delay: float = 0.01) -> None:
        self.calls: list[list[int]] = []
        self.delay = delay

    async def __call__(self, items: list[int]) -> Sequence[int | BaseException]:
        self.calls.append(items)
        await asyncio.sleep(self.delay)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def test_an_item_submitted_alone_is_handled_at_once() -> None:
    handler = Recorder(delay=0)
    batcher = Batcher(handler, max_batch=10)
    assert await asyncio.wait_for(batcher.submit(2), 1) == 20
    assert handler.calls == [[2]]


async def test_items_submitted_together_share_one_call() -> None:
    handler = Recorder()
    batcher = Batcher(handler, max_batch=100)
    results = await asyncio.gather(*(batcher.submit(i * 2) for i in range(50)))
    assert results == [i * 20 for i in range(50)]
    assert [len(call) for call in handler.calls] == [50]


async def test_items_arriving_during_a_call_share_the_next_call() -> None:
    handler = Recorder(delay=0.05)
    batcher = Batcher(handler, max_batch=100)
    first = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.01)  # the first call is under way
    results = await asyncio.gather(first, *(batcher.submit(i * 2) for i in range(1, 50)))
    assert results == [i * 20 for i in range(50)]
    assert [len(call) for call in handler.calls] == [1, 49]


async def test_batches_never_exceed_max_batch() -> None:
    handler = Recorder()
    batcher = Batcher(handler, max_batch=8)
    await asyncio.gather(*(batcher.submit(i * 2) for i in range(30)))
    assert max(len(call) for call in handler.calls) == 8
    assert sorted(i for call in handler.calls for i in call) == [i * 2 for i in range(30)]


async def test_each_caller_gets_its_own_outcome_or_exception() -> None:
    batcher = Batcher(Recorder(), max_batch=10)
    outcomes = await asyncio.gather(*(batcher.submit(i) for i in range(4)), return_exceptions=True)
    assert outcomes[0] == 0 and outcomes[2] == 20
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "odd 1"
    assert isinstance(outcomes[3], ValueError) and str(outcomes[3]) == "odd 3"


async def test_a_failing_handler_fails_its_whole_batch_and_the_next_batch_still_runs() -> None:
    calls = 0

    async def flaky(items: list[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise ConnectionError("down")
        return list(items)

    batcher = Batcher(flaky, max_batch=10)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0)
    later = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 3)]
    with pytest.raises(ConnectionError):
        await first
    assert await asyncio.gather(*later) == [2, 3]


async def test_a_cancelled_caller_does_not_cancel_the_others_call() -> None:
    handler = Recorder(delay=0.05)
    batcher = Batcher(handler, max_batch=10)
    leaving = asyncio.ensure_future(batcher.submit(0))
    staying = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0.01)  # both are in the call under way
    leaving.cancel()
    assert await staying == 20
    await batcher.drain()
    assert handler.calls == [[0, 2]]  # the cancelled caller's item was still handled


async def test_drain_waits_for_everything_submitted() -> None:
    handler = Recorder(delay=0.02)
    batcher = Batcher(handler, max_batch=10)
    pending = [asyncio.ensure_future(batcher.submit(i * 2)) for i in range(5)]
    await asyncio.sleep(0)
    await batcher.drain()
    assert all(p.done() for p in pending)
