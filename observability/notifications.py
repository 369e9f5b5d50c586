"""The notification sender's outcomes as a Prometheus counter."""

from __future__ import annotations

from observability.metrics import NOTIFICATIONS


class PrometheusNotificationEvents:
    def attempted(self, outcome: str) -> None:
        NOTIFICATIONS.labels(outcome).inc()
