"""Real Redis servers of the tests' own: nothing on the machine's Redis is touched."""

from __future__ import annotations

from pathlib import Path

from tests.support.processes import Process, free_port


def start_redis(port: int, log: Path, *, timeout: float = 15) -> Process:
    """A redis-server on 127.0.0.1:`port` that keeps nothing on disk, once it is ready."""
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no"]
    server = Process(f"redis:{port}", argv, {"PATH": "/usr/bin:/bin:/usr/local/bin"}, log)
    server.wait_output("Ready to accept connections", timeout=timeout)
    return server


class OwnRedis:
    """A Redis server for one test, which the test may stop and start again on the same
    port (an outage); every server it started is stopped at the end."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._started: list[Process] = []

    def start(self) -> Process:
        log = self._directory / f"redis-{len(self._started)}.log"
        server = start_redis(self.port, log, timeout=10)
        self._started.append(server)
        return server

    def stop_all(self) -> None:
        for server in self._started:
            server.stop()
