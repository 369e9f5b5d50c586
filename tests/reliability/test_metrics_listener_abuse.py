"""The metrics listener bounds its connections and their time.

Against the worker's real metrics port: hundreds of half-open connections (a request
line never finished) used to hold one thread each, forever, and their disconnects wrote
a traceback each. Now at most MAX_CONNECTIONS are served at once, the rest are answered
503 at once, the slow ones are dropped after HEADER_TIMEOUT, the listener answers a
scrape again as soon as they are gone, and the log gets at most a line about it.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from observability.listener import HEADER_TIMEOUT, MAX_CONNECTIONS
from tests.e2e.conftest import StartWorker

HALF_OPEN = 400


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def test_half_open_connections_are_bounded_answered_and_dropped(
    start_worker: StartWorker, sqlite_url: str, redis_url: str
) -> None:
    worker = start_worker(DATABASE_URL=sqlite_url, REDIS_URL=redis_url)
    pid = worker.process.pid
    assert httpx.get(worker.metrics_url).status_code == 200
    baseline = _threads(pid)
    lines_before = len(worker.process.output().splitlines())

    held: list[socket.socket] = []
    try:
        opened = time.monotonic()
        for _ in range(HALF_OPEN):
            sock = socket.create_connection(("127.0.0.1", worker.metrics_port), timeout=5)
            sock.sendall(b"GET /metr")
            held.append(sock)
        time.sleep(0.5)
        assert _threads(pid) <= baseline + MAX_CONNECTIONS + 2

        busy = dropped = 0
        for sock in held:
            sock.settimeout(max(0.1, opened + HEADER_TIMEOUT + 3 - time.monotonic()))
            answer = sock.recv(100)  # a timeout here: a connection never dropped
            if answer.startswith(b"HTTP/1.1 503"):
                busy += 1
            else:
                assert answer == b"", answer
                dropped += 1
        assert dropped <= MAX_CONNECTIONS and busy == HALF_OPEN - dropped
        assert time.monotonic() - opened < HEADER_TIMEOUT + 3
    finally:
        for sock in held:
            sock.close()

    assert httpx.get(worker.metrics_url).status_code == 200
    deadline = time.monotonic() + 3
    while _threads(pid) > baseline + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _threads(pid) <= baseline + 1
    new_lines = worker.process.output().splitlines()[lines_before:]
    trouble = [line for line in new_lines if "metrics" in line or "Traceback" in line]
    assert len(trouble) <= 2, trouble
    assert "Traceback" not in worker.process.output()
