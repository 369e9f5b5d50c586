"""A SIGKILLed web or worker process leaves no child behind.

Each serving process spawns a metrics render child (and multiprocessing starts its
resource tracker beside it). Killed with SIGKILL, the parent runs no cleanup: before,
both children lived on under PID 1 indefinitely (57 MB). Now they must be gone within
seconds. Only the parent is killed, never its process group.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.e2e.conftest import StartWeb, StartWorker
from tests.support.processes import Process, render_children


def _children(pid: int) -> list[int]:
    return [
        int(child)
        for listing in Path(f"/proc/{pid}/task").glob("*/children")
        for child in listing.read_text().split()
    ]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in {"Z", "X"}  # exited; a zombie waits only for its (new) parent's wait()


def _kill_parent_and_wait_for_children(process: Process) -> None:
    deadline = time.monotonic() + 20
    while not render_children(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    children = _children(process.pid)
    cmdlines = [Path(f"/proc/{c}/cmdline").read_bytes() for c in children]
    assert any(b"spawn_main" in c and b"resource_tracker" not in c for c in cmdlines)
    assert any(b"resource_tracker" in c for c in cmdlines), cmdlines

    os.kill(process.pid, signal.SIGKILL)
    process.proc.wait(10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(_gone(c) for c in children):
        time.sleep(0.05)
    left = [c for c in children if not _gone(c)]
    for child in left:  # no longer in the test process group's reach: end them here
        os.kill(child, signal.SIGKILL)
    assert not left, f"children of {process.name} outlived it: {left}"


def test_killed_web_and_worker_leave_no_children(
    start_web: StartWeb, start_worker: StartWorker, sqlite_url: str, redis_url: str
) -> None:
    web = start_web(DATABASE_URL=sqlite_url, REDIS_URL=redis_url, SERVE_PROMETHEUS_ENDPOINT="true")
    worker = start_worker(DATABASE_URL=sqlite_url, REDIS_URL=redis_url)
    _kill_parent_and_wait_for_children(web.process)
    _kill_parent_and_wait_for_children(worker.process)
