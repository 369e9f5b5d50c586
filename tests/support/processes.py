"""Starting the real processes (uvicorn, arq, alembic) the way an operator does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Worker environment for tests that wait on reconciliation (a missed webhook, a timeout
# changed behind the service's back): a quiet queue is re-read after 5 s, not a minute.
QUICK_RECONCILIATION = {"RECONCILE_QUIET_SECONDS": "5"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(**overrides: str) -> dict[str, str]:
    """The test process's environment without any mergequeue variable, plus `overrides`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PROMETHEUS_", "GITHUB_", "MERGE", "QUEUE_", "API_TOKENS"))
        and k not in {"DATABASE_URL", "REDIS_URL", "SERVE_PROMETHEUS_ENDPOINT", "ENABLE_DB_METRICS"}
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def _children_of_every_thread(pid: int) -> list[int]:
    # A child belongs to the thread that started it, and any thread may serve a scrape.
    return [
        int(child)
        for listing in Path(f"/proc/{pid}/task").glob("*/children")
        for child in listing.read_text().split()
    ]


def render_children(pid: int) -> list[int]:
    """The metrics render processes `pid` spawned (not multiprocessing's resource tracker)."""
    children = []
    for child in _children_of_every_thread(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:  # exited meanwhile
            continue
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            children.append(child)
    return children


class Process:
    """A child process whose output goes to a log file, stopped with SIGTERM."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=dict(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_http(
        self, url: str, timeout: float = 30.0, auth: tuple[str, str] | None = None
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.output()}")
            try:
                response = httpx.get(url, timeout=1.0, auth=auth)
                if response.status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {url} in {timeout}s:\n{self.output()}")

    def wait_output(self, needle: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.output():
                return
            if not self.alive():
                break
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: {needle!r} not seen in {timeout}s:\n{self.output()}")

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> int:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


def run(
    argv: Sequence[str], env: Mapping[str, str], timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), cwd=ROOT, env=dict(env), capture_output=True, text=True, timeout=timeout
    )


def uvicorn_argv(port: int, app: str = "api.main:app", *extra: str) -> list[str]:
    return [str(BIN / "uvicorn"), app, "--host", "127.0.0.1", "--port", str(port), *extra]


def arq_argv(*extra: str) -> list[str]:
    return [str(BIN / "arq"), "jobs.WorkerSettings", *extra]


def alembic_upgrade(database_url: str) -> None:
    result = run([str(BIN / "alembic"), "upgrade", "head"], base_env(DATABASE_URL=database_url))
    if result.returncode != 0:
        raise RuntimeError(f"alembic upgrade failed:\n{result.stdout}\n{result.stderr}")
