"""Real web and worker processes, started as an operator starts them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Process, arq_argv, base_env, free_port, uvicorn_argv


@dataclass
class Web:
    process: Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]


@dataclass
class Worker:
    process: Process
    metrics_port: int

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"


StartWeb = Callable[..., Web]
StartWorker = Callable[..., Worker]


def _web_starter(tmp_path: Path, started: list[Process]) -> StartWeb:

    def start(
        *extra_args: str,
        app: str = "api.main:app",
        wait: bool = True,
        port: int | None = None,
        **env: str,
    ) -> Web:
        # `port`: a web process started again where a stopped one listened (its URL is
        # what GitHub knows).
        port = free_port() if port is None else port
        process = Process(
            f"web:{port}",
            uvicorn_argv(port, app, *extra_args),
            base_env(**env),
            tmp_path / f"web-{port}-{len(started)}.log",
        )
        started.append(process)
        web = Web(process, port)
        if wait:
            process.wait_http(web.url + "/healthz")
        return web

    return start


@pytest.fixture
def start_web(tmp_path: Path) -> Iterator[StartWeb]:
    started: list[Process] = []
    yield _web_starter(tmp_path, started)
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def start_module_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartWeb]:
    """Like start_web, for a web process shared by a module's tests (faster suites)."""
    started: list[Process] = []
    yield _web_starter(tmp_path_factory.mktemp("web"), started)
    for process in started:
        process.stop()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[StartWorker]:
    started: list[Process] = []

    def start(*extra_args: str, wait: bool = True, **env: str) -> Worker:
        port = int(env.pop("PROMETHEUS_PORT", free_port()))
        process = Process(
            f"worker:{port}",
            arq_argv(*extra_args),
            base_env(PROMETHEUS_PORT=str(port), **env),
            tmp_path / f"worker-{port}.log",
        )
        started.append(process)
        worker = Worker(process, port)
        if wait:
            auth = None
            if "PROMETHEUS_BASIC_AUTH_USERNAME" in env:
                auth = (
                    env["PROMETHEUS_BASIC_AUTH_USERNAME"],
                    env["PROMETHEUS_BASIC_AUTH_PASSWORD"],
                )
            process.wait_http(worker.metrics_url, auth=auth)
        return worker

    yield start
    for process in started:
        process.stop()
