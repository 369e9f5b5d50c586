"""Rendering this process's registry in a forked child: a copy-on-write snapshot.

In single-process mode the samples and the request-id exemplars exist only in this
process's memory, and a render of a large registry is ~0.2 s of pure Python. Run in a
thread it holds the GIL against the event loop for all of that; `fork()` instead gives a
child an instant, consistent copy of every value, which the child renders at the lowest CPU
priority while the parent goes on serving (what Redis does for its snapshots).

Fork is called on the event-loop thread, between two callbacks: every metric update
happens on that thread, so none is half done and none of their locks is held in the
copy. The parent pays the fork itself (under a millisecond for a 100 MB process) and a copy of
every page it writes while the child lives: keep the child's work short.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import struct
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable
from typing import NoReturn

from prometheus_client import PROCESS_COLLECTOR, REGISTRY, ProcessCollector

from observability.priority import background_priority

# The child announces the body's length first, so a child that dies mid-write is never
# mistaken for one that finished.
_HEADER = struct.Struct("!Q")
_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class SnapshotFailed(Exception):
    """The child did not deliver a whole render (it died, or took too long)."""


class SnapshotChild:
    """A forked child rendering; `result()` waits for its body (call it off the loop)."""

    def __init__(self, pid: int, read_fd: int) -> None:
        self.pid = pid
        self._read_fd = read_fd

    def result(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        chunks: list[bytes] = []
        try:
            while True:
                left = deadline - time.monotonic()
                ready, _, _ = select.select([self._read_fd], [], [], max(left, 0))
                if not ready:
                    os.kill(self.pid, signal.SIGKILL)
                    raise SnapshotFailed(f"render child took more than {timeout:g} s")
                chunk = os.read(self._read_fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(self._read_fd)
            self._reap()
        data = b"".join(chunks)
        if len(data) < _HEADER.size:
            raise SnapshotFailed("render child exited without an answer")
        (length,) = _HEADER.unpack_from(data)
        body = data[_HEADER.size :]
        if len(body) != length:
            raise SnapshotFailed(f"render child sent {len(body)} of {length} bytes")
        return body

    def _reap(self) -> None:
        # ChildProcessError: already reaped by someone else's SIGCHLD handling.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def fork_render(render: Callable[[], bytes], timeout: float) -> SnapshotChild:
    """Fork a child that renders with `render()` and sends the body back through a pipe.

    Call on the event-loop thread (see the module's docstring). Signals meant for the
    parent are blocked across the fork, so none reaches a handler the child inherited:
    uvicorn's handlers would otherwise forward a Ctrl-C aimed at the process group to the
    parent's loop through the shared wake-up pipe, and a second SIGINT forces its exit.
    """
    read_fd, write_fd = os.pipe()
    parent_pid = os.getpid()
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns on any fork of a process with threads; the threads here
            # never touch what the child reads (see the module's docstring).
            warnings.filterwarnings("ignore", ".*multi-threaded.*fork", DeprecationWarning)
            pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        os.close(read_fd)
        os.close(write_fd)
        raise
    if pid == 0:
        _child(render, write_fd, parent_pid, previous_mask, timeout)
    signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
    os.close(write_fd)
    return SnapshotChild(pid, read_fd)


def _child(
    render: Callable[[], bytes],
    write_fd: int,
    parent_pid: int,
    mask: Iterable[int],
    timeout: float,
) -> NoReturn:
    status = 1
    try:
        # First of all: until then the child competes with the parent for its core.
        background_priority()
        # Keep only stdio and the pipe: the parent's sockets close when the parent says.
        os.closerange(3, write_fd)
        os.closerange(write_fd + 1, 1 << 16)
        signal.set_wakeup_fd(-1)
        for signum in _SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        # A child stuck on a lock copied in a locked state dies on its own, even if the
        # parent is gone and cannot kill it.
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(max(1, int(timeout) + 1))
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        gc.disable()  # a collection would touch, and so copy, the whole heap
        _describe_parent(parent_pid)
        body = render()
        with open(write_fd, "wb", closefd=True) as pipe:
            pipe.write(_HEADER.pack(len(body)))
            pipe.write(body)
        status = 0
    except BaseException:
        traceback.print_exc(file=sys.stderr)
    finally:
        os._exit(status)


def _describe_parent(parent_pid: int) -> None:
    # process_* samples read /proc/self, which in here is the child.
    try:
        REGISTRY.unregister(PROCESS_COLLECTOR)
    except KeyError:  # not registered: nothing to correct
        return
    ProcessCollector(pid=lambda: parent_pid, registry=REGISTRY)
