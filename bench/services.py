"""What a run needs around the server under test: Redis, PostgreSQL, the fake GitHub.

Everything is the run's own (a private Redis, fresh databases, temporary files) and is
stopped or dropped when the run ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.machine import Pinning
from tests.support.databases import PostgresDatabases
from tests.support.fake_github import APP_ID, FakeGitHubServer
from tests.support.processes import BIN, Process, base_env, free_port
from tests.support.redis_server import start_redis

WEBHOOK_SECRET = "bench-webhook-secret"
API_TOKEN = "bench-api-token"


class Services:
    def __init__(self, workdir: Path, pinning: Pinning, stack: contextlib.ExitStack) -> None:
        self.workdir = workdir
        self.pinning = pinning
        self._stack = stack
        self._redis_port: int | None = None
        self._postgres: PostgresDatabases | None = None
        self.pids: dict[str, int] = {}

    # -- processes --------------------------------------------------------------------

    def process(self, name: str, argv: list[str], env: dict[str, str]) -> Process:
        process = Process(name, argv, env, self.workdir / f"{name}.log")
        self._stack.callback(process.stop)
        return process

    def web(self, name: str, app: str, *, factory: bool = False, **env: str) -> str:
        """A pinned uvicorn serving `app` with one worker; returns its base URL."""
        port = free_port()
        argv = [
            *self.pinning.server_prefix(),
            str(BIN / "uvicorn"),
            app,
            *(["--factory"] if factory else []),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--http",
            "httptools",
            "--loop",
            "uvloop",
            "--log-level",
            "warning",
        ]
        process = self.process(name, argv, base_env(**env))
        url = f"http://127.0.0.1:{port}"
        process.wait_http(url + "/openapi.json", timeout=60)
        self.pids[name] = process.pid
        return url

    def worker(self, name: str, **env: str) -> Process:
        port = free_port()
        argv = [*self.pinning.server_prefix(), str(BIN / "arq"), "jobs.WorkerSettings"]
        process = self.process(name, argv, base_env(PROMETHEUS_PORT=str(port), **env))
        process.wait_http(f"http://127.0.0.1:{port}/metrics", timeout=60)
        self.pids[name] = process.pid
        return process

    # -- Redis and PostgreSQL ---------------------------------------------------------

    def redis_url(self) -> str:
        if self._redis_port is None:
            if shutil.which("redis-server") is None:
                raise RuntimeError("redis-server is not installed (scripts/services installs it)")
            port = free_port()
            server = start_redis(port, self.workdir / "redis.log")
            self._stack.callback(server.stop)
            self._redis_port = port
        return f"redis://127.0.0.1:{self._redis_port}/0"

    def postgres_url(self) -> str:
        """A fresh, migrated PostgreSQL database of this run's own."""
        if self._postgres is None:
            databases = PostgresDatabases()
            databases.migrate_template()
            self._stack.callback(databases.drop_all)
            self._postgres = databases
        return self._postgres.fresh()

    # -- the fake GitHub --------------------------------------------------------------

    def fake_github(self) -> FakeGitHubServer:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = self.workdir / "app.pem"
        public = self.workdir / "app.pub.pem"
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        port = free_port()
        argv = [sys.executable, "-m", "tests.fakegithub", "--port", str(port)]
        argv += ["--app-id", str(APP_ID), "--public-key-file", str(public)]
        process = self.process("fakegithub", argv, base_env())
        server = FakeGitHubServer(process, port, private)
        process.wait_http(f"{server.url}/_fake/health")
        return server


@contextlib.contextmanager
def services(workdir: Path, pinning: Pinning) -> Iterator[Services]:
    workdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        yield Services(workdir, pinning, stack)
