"""The `mergequeue` console script, run as an operator runs it: a subprocess against real
PostgreSQL and Redis and the fake GitHub server."""

from __future__ import annotations

import json
from typing import Any

import httpx
import redis
from sqlalchemy import select

from mergequeue.models import DeliveryState, Installation, QueueEntry, Repository, WebhookDelivery
from tests.e2e.conftest import StartWeb, start_web  # noqa: F401 (fixture)
from tests.support.db import execute, rows
from tests.support.fake_github import FakeGitHubServer, fake_github  # noqa: F401 (fixture)
from tests.support.processes import BIN, base_env, free_port, run
from tests.support.seed import seed

INSTALLATION = 31
REPO = "octo/widgets"


def mergequeue(*argv: str, **env: str) -> tuple[int, str, str]:
    result = run([str(BIN / "mergequeue"), *argv], base_env(**env), timeout=60)
    return result.returncode, result.stdout, result.stderr


def _env(postgres_url: str, redis_url: str, fake: FakeGitHubServer) -> dict[str, str]:
    return {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url, **fake.app_env()}


def _seed_github(fake: FakeGitHubServer) -> None:
    fake.control("add_repo", full_name=REPO)
    fake.control(
        "add_installation", installation_id=INSTALLATION, account="octo", repositories=[REPO]
    )
    fake.control("add_pull", full_name=REPO, number=7, labels=["mergequeue"], title="Add cogs")
    fake.control("add_pull", full_name=REPO, number=8, labels=[], title="Unlabelled")


def test_help_exits_0_and_a_usage_error_exits_2_naming_the_problem() -> None:
    status, out, _ = mergequeue("--help")
    assert status == 0
    for command in ("check", "sync", "queue", "deliveries", "app-manifest"):
        assert command in out
    status, _, err = mergequeue("queue", "show", "not-a-repository")
    assert status == 2
    assert "expected OWNER/REPO" in err
    status, _, err = mergequeue("deliveries", "redeliver", "--since", "4d")
    assert status == 2
    assert "3 d" in err


def test_check_passes_with_one_line_per_part_when_everything_works(
    postgres_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,  # noqa: F811
) -> None:
    _seed_github(fake_github)
    env = _env(postgres_url, redis_url, fake_github)

    status, out, _ = mergequeue("check", **env)
    assert status == 0, out
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "ok   configuration",
        "ok   database",
        "ok   redis",
        "ok   github",
    ]
    assert "1 installation" in lines[3]

    status, out, _ = mergequeue("check", "--json", **env)
    report = json.loads(out)
    assert status == 0 and report["ok"] is True
    assert {c["name"]: c["ok"] for c in report["checks"]} == {
        "configuration": True,
        "database": True,
        "redis": True,
        "github": True,
    }


