"""Both processes freeze the heap they build at start, so full collections stay short."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from api.app import create_app
from mergequeue.heap import freeze_startup_heap
from mergequeue.settings import load_settings
from tests.support.processes import free_port


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_freezing_moves_the_live_heap_out_of_collections(unfrozen: None) -> None:
    before = sum(gc.get_count())
    freeze_startup_heap()
    assert gc.get_freeze_count() > 10_000  # the interpreter, pytest and the app's modules
    assert sum(gc.get_count()) <= before


async def test_the_web_app_freezes_its_heap_once_started(unfrozen: None, sqlite_url: str) -> None:
    app = create_app(load_settings({"DATABASE_URL": sqlite_url}))
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 10_000


async def test_the_worker_freezes_its_heap_in_its_start_up_hook(
    unfrozen: None, sqlite_url: str, redis_url: str
) -> None:
    from arq.connections import RedisSettings, create_pool

    from jobs import worker

    settings = load_settings(
        {"DATABASE_URL": sqlite_url, "REDIS_URL": redis_url, "PROMETHEUS_PORT": str(free_port())}
    )
    redis = await create_pool(RedisSettings.from_dsn(redis_url))
    ctx = {"settings": settings, "redis": redis}
    assert worker.WorkerSettings.on_startup is worker.startup
    try:
        await worker.startup(ctx)
        assert gc.get_freeze_count() > 10_000
    finally:
        await worker.shutdown(ctx)
        await redis.aclose()
