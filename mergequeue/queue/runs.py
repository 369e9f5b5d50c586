"""Cancelling the GitHub Actions runs of a dropped staging build, so they stop burning CI
minutes on a result nobody will read.

Best effort: a failure to cancel never stops the queue. It is only asked when the
installation granted `actions: write` (`EffectiveSettings.cancel_workflow_runs`), so no
call is spent on a certain refusal. Should GitHub refuse anyway (403: the permission was
revoked, or the stored grant is older than the token), it is logged once per repository
and the repository is not asked again for an hour: an installation token lasts an hour,
and a permission granted since comes with the next one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from mergequeue.queue.ports import Refused, StagingGitHub

log = logging.getLogger("mergequeue.queue")

# How long a repository whose cancel GitHub refused (403) is not asked again.
REFUSED_FOR_SECONDS: Final = 3600.0


class Refusals:
    """Repositories whose cancel GitHub refused, in this process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}
        self._logged: set[str] = set()

    def refused(self, full_name: str) -> bool:
        """True while `full_name` is not to be asked (refused within the hour)."""
        until = self._until.get(full_name)
        return until is not None and self._clock() < until

    def note(self, full_name: str) -> bool:
        """Record a refusal; True the first time for this repository (to be logged)."""
        self._until[full_name] = self._clock() + REFUSED_FOR_SECONDS
        first = full_name not in self._logged
        self._logged.add(full_name)
        return first

    def clear(self) -> None:
        self._until.clear()
        self._logged.clear()


REFUSALS = Refusals()


async def cancel_runs(github: StagingGitHub, branch: str, full_name: str) -> int:
    """Cancel the workflow runs not yet completed on `branch`; how many GitHub accepted
    (0 on any failure, which is logged, never raised)."""
    if REFUSALS.refused(full_name):
        return 0
    try:
        asked = await github.cancel_workflow_runs(branch)
    except Refused as exc:
        if exc.status != 403:
            log.info(
                "cancelling workflow runs refused",
                extra={"repository": full_name, "branch": branch, "why": exc.message},
            )
        elif REFUSALS.note(full_name):
            log.warning(
                "GitHub refused to cancel workflow runs: the App needs the actions: write "
                "permission; not asked again for an hour",
                extra={"repository": full_name, "branch": branch, "why": exc.message},
            )
        return 0
    except Exception as exc:  # best effort: the queue goes on regardless
        log.warning(
            "cancelling workflow runs failed",
            extra={"repository": full_name, "branch": branch, "why": str(exc)},
        )
        return 0
    if asked:
        log.info(
            "workflow runs cancelled",
            extra={"repository": full_name, "branch": branch, "runs": asked},
        )
    return asked
