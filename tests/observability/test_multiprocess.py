"""observability/multiprocess.py: one run's files kept, a previous run's wiped, dead marked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from observability import multiprocess

# Above any pid_max Linux allows (2**22), so never a live process.
DEAD_PID = 4_194_305


def _touch(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_bytes(b"\0" * 8)
    return path


def test_a_new_run_wipes_what_the_previous_run_left(tmp_path: Path) -> None:
    (tmp_path / ".mergequeue-run").write_text("workers-of:1234:5678")
    left = [_touch(tmp_path, f"counter_{DEAD_PID}.db"), _touch(tmp_path, "histogram_77.db")]
    assert multiprocess.join_run(tmp_path) is True
    assert not any(path.exists() for path in left)


def test_joining_the_same_run_keeps_its_files_and_marks_dead_workers(tmp_path: Path) -> None:
    assert multiprocess.join_run(tmp_path) is True
    alive = os.getppid()
    kept = [
        _touch(tmp_path, f"counter_{DEAD_PID}.db"),
        _touch(tmp_path, f"gauge_max_{DEAD_PID}.db"),
        _touch(tmp_path, f"gauge_livesum_{alive}.db"),
    ]
    dead_live_gauges = [
        _touch(tmp_path, f"gauge_livesum_{DEAD_PID}.db"),
        _touch(tmp_path, f"gauge_liveall_{DEAD_PID}.db"),
    ]
    assert multiprocess.join_run(tmp_path) is False
    # A dead worker's counts stay in the totals; only its live gauges go.
    assert all(path.exists() for path in kept)
    assert not any(path.exists() for path in dead_live_gauges)


def test_workers_of_a_uvicorn_running_as_pid_1_share_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In the container uvicorn is pid 1: its workers must still agree on the run, or each
    # one starting (or restarted after a crash) wipes the files of the others.
    real_cmdline = multiprocess._cmdline
    another_live_process = os.getppid()
    monkeypatch.setattr(os, "getppid", lambda: 1)
    monkeypatch.setattr(
        multiprocess,
        "_cmdline",
        lambda pid: "python uvicorn api.main:app --workers 3" if pid == 1 else real_cmdline(pid),
    )
    assert multiprocess.join_run(tmp_path) is True
    first_worker_files = _touch(tmp_path, f"counter_{os.getpid()}.db")
    # The second worker: another live process of the same run.
    monkeypatch.setattr(os, "getpid", lambda: another_live_process)
    assert multiprocess.join_run(tmp_path) is False
    assert first_worker_files.exists()
