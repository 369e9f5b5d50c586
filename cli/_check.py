"""`mergequeue check`: configuration, database, Redis and GitHub, one line each."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from cli._output import FAILURE, OK, emit
from cli._runtime import redis_settings
from mergequeue.db import create_database
from mergequeue.github import GitHubError
from mergequeue.github_setup import github_client
from mergequeue.settings import Settings

# Each check gives up after this long: an unreachable server is a failure, not a hang.
CHECK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


async def run(args: argparse.Namespace, settings: Settings | None) -> int:
    if settings is None:
        results = [Result("configuration", False, args.config_error)]
        results += [
            Result(name, False, "not checked: the configuration is invalid")
            for name in ("database", "redis", "github")
        ]
    else:
        results = [
            Result("configuration", True, "valid"),
            await _bounded("database", _database(settings)),
            await _bounded("redis", _redis(settings)),
            await _bounded("github", _github(settings)),
        ]
    healthy = all(r.ok for r in results)
    emit(
        args.json,
        {"ok": healthy, "checks": [asdict(r) for r in results]},
        lambda: "\n".join(r.line() for r in results),
    )
    return OK if healthy else FAILURE


async def _bounded(name: str, check: Any) -> Result:
    try:
        detail: str = await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return Result(name, False, f"no answer within {CHECK_TIMEOUT_SECONDS:g} s")
    except _Failed as exc:
        return Result(name, False, str(exc))
    except Exception as exc:
        # Whatever the driver raises, the operator gets one line, not a traceback.
        return Result(name, False, f"{type(exc).__name__}: {exc}"[:300])
    return Result(name, True, detail)


class _Failed(Exception):
    pass


def alembic_config() -> Config:
    """alembic.ini of the working directory (the image's /app), else of the source tree."""
    for directory in (Path.cwd(), Path(__file__).resolve().parents[1]):
        ini = directory / "alembic.ini"
        if ini.is_file():
            config = Config(str(ini))
            config.set_main_option("script_location", str(directory / "migrations"))
            return config
    raise _Failed("alembic.ini not found: run from the application directory")


async def _database(settings: Settings) -> str:
    database = create_database(settings.DATABASE_URL)
    try:
        async with database.engine.connect() as conn:
            try:
                current = (
                    (await conn.execute(text("SELECT version_num FROM alembic_version")))
                    .scalars()
                    .all()
                )
            except Exception:
                raise _Failed("reachable, but not migrated: run `alembic upgrade head`") from None
    finally:
        await database.dispose()
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    if set(current) != heads:
        raise _Failed(
            f"reachable, but at revision {', '.join(current) or 'none'} instead of "
            f"{', '.join(sorted(heads))}: run `alembic upgrade head`"
        )
    return f"reachable and migrated (revision {', '.join(sorted(heads))})"


async def _redis(settings: Settings) -> str:
    from arq.connections import create_pool

    redis = await create_pool(redis_settings(settings.REDIS_URL))
    try:
        await redis.ping()
    finally:
        await redis.aclose()
    return "reachable"


async def _github(settings: Settings) -> str:
    client = github_client(settings)
    if client is None:
        raise _Failed("no credentials: set GITHUB_APP_ID and its private key, or GITHUB_TOKEN")
    try:
        if client.authenticates_as_app:
            installations = await client.list_app_installations()
            return (
                f"GitHub App {settings.GITHUB_APP_ID} authenticated at {settings.GITHUB_API_URL} "
                f"({len(installations)} installation{'s' if len(installations) != 1 else ''})"
            )
        login = await client.token_login()
        return f"token of {login} authenticated at {settings.GITHUB_API_URL}"
    except GitHubError as exc:
        raise _Failed(f"GitHub refused the credentials: {exc}") from None
    finally:
        await client.aclose()
