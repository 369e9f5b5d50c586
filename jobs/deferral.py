"""Turning GitHub's "not now" into arq's "later": rate limits and outages defer the job."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from arq.worker import Retry

from mergequeue.github import RateLimited, Unavailable

log = logging.getLogger("mergequeue.deferral")

MAX_OUTAGE_BACKOFF_SECONDS = 300.0


@contextmanager
def defer_when_github_says_wait(ctx: dict[str, Any]) -> Iterator[None]:
    """Rate limited: retry when GitHub allows it. Unavailable: retry with a growing back-off."""
    try:
        yield
    except RateLimited as exc:
        delay = max(1.0, exc.retry_at - time.time())
        log.warning("GitHub rate limit: deferring", extra={"seconds": round(delay, 1)})
        raise Retry(defer=delay) from exc
    except Unavailable as exc:
        delay = min(MAX_OUTAGE_BACKOFF_SECONDS, 5.0 * 2 ** (int(ctx.get("job_try", 1)) - 1))
        log.warning("GitHub unavailable: deferring", extra={"seconds": delay})
        raise Retry(defer=delay) from exc