def test_check_fails_naming_what_is_wrong(
    postgres_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,  # noqa: F811
) -> None:
    env = _env(postgres_url, redis_url, fake_github)

    status, out, _ = mergequeue("check", **{**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}"})
    assert status == 1
    assert out.splitlines()[2].startswith("FAIL redis: ")

    execute(postgres_url, "DROP TABLE alembic_version")
    status, out, _ = mergequeue("check", **env)
    assert status == 1
    assert "FAIL database: reachable, but not migrated" in out

    status, out, _ = mergequeue("check", **{**env, "MERGE_METHOD": "octopus"})
    assert status == 1
    assert out.splitlines()[0].startswith("FAIL configuration: MERGE_METHOD")

    other = {**env, "GITHUB_APP_ID": "999"}  # the fake knows App 4242 only
    status, out, _ = mergequeue("check", "--json", **other)
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert status == 1 and not checks["github"]["ok"]
    assert "GitHub refused the credentials" in checks["github"]["detail"]


def test_sync_stores_installations_repositories_and_queues_labelled_pull_requests(
    postgres_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,  # noqa: F811
    start_web: StartWeb,  # noqa: F811
) -> None:
    _seed_github(fake_github)
    env = _env(postgres_url, redis_url, fake_github)

    status, out, err = mergequeue("sync", "--json", **env)
    assert status == 0, err
    assert json.loads(out) == {"ok": True, "installations": 1, "repositories": 1, "recovered": 1}
    assert [r[0].id for r in rows(postgres_url, select(Installation))] == [INSTALLATION]
    assert [r[0].full_name for r in rows(postgres_url, select(Repository))] == [REPO]
    assert len(rows(postgres_url, select(QueueEntry))) == 1

    # `queue show` answers what the REST API answers.
    status, out, err = mergequeue("queue", "show", REPO, "--json", **env)
    assert status == 0, err
    web = start_web(API_TOKENS="t", **env)
    rest = httpx.get(
        f"{web.url}/api/v1/repos/{REPO}/queue", headers={"Authorization": "Bearer t"}
    ).json()
    assert json.loads(out) == rest
    assert [e["number"] for e in rest["entries"]] == [7]

    status, out, _ = mergequeue("queue", "show", REPO, **env)
    assert status == 0
    assert out.splitlines()[0].startswith(f"{REPO} (merging, squash): 1 queued")
    assert "#7 into main" in out.splitlines()[2]

    status, _, err = mergequeue("queue", "show", "octo/unknown", **env)
    assert status == 1
    assert err.strip() == "mergequeue: repository octo/unknown is not known"


def test_queue_show_names_the_queue_mode_and_batch_settings(
    postgres_url: str, redis_url: str
) -> None:
    seed(postgres_url, repo_id=4100, owner="octo", name="modes")
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url}
    status, out, err = mergequeue("queue", "show", "octo/modes", **env)
    assert status == 0, err
    # The defaults, as the API shows them.
    assert out.splitlines()[1] == (
        "queue_mode serial, max_parallel_builds 4, batch_size 1, batch_wait_seconds 60, "
        "failure_depth 0, flaky_retries 0, status_comments true"
    )

    execute(
        postgres_url,
        "UPDATE repositories SET queue_mode = 'parallel', max_parallel_builds = 8, "
        "batch_size = 5, batch_wait_seconds = 0, failure_depth = 3, status_comments = false, "
        "frozen_reason = 'release 2.0', frozen_until = '2999-01-01T00:00:00Z', "
        "frozen_branch = 'main' WHERE id = 4100",
    )
    status, out, err = mergequeue("queue", "show", "octo/modes", **env)
    assert status == 0, err
    assert out.splitlines()[0].startswith("octo/modes (frozen, ")
    assert out.splitlines()[1] == (
        "queue_mode parallel, max_parallel_builds 8, batch_size 5, batch_wait_seconds 0, "
        "failure_depth 3, flaky_retries 0, status_comments false"
    )
    assert out.splitlines()[2] == "frozen on main until 2999-01-01T00:00:00+00:00: release 2.0"
    status, out, err = mergequeue("queue", "show", "octo/modes", "--json", **env)
    assert status == 0, err
    repository = json.loads(out)["repository"]
    shown = ("queue_mode", "batch_size", "batch_wait_seconds", "failure_depth", "frozen")
    assert {k: repository[k] for k in shown} == {
        "queue_mode": "parallel",
        "batch_size": 5,
        "batch_wait_seconds": 0,
        "failure_depth": 3,
        "frozen": True,
    }


def test_queue_show_says_when_flaky_retries_are_not_in_effect(
    postgres_url: str, redis_url: str
) -> None:
    seed(postgres_url, repo_id=4101, owner="octo", name="retries")
    execute(postgres_url, "INSERT INTO installations (id, account_login) VALUES (41, 'octo')")
    execute(
        postgres_url,
        "UPDATE repositories SET installation_id = 41, flaky_retries = 2 WHERE id = 4101",
    )
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url}

    def settings_line() -> str:
        status, out, err = mergequeue("queue", "show", "octo/retries", **env)
        assert status == 0, err
        return out.splitlines()[1]

    assert "flaky_retries 2 (not in effect: serial mode)," in settings_line()
    execute(postgres_url, "UPDATE repositories SET queue_mode = 'parallel' WHERE id = 4101")
    assert "flaky_retries 2 (not in effect: needs actions: write)," in settings_line()
    execute(postgres_url, "UPDATE installations SET actions_write = true WHERE id = 41")
    assert "flaky_retries 2, status_comments" in settings_line()
    status, out, err = mergequeue("queue", "show", "octo/retries", "--json", **env)
    assert status == 0, err
    repository = json.loads(out)["repository"]
    assert (repository["flaky_retries"], repository["flaky_retries_in_effect"]) == (2, True)


