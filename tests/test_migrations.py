"""The Alembic migrations build exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.support.processes import BIN, base_env, run


def test_migrations_match_the_models(database_url: str) -> None:
    # `alembic check` fails when autogenerate would find any difference.
    result = run([str(BIN / "alembic"), "check"], base_env(DATABASE_URL=database_url))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr


def test_migrations_downgrade_and_upgrade_again(database_url: str) -> None:
    env = base_env(DATABASE_URL=database_url)
    for command in (["downgrade", "base"], ["upgrade", "head"]):
        result = run([str(BIN / "alembic"), *command], env)
        assert result.returncode == 0, result.stdout + result.stderr
