"""The queue engine's events as Prometheus metrics (the engine's `QueueEvents`)."""

from __future__ import annotations

from observability.metrics import DEQUEUES, MERGES, QUEUE_DEPTH, TIME_TO_MERGE


class PrometheusQueueEvents:
    def merged(self, full_name: str, seconds_in_queue: float) -> None:
        MERGES.labels(full_name).inc()
        TIME_TO_MERGE.labels(full_name).observe(seconds_in_queue)

    def dequeued(self, full_name: str, reason: str) -> None:
        DEQUEUES.labels(full_name, reason).inc()


def observe_queue_depth(full_name: str, depth: int) -> None:
    QUEUE_DEPTH.labels(full_name).set(depth)
