"""The queue engine's events as Prometheus metrics (the engine's `QueueEvents`)."""

from __future__ import annotations

from observability.metrics import (
    BATCH_SIZE,
    BISECTIONS,
    BUILDS,
    BUILDS_IN_FLIGHT,
    DEQUEUES,
    FLAKY_FAILURES,
    LANDINGS,
    MERGES,
    QUEUE_DEPTH,
    QUEUE_PAUSED,
    TIME_TO_MERGE,
)


class PrometheusQueueEvents:
    def merged(self, full_name: str, seconds_in_queue: float) -> None:
        MERGES.labels(full_name).inc()
        TIME_TO_MERGE.labels(full_name).observe(seconds_in_queue)

    def dequeued(self, full_name: str, reason: str) -> None:
        DEQUEUES.labels(full_name, reason).inc()

    def build_started(self, full_name: str, size: int) -> None:
        BATCH_SIZE.labels(full_name).observe(size)

    def build_ended(self, full_name: str, outcome: str) -> None:
        BUILDS.labels(full_name, outcome).inc()

    def builds_in_flight(self, full_name: str, count: int) -> None:
        BUILDS_IN_FLIGHT.labels(full_name).set(count)

    def bisected(self, full_name: str) -> None:
        BISECTIONS.labels(full_name).inc()

    def landed(self, full_name: str) -> None:
        LANDINGS.labels(full_name).inc()

    def flaky(self, full_name: str, check: str) -> None:
        FLAKY_FAILURES.labels(full_name, check).inc()


def observe_queue_depth(full_name: str, depth: int) -> None:
    QUEUE_DEPTH.labels(full_name).set(depth)


def observe_queue_paused(full_name: str, paused: bool) -> None:
    QUEUE_PAUSED.labels(full_name).set(1 if paused else 0)


def forget_repositories_except(seen: set[str]) -> None:
    """Repositories that left (uninstalled) stop being exported instead of freezing."""
    for gauge in (QUEUE_DEPTH, QUEUE_PAUSED):
        exported = {sample.labels["repository"] for m in gauge.collect() for sample in m.samples}
        for repository in exported - seen:
            gauge.remove(repository)
