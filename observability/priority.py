"""The CPU priority of the processes that render metrics for a serving process."""

from __future__ import annotations

import contextlib
import os


def background_priority() -> None:
    """Run the calling process only when the CPU would otherwise be idle.

    A render shares the serving process's CPU (one core per pod, typically). At nice 19
    it still gets a slice of that core while a request waits; under SCHED_IDLE the kernel
    switches to a waking request at once, and the render runs in the gaps between them.
    Any process may lower itself to SCHED_IDLE; nice 19 stays as the fallback where the
    policy is unavailable, and shows in `ps` what the process is.
    """
    os.nice(19 - os.nice(0))
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
