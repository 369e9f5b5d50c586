"""When reconciliation re-reads a queue that no webhook has woken.

A queue whose webhooks arrive is evaluated by them. One that has been quiet for
`quiet_after` (`RECONCILE_QUIET_SECONDS`, default a minute) is re-read (its reads are
conditional requests, free while nothing changed), and one whose next decision falls due
(a CI timeout) is re-read at once. When the installation's budget runs low, only due
decisions are read.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

QUIET_AFTER: Final = timedelta(seconds=60)


def reconcile_due(
    *,
    evaluated_at: datetime | None,
    deadline_at: datetime | None,
    now: datetime,
    budget_low: bool,
    quiet_after: timedelta = QUIET_AFTER,
) -> bool:
    if deadline_at is not None and deadline_at <= now:
        return True
    if budget_low:
        return False
    return evaluated_at is None or now - evaluated_at >= quiet_after
