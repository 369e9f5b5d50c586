"""scripts/run's Redis (scripts/local-redis): a local Redis is started when nothing answers
at the default REDIS_URL; a configured REDIS_URL where nothing answers is one clear line."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

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


RUN_AND_STOP = r"""
set -u
ip link set lo up
setsid scripts/run > "$LOG" 2>&1 &
run=$!
for _ in $(seq 1 300); do
    if .venv/bin/python -c "import httpx, sys; httpx.get(sys.argv[1]).raise_for_status()" \
        "http://127.0.0.1:$WEB_PORT/readyz" 2>/dev/null; then
        break
    fi
    sleep 0.2
done
redis=$(cat .venv/redis/redis.pid)
# Never leave a Redis behind in this namespace, whatever happens below.
trap 'kill "$redis" 2>/dev/null; kill -KILL -- -"$run" 2>/dev/null' EXIT
.venv/bin/python -c "import redis; assert redis.Redis().ping()" || exit 11
kill -TERM -- -"$run"  # what a terminal's Ctrl+C or a process manager does to the group
for _ in $(seq 1 150); do
    kill -0 "$run" 2>/dev/null || break
    sleep 0.2
done
kill -0 "$run" 2>/dev/null && exit 12  # scripts/run did not stop
for _ in $(seq 1 50); do
    kill -0 "$redis" 2>/dev/null || exit 0
    sleep 0.2
done
exit 13  # the Redis it started is still running
"""


def test_scripts_run_serves_with_its_own_redis_and_stops_it_on_exit(tmp_path: Path) -> None:
    # The README's first command where nothing answers at the default REDIS_URL: a network
    # namespace of its own, whose loopback has no Redis. The virtualenv is installed first,
    # outside it (the namespace has no network).
    subprocess.run([str(REPO / "scripts" / "venv"), "run"], check=True, timeout=600)
    log = tmp_path / "run.log"
    env = _env(
        LOG=str(log),
        WEB_PORT="18000",
        PROMETHEUS_PORT="18491",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/mergequeue.db",
    )
    result = subprocess.run(
        ["unshare", "--net", "bash", "-c", RUN_AND_STOP],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, (result.returncode, result.stderr, log.read_text()[-3000:])
    assert "starting a local Redis" in log.read_text()
