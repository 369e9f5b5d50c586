"""The dashboard in a real headless Chromium (Debian's, driven by playwright-core):
sign in through the fake GitHub, see a queue, pause it, see the change; by keyboard, with
landmarks and labels checked, and on a phone's screen.

`MQ_DASHBOARD_SCREENSHOTS=docs` writes the screenshots the README shows into docs/.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bench.dashboard import CLIENT_ID, CLIENT_SECRET, SESSION_SECRET, seed
from mergequeue.db import create_database
from mergequeue.models import Repository
from tests.e2e.conftest import StartWeb
from tests.support.fake_github import FakeGitHubServer, fake_github  # noqa: F401 (fixture)
from tests.support.processes import ROOT

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = ROOT / "tests" / "e2e" / "browser" / "dashboard.cjs"
NODE_MODULES = ROOT / "tools" / "node_modules"
NAMES = ["web", "payments", "mobile-app", "docs", "infra", "search"]


def _need_browser() -> None:
    # Never a silent skip: the suite's tools include the browser.
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/install-tools (it installs Debian's chromium)",
            pytrace=False,
        )
    if not (NODE_MODULES / "playwright-core").is_dir():
        pytest.fail(
            "tools/node_modules/playwright-core is missing: run scripts/install-tools",
            pytrace=False,
        )
    if shutil.which("node") is None:
        pytest.fail("node is not installed (the browser test drives Chromium with it)")


async def _seed(url: str) -> None:
    database = create_database(url)
    try:
        async with database.sessions() as session, session.begin():
            await seed(session, repositories=6, entries=160, names=NAMES, now=datetime.now(UTC))
    finally:
        await database.dispose()


async def _paused(url: str, name: str) -> bool:
    database = create_database(url)
    try:
        async with database.sessions() as session:
            repo = await session.scalar(select(Repository).where(Repository.name == name))
            assert repo is not None
            return repo.paused
    finally:
        await database.dispose()


def test_sign_in_see_a_queue_pause_it_in_chromium(
    start_web: StartWeb,
    fake_github: FakeGitHubServer,  # noqa: F811
    sqlite_url: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    _need_browser()
    asyncio.run(_seed(sqlite_url))
    web = start_web(
        DATABASE_URL=sqlite_url,
        REDIS_URL=redis_url,
        GITHUB_API_URL=fake_github.url,
        GITHUB_OAUTH_CLIENT_ID=CLIENT_ID,
        GITHUB_OAUTH_CLIENT_SECRET=CLIENT_SECRET,
        SESSION_SECRET=SESSION_SECRET,
    )
    fake_github.control(
        "set_oauth_app",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        callback_url=f"{web.url}/oauth/callback",
    )
    for name in NAMES:
        fake_github.control("add_repo", full_name=f"acme/{name}", private=name == "infra")
        if name != "infra":
            fake_github.control(
                "set_permission", full_name=f"acme/{name}", username="mona", role_name="write"
            )
    fake_github.control("sign_in_as", login="mona")

    shots = Path(os.environ.get("MQ_DASHBOARD_SCREENSHOTS") or tmp_path)
    shots = shots if shots.is_absolute() else ROOT / shots
    result = subprocess.run(
        ["node", str(DRIVER), web.url, "acme/web", str(shots)],
        cwd=ROOT,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES), "CHROMIUM": str(CHROMIUM)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result from the browser:\n{result.stdout}\n{result.stderr}"
    seen = json.loads(lines[-1])
    assert seen["ok"], f"{seen.get('error')}\n--- web log ---\n{web.process.output()[-3000:]}"
    assert result.returncode == 0
    assert seen["signedInAs"] == "mona"
    # The private repository mona cannot read is not listed.
    assert seen["repositories"] == len(NAMES) - 1
    assert seen["queued"] > 0
    assert asyncio.run(_paused(sqlite_url, "web"))
    for shot in ("dashboard-repositories.png", "dashboard-repository.png", "dashboard-phone.png"):
        assert (shots / shot).stat().st_size > 10_000, shot