def test_queue_show_says_auto_for_max_parallel_builds_auto(
    postgres_url: str, redis_url: str
) -> None:
    seed(postgres_url, repo_id=4102, owner="octo", name="sized")
    # What `max_parallel_builds: auto` stores.
    execute(postgres_url, "UPDATE repositories SET max_parallel_builds = 0 WHERE id = 4102")
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url}
    status, out, err = mergequeue("queue", "show", "octo/sized", **env)
    assert status == 0, err
    assert out.splitlines()[1].startswith("queue_mode serial, max_parallel_builds auto, ")
    status, out, err = mergequeue("queue", "show", "octo/sized", "--json", **env)
    assert status == 0, err
    assert json.loads(out)["repository"]["max_parallel_builds"] == "auto"


def _store(url: str, delivery_id: str, state: str, error: str | None = None) -> None:
    execute(
        url,
        "INSERT INTO webhook_deliveries (id, event, action, payload, state, attempts, error, "
        f"received_at) VALUES ('{delivery_id}', 'pull_request', 'opened', '{{}}', '{state}', "
        f"8, {repr(error) if error else 'NULL'}, now())",
    )


def test_deliveries_list_filters_by_state_and_replay_requeues_a_parked_one(
    postgres_url: str, redis_url: str
) -> None:
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url}
    _store(postgres_url, "d-processed", "processed")
    _store(postgres_url, "d-failed", "failed", "gave up after 8 attempts")

    status, out, _ = mergequeue("deliveries", "list", "--state", "failed", "--json", **env)
    assert status == 0
    listed: list[dict[str, Any]] = json.loads(out)
    assert [(d["id"], d["state"], d["error"]) for d in listed] == [
        ("d-failed", "failed", "gave up after 8 attempts")
    ]
    status, out, _ = mergequeue("deliveries", "list", **env)
    assert {line.split()[0] for line in out.splitlines()} == {"d-processed", "d-failed"}

    status, out, _ = mergequeue("deliveries", "replay", "d-failed", **env)
    assert status == 0, out
    [stored] = [
        r[0]
        for r in rows(postgres_url, select(WebhookDelivery).where(WebhookDelivery.id == "d-failed"))
    ]
    assert (stored.state, stored.attempts, stored.error) == (DeliveryState.RECEIVED, 0, None)
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.exists("arq:job:replay:delivery:d-failed:0") == 1
    finally:
        client.close()

    status, _, err = mergequeue("deliveries", "replay", "no-such-id", **env)
    assert status == 1
    assert "no stored delivery 'no-such-id'" in err


def test_deliveries_redeliver_asks_github_for_what_failed_once(
    postgres_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,  # noqa: F811
) -> None:
    env = _env(postgres_url, redis_url, fake_github)
    # Nothing listens there: the delivery fails, as while the service is down.
    fake_github.control(
        "set_webhook_target", url=f"http://127.0.0.1:{free_port()}/api/webhook", secret="s"
    )
    sent = fake_github.control("send_webhook", event="push", payload={"ref": "refs/heads/main"})
    assert sent["status_code"] == 0

    status, out, err = mergequeue("deliveries", "redeliver", "--since", "1h", "--json", **env)
    assert status == 0, err
    report = json.loads(out)
    assert report["requested"] == [sent["guid"]]
    status, out, _ = mergequeue("deliveries", "redeliver", "--since", "1h", **env)
    assert status == 0
    assert "0 redelivery request(s) accepted, 1 asked for recently" in out
    attempts = fake_github.control("deliveries_json")
    assert [a["redelivery"] for a in attempts] == [False, True]

    token_only = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "GITHUB_TOKEN": "x"}
    status, _, err = mergequeue("deliveries", "redeliver", "--since", "1h", **token_only)
    assert status == 1 and "needs a GitHub App" in err


def test_the_state_choices_are_the_inboxs_states() -> None:
    from cli.deliveries import STATES

    assert tuple(state.value for state in DeliveryState) == STATES


def test_durations_take_a_unit_and_stay_within_githubs_retention() -> None:
    import argparse

    import pytest

    from cli.deliveries import duration

    assert [duration(v) for v in ("90", "90s", "15m", "24h", "3d")] == [90, 90, 900, 86400, 259200]
    for bad in ("", "1w", "-5m", "4d", "0"):
        with pytest.raises(argparse.ArgumentTypeError):
            duration(bad)


def test_an_unreachable_database_is_one_line_and_exit_1() -> None:
    status, out, err = mergequeue(
        "deliveries", "list", DATABASE_URL=f"postgresql+asyncpg://u:p@127.0.0.1:{free_port()}/x"
    )
    assert status == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("mergequeue: ")
