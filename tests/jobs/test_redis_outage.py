"""jobs/redis_outage.py leans on arq internals; these fail if an arq upgrade moves them.

arq is pinned below 0.29 in pyproject.toml: check these again when raising the bound.
"""

from __future__ import annotations

import inspect

import arq.worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import WatchError

from jobs.redis_outage import LINK, STUCK_AFTER, OutageTolerantWorker, install, redis_down


def test_arq_builds_its_worker_from_the_module_name_install_replaces() -> None:
    original = arq.worker.Worker
    try:
        install()
        assert arq.worker.Worker is OutageTolerantWorker
        # create_worker (what `arq <settings>` runs) looks the name up when called.
        assert "Worker(**" in inspect.getsource(arq.worker.create_worker)
    finally:
        arq.worker.Worker = original  # type: ignore[misc]


def test_the_arq_methods_the_subclass_wraps_still_do_what_it_expects() -> None:
    main = inspect.getsource(arq.worker.Worker.main)
    assert "self.on_startup" in main and "self._poll_iteration()" in main
    assert "self._pool is None" in main  # an existing pool is reused on resumption
    assert "await self.heart_beat()" in inspect.getsource(arq.worker.Worker._poll_iteration)
    close = inspect.getsource(arq.worker.Worker.close)
    assert "self.pool.delete(self.health_check_key)" in close and "self.on_shutdown" in close
    assert "self._last_health_check) < self.health_check_interval" in inspect.getsource(
        arq.worker.Worker.record_health
    )
    assert "while len(self.tasks)" in inspect.getsource(
        arq.worker.Worker._sleep_until_tasks_complete
    )


def test_a_watch_error_is_an_outage_only_when_a_lost_connection_caused_it() -> None:
    try:
        try:
            raise RedisConnectionError("Connection closed by server.")
        except RedisConnectionError:
            raise WatchError("A ConnectionError occurred on while watching one or more keys")  # noqa: B904 - redis-py raises it so
    except WatchError as lost:
        assert redis_down(lost)
    assert not redis_down(WatchError("Watched variable changed."))


def test_liveness_reports_an_outage_as_alive_and_a_silent_loop_as_stuck() -> None:
    LINK.progress()
    LINK.down_since = LINK.progress_at - 12
    status, body = LINK.health()
    assert status == 200 and body["redis"] == "unreachable"
    assert body["redis_unreachable_seconds"] >= 12
    LINK.progress_at -= STUCK_AFTER + 1
    status, body = LINK.health()
    assert status == 503 and body["status"] == "stuck"
    LINK.down_since = None
    LINK.progress()
    assert LINK.health() == (200, {"status": "ok", "redis": "up"})
