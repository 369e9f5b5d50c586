"""api/app.py: how the request instrumentation wraps the application's own middleware."""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY

from api.app import create_app
from mergequeue.settings import load_settings
from observability.http import UNMATCHED_PATH
from tests.support.request_ids import is_generated


def _client(**env: str) -> httpx.AsyncClient:
    app = create_app(load_settings(env))
    # httpx's ASGI transport reports the client as 127.0.0.1.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def _refusals() -> float:
    labels = {"method": "GET", "path": UNMATCHED_PATH, "status": "403"}
    return REGISTRY.get_sample_value("flask_http_request_duration_seconds_count", labels) or 0.0


async def test_debug_guard_refusals_carry_a_request_id_and_are_counted() -> None:
    client = _client(DEBUG_ALLOWED_NETWORKS="10.0.0.0/8")
    before = _refusals()
    response = await client.get("/debug/anything", headers={"X-Request-ID": "refused-probe-0001"})
    assert response.status_code == 403
    assert response.headers["x-request-id"] == "refused-probe-0001"
    assert _refusals() == before + 1


async def test_refused_scrapes_of_the_metrics_path_are_not_counted() -> None:
    client = _client(DEBUG_ALLOWED_NETWORKS="10.0.0.0/8", SERVE_PROMETHEUS_ENDPOINT="true")
    before = _refusals()
    response = await client.get("/debug/metrics")
    assert response.status_code == 403 and is_generated(response.headers["x-request-id"])
    assert _refusals() == before
