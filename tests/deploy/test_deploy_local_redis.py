"""scripts/run's Redis (scripts/local-redis): a local Redis is started when nothing answers
at the default REDIS_URL; a configured REDIS_URL where nothing answers is one clear line."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from deploy_helpers import REPO

SCRIPT = REPO / "scripts" / "local-redis"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    return env | extra


def test_a_configured_redis_url_that_does_not_answer_is_one_clear_line() -> None:
    url = "redis://:hunter2@127.0.0.1:1/0"  # port 1: nothing listens there
    result = subprocess.run(
        [str(SCRIPT)], env=_env(REDIS_URL=url), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "mergequeue: Redis does not answer at REDIS_URL=redis://:***@127.0.0.1:1/0"
    )
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr


def test_nothing_is_started_when_redis_answers_at_the_default_url() -> None:
    # scripts/services runs Redis on 127.0.0.1:6379 for the test suite.
    result = subprocess.run([str(SCRIPT)], env=_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_a_local_redis_is_started_when_nothing_answers_at_the_default_url() -> None:
    # A network namespace of its own: its loopback has no Redis, whatever runs on the host.
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed for this test")
    script = (
        "ip link set lo up && pid=$(scripts/local-redis) && echo pid=$pid && "
        ".venv/bin/python -c 'import redis; print(redis.Redis().ping())'; "
        'status=$?; kill "$pid"; exit $status'
    )
    result = subprocess.run(
        ["unshare", "--net", "bash", "-c", script],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "starting a local Redis on 127.0.0.1:6379" in result.stderr
    pid_line, ping = result.stdout.splitlines()
    assert pid_line.startswith("pid=") and int(pid_line[4:]) > 0
    assert ping == "True"


def test_scripts_run_uses_it_and_stops_the_redis_it_started() -> None:
    run = (REPO / "scripts" / "run").read_text()
    assert "redis_pid=$(scripts/local-redis)" in run
    assert 'trap \'kill "$redis_pid"' in run
    assert "exec honcho" not in run  # the trap must outlive honcho
