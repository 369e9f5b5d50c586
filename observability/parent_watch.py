"""Children that die with their parent, however the parent dies.

A SIGKILLed serving process runs no cleanup: its render child (and, holding the child's
end of its pipe, multiprocessing's resource tracker) lived on under PID 1 indefinitely.
The child watches its parent instead: a pidfd becomes readable the moment the parent
exits, and a thread blocked on it ends the child at once.

Why not prctl(PR_SET_PDEATHSIG): the signal follows the *thread* that forked, not the
process. The render child is spawned from whichever thread first needs it (a metrics
listener's connection thread, asyncio's to_thread pool), and those threads end while the
parent lives on: the child would be killed with them.
"""

from __future__ import annotations

import os
import select
import threading
import time

# Where pidfd_open is missing (Linux before 5.3), the parent's pid is polled this often.
POLL_SECONDS = 0.5


def die_with_parent() -> None:
    """From a freshly started child: exit as soon as the process that started it does."""
    parent = os.getppid()
    pidfd: int | None
    try:
        pidfd = os.pidfd_open(parent)
    except (AttributeError, OSError):
        pidfd = None
    # The parent may have died between our start and pidfd_open, and its pid been reused.
    if os.getppid() != parent:
        os._exit(0)
    threading.Thread(target=_watch, args=(parent, pidfd), name="parent-watch", daemon=True).start()


def _watch(parent: int, pidfd: int | None) -> None:
    if pidfd is not None:
        select.select([pidfd], [], [])
    else:
        while os.getppid() == parent:
            time.sleep(POLL_SECONDS)
    # _exit: no cleanup of a pool whose parent is gone, and nothing that could block.
    os._exit(0)
