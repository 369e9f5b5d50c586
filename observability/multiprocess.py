"""prometheus_client multiprocess mode for `uvicorn --workers N`.

Every worker process writes its samples to files in PROMETHEUS_MULTIPROC_DIR; a scrape of
any one of them sums all files. Files left by an earlier run would be summed too, so the
directory is emptied when a new run starts. The N workers of one run all start at once
and must not wipe each other's files: they agree on "the run" through their common
parent (the uvicorn master), recorded in a marker file under a lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from prometheus_client import multiprocess

_MARKER = ".mergequeue-run"
_LOCK = ".mergequeue-lock"


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime), counted after the parenthesised command name.
    return stat.rsplit(")", 1)[1].split()[19]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_key() -> str:
    parent = os.getppid()
    parent_cmd = _cmdline(parent)
    # The parent may well be pid 1: the image runs `uvicorn --workers N` as the container's
    # init. An orphan reparented to a host's init is told apart by the command line.
    if "uvicorn" in parent_cmd or "gunicorn" in parent_cmd:
        return f"workers-of:{parent}:{_start_time(parent)}"
    # Not a worker of a multi-process server: this process is the whole run.
    return f"single:{os.getpid()}:{_start_time(os.getpid())}"


def _pid_of(file: Path) -> int | None:
    # prometheus_client names files like counter_1234.db or gauge_livesum_1234.db.
    tail = file.stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def join_run(directory: Path) -> bool:
    """Prepare `directory` for this process. Returns True when it wiped a previous run."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / _LOCK, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = directory / _MARKER
        key = _run_key()
        previous = marker.read_text() if marker.exists() else None
        if previous != key:
            for file in directory.glob("*.db"):
                file.unlink(missing_ok=True)
            marker.write_text(key)
            return True
        # Same run: a worker that died and was replaced leaves live gauges behind.
        for file in directory.glob("*.db"):
            pid = _pid_of(file)
            if pid is not None and pid != os.getpid() and not _alive(pid):
                multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
        return False


def leave_run(directory: Path) -> None:
    multiprocess.mark_process_dead(os.getpid(), str(directory))  # type: ignore[no-untyped-call]
