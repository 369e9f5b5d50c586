"""Observers the GitHub client reports to: call latency and rate-limit headroom."""

from __future__ import annotations

from observability.metrics import GITHUB_API_CALL_LATENCY, GITHUB_RATE_LIMIT_REMAINING


def observe_github_call(method: str, endpoint: str, status: str, seconds: float) -> None:
    GITHUB_API_CALL_LATENCY.labels(method, endpoint, status).observe(seconds)


def observe_rate_limit(key: str, remaining: int, reset_epoch: int) -> None:
    GITHUB_RATE_LIMIT_REMAINING.labels(key).set(remaining)
