"""Fixtures for the reliability tests: a PostgreSQL server a test may stop and restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# The e2e suite's process starters and the fake GitHub server, shared with these tests.
from tests.e2e.conftest import start_module_web, start_web, start_worker  # noqa: F401
from tests.reliability.postgres_server import PrivatePostgres
from tests.support.fake_github import fake_github  # noqa: F401
from tests.support.processes import alembic_upgrade


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running, migrated PostgreSQL cluster of this test's own (the machine's is shared)."""
    server = PrivatePostgres()
    try:
        server.start()
        alembic_upgrade(server.url)
        yield server
    finally:
        server.destroy()
