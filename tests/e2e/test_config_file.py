"""`.github/mergequeue.yml` end to end: real web and worker processes, Redis, and the fake
GitHub as a server. A pull request merged into main with a valid file switches the
repository to parallel mode (as `GET /api/v1/repos/...` shows); one with an invalid file
leaves the settings and gets one comment saying why, however often its push is delivered.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from mergequeue.queue.config_file import CONFIG_PATH
from tests.e2e.conftest import StartWeb, StartWorker, Worker
from tests.support import webhooks
from tests.support.fake_github import FakeGitHubServer, fake_github  # noqa: F401 (fixture)
from tests.support.metrics import value
from tests.support.processes import BIN, base_env, run
from tests.support.scenario import Scenario, wait_for

TOKEN = "config-file-api-token"
CONTENTS = "/repos/{owner}/{repo}/contents/{path}"


def merge_pull_changing_the_file(s: Scenario, content: str) -> tuple[int, dict[str, Any]]:
    """A pull request changing the settings file, merged into main (fast-forward), and the
    push webhook GitHub sends for it (delivered); returns its number and that payload."""
    before = s.fake.control("commit_json", full_name=s.full_name, sha="main")["sha"]
    number = s.open_pull(files={CONFIG_PATH: content})
    head = s.head(number)
    s.fake.control("push", full_name=s.full_name, branch="main", sha=head)
    assert s.merged(number)
    payload = s.fake.control(
        "push_event_json",
        full_name=s.full_name,
        branch="main",
        before=before,
        installation_id=s.installation_id,
    )
    s._deliver("push", payload)
    return number, payload


def settings(s: Scenario) -> dict[str, Any]:
    response = httpx.get(
        f"{s.web_url}/api/v1/repos/{s.full_name}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    return dict(response.json()) if response.status_code == 200 else {}


@pytest.fixture
def world(
    start_web: StartWeb,
    start_worker: StartWorker,
    sqlite_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,  # noqa: F811
) -> tuple[Scenario, Worker]:
    env = {"DATABASE_URL": sqlite_url, "REDIS_URL": redis_url, **fake_github.app_env()}
    web = start_web(GITHUB_WEBHOOK_SECRET=webhooks.SECRET, API_TOKENS=TOKEN, **env)
    worker = start_worker(**env)
    s = Scenario(fake_github, web.url)
    s.setup()
    return s, worker


def test_a_merged_settings_file_applies_and_an_invalid_one_is_told_once(
    world: tuple[Scenario, Worker],
) -> None:
    s, worker = world
    valid, _ = merge_pull_changing_the_file(s, "queue_mode: parallel\nbatch_size: 2\n")
    wait_for(
        lambda: settings(s).get("queue_mode") == "parallel",
        what="the file's settings applied",
    )
    applied = settings(s)
    assert applied["batch_size"] == 2
    # Keys the file does not set keep their (default) values.
    assert applied["max_parallel_builds"] == 4
    assert applied["queue_label"] == "mergequeue"
    assert s.comments(valid) == []

    invalid, payload = merge_pull_changing_the_file(
        s, "queue_mode: serial\nbatch_size: 50\nbatch_wiat_seconds: 5\n"
    )
    wait_for(lambda: len(s.comments(invalid)) == 1, what="the invalid file's comment")
    [comment] = s.comments(invalid)
    assert CONFIG_PATH in comment
    assert "`batch_size`: batch_size must be between 1 and 20" in comment
    assert "`batch_wiat_seconds`: unknown key" in comment
    # Nothing of the invalid file was applied, not even its valid key.
    assert settings(s) == applied

    # The same push delivered again (a redelivery with a new id): read again, not told twice.
    reads = len(s.fake.calls(CONTENTS))
    s._deliver("push", payload)
    wait_for(lambda: len(s.fake.calls(CONTENTS)) > reads, what="the second read")
    metrics = ""

    def counted_twice() -> bool:
        nonlocal metrics
        metrics = httpx.get(worker.metrics_url, timeout=10).text
        errors = value(metrics, "mergequeue_config_file_errors_total", repository=s.full_name)
        return errors == 2

    wait_for(counted_twice, what="both invalid reads counted")
    # Its queue evaluation (which sends what the outbox owes) has had time to run.
    time.sleep(2)
    assert len(s.comments(invalid)) == 1
    assert s.comments(valid) == []
    assert settings(s) == applied


def test_a_file_whose_push_webhook_was_missed_is_applied_by_mergequeue_sync(
    world: tuple[Scenario, Worker], sqlite_url: str, redis_url: str
) -> None:
    s, _ = world
    s.open_pull()  # the repository becomes known
    wait_for(lambda: settings(s).get("queue_mode") == "serial", what="the repository known")
    s.fake.control(
        "push", full_name=s.full_name, branch="main", files={CONFIG_PATH: "queue_mode: parallel\n"}
    )  # and no push webhook
    env = {"DATABASE_URL": sqlite_url, "REDIS_URL": redis_url, **s.fake.app_env()}
    result = run([str(BIN / "mergequeue"), "sync"], base_env(**env), timeout=60)
    assert result.returncode == 0, result.stderr
    assert settings(s)["queue_mode"] == "parallel"
    reads = [c for c in s.fake.calls(CONTENTS) if c["query"].get("ref") == "main"]
    assert 200 in {c["status"] for c in reads}
