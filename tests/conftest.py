"""Fixtures shared by every test: real PostgreSQL, real Redis, fresh databases.

PostgreSQL must be running (`scripts/test` starts it); Redis runs as this session's own
server. A test whose dependency is missing fails loudly; it never skips.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.databases import PG_HOST, PG_PORT, PostgresDatabases, SqliteDatabases
from tests.support.processes import free_port
from tests.support.redis_server import OwnRedis, start_redis

REDIS_HOST = "127.0.0.1"
# Directories whose tests start real processes or tools; everything else runs in process.
PROCESS_DIRECTORIES = frozenset({"e2e", "reliability", "bench", "deploy", "cli"})


# The longest test files (a minute or more each), run first: pytest-xdist hands whole files
# to its two workers in collection order, so a long file left for last would run alone.
LONGEST_FIRST = (
    "e2e/test_parallel_mode.py",
    "e2e/test_merge_queue.py",
    "reliability/test_worker_crashes.py",
    "reliability/test_soak.py",
    "bench/test_bench_smoke.py",
    "e2e/test_webhook_processing.py",
    "e2e/test_throughput_promises.py",
    "bench/test_instructions.py",
    "reliability/test_github_faults.py",
    "queue/test_simulation.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests_root = Path(__file__).parent
    for item in items:
        parts = Path(str(item.path)).relative_to(tests_root).parts
        kind = "processes" if parts[0] in PROCESS_DIRECTORIES else "inprocess"
        item.add_marker(getattr(pytest.mark, kind))

    def rank(item: pytest.Item) -> int:
        relative = Path(str(item.path)).relative_to(tests_root).as_posix()
        return LONGEST_FIRST.index(relative) if relative in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a file, and among the rest, the order stays


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    if not _reachable(PG_HOST, PG_PORT):
        pytest.fail(
            f"PostgreSQL is not running on {PG_HOST}:{PG_PORT}; run the tests with scripts/test",
            pytrace=False,
        )
    databases = PostgresDatabases()
    databases.migrate_template()
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def sqlite_databases(tmp_path_factory: pytest.TempPathFactory) -> SqliteDatabases:
    databases = SqliteDatabases(tmp_path_factory.mktemp("sqlite"))
    databases.migrate_template()
    return databases


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database of each kind the service supports."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_databases").fresh()
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    url = databases.fresh()
    yield url
    databases.drop(url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database of each kind, shared by one module's tests."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_databases").fresh()
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    url = databases.fresh()
    yield url
    databases.drop(url)


@pytest.fixture
def postgres_url(postgres_databases: PostgresDatabases) -> Iterator[str]:
    url = postgres_databases.fresh()
    yield url
    postgres_databases.drop(url)


@pytest.fixture
def sqlite_url(sqlite_databases: SqliteDatabases) -> str:
    return sqlite_databases.fresh()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real Redis server of this test session's own, on a free port.

    Another test run on the same machine (or anything else using the machine's Redis)
    can neither take this session's jobs nor flush its keys.
    """
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed; run the tests with scripts/test", pytrace=False)
    port = free_port()
    server = start_redis(port, tmp_path_factory.mktemp("redis") / "redis.log")
    yield port
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A Redis server of this test's own, so stopping it (an outage) disturbs nothing else."""
    redis = OwnRedis(tmp_path)
    yield redis
    redis.stop_all()


def _fresh_redis(port: int, db: int) -> str:
    client = redis.Redis(host=REDIS_HOST, port=port, db=db)
    client.flushdb()
    client.close()
    return f"redis://{REDIS_HOST}:{port}/{db}"


@pytest.fixture
def redis_url(redis_server: int) -> str:
    """An empty Redis database: no job or key of an earlier test can leak into this one."""
    return _fresh_redis(redis_server, 0)


@pytest.fixture(scope="module")
def module_redis_url(redis_server: int) -> str:
    """An empty Redis database shared by one module's tests."""
    return _fresh_redis(redis_server, 1)
