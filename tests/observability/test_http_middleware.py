"""observability/middleware.py: request ids and the Flask-era request metrics, in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from prometheus_client import REGISTRY
from prometheus_client.openmetrics.exposition import generate_latest
from starlette.types import Message, Receive, Scope, Send

from observability.exemplars import HTTP_REQUEST_EXEMPLARS
from observability.http import UNMATCHED_PATH
from observability.middleware import InstrumentedFastAPI, RequestInstrumentation
from observability.request_id import RequestIds
from tests.support.request_ids import is_generated


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _app(**kwargs: Any) -> FastAPI:
    app = InstrumentedFastAPI(**kwargs)
    app.uncounted_paths = {"/skip"}

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.get("/raises-before-answer")
    async def raises() -> None:
        raise LookupError("boom")

    @app.get("/raises-after-answer")
    async def raises_late() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"partial"
            raise LookupError("boom, mid-answer")

        return StreamingResponse(body())

    return app


@pytest.fixture
def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_path_label_is_the_route_template(client: httpx.AsyncClient) -> None:
    labels = {"method": "GET", "path": "/items/{item_id}", "status": "200"}
    before = _value("flask_http_request_duration_seconds_count", **labels)
    for i in range(5):
        assert (await client.get(f"/items/{i}")).status_code == 200
    assert _value("flask_http_request_duration_seconds_count", **labels) == before + 5


async def test_validation_errors_keep_the_template_and_their_status(
    client: httpx.AsyncClient,
) -> None:
    labels = {"method": "GET", "path": "/items/{item_id}", "status": "422"}
    before = _value("flask_http_request_duration_seconds_count", **labels)
    assert (await client.get("/items/not-a-number")).status_code == 422
    assert _value("flask_http_request_duration_seconds_count", **labels) == before + 1


async def test_unmatched_urls_share_one_path_value(client: httpx.AsyncClient) -> None:
    labels = {"method": "GET", "path": UNMATCHED_PATH, "status": "404"}
    before = _value("flask_http_request_duration_seconds_count", **labels)
    for i in range(20):
        await client.get(f"/random/{i}")
    assert _value("flask_http_request_duration_seconds_count", **labels) == before + 20


async def test_unknown_methods_share_one_method_value(client: httpx.AsyncClient) -> None:
    before = _value("flask_http_request_total", method="OTHER", status="404")
    for method in ("PROPFIND", "BREW", "X-CUSTOM"):
        await client.request(method, "/nowhere")
    assert _value("flask_http_request_total", method="OTHER", status="404") == before + 3


async def test_exception_counts_once_in_each_metric_as_500(client: httpx.AsyncClient) -> None:
    totals = {"method": "GET", "status": "500"}
    hist = {**totals, "path": "/raises-before-answer"}
    before = (
        _value("flask_http_request_exceptions_total", **totals),
        _value("flask_http_request_total", **totals),
        _value("flask_http_request_duration_seconds_count", **hist),
    )
    response = await client.get("/raises-before-answer")
    assert response.status_code == 500
    after = (
        _value("flask_http_request_exceptions_total", **totals),
        _value("flask_http_request_total", **totals),
        _value("flask_http_request_duration_seconds_count", **hist),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]


async def test_excluded_paths_are_not_counted(client: httpx.AsyncClient) -> None:
    before = _value("flask_http_request_total", method="GET", status="404")
    await client.get("/skip")
    assert _value("flask_http_request_total", method="GET", status="404") == before


async def test_every_answer_carries_a_request_id(client: httpx.AsyncClient) -> None:
    first = (await client.get("/items/1")).headers["x-request-id"]
    second = (await client.get("/items/1")).headers["x-request-id"]
    assert first != second and is_generated(first) and is_generated(second)


async def test_a_well_formed_incoming_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/items/1", headers={"X-Request-ID": "req-from-proxy-1234"})
    assert response.headers["x-request-id"] == "req-from-proxy-1234"


@pytest.mark.parametrize("sent", ["bad id\twith spaces", "short", "x" * 65, "semi;colon-id"])
async def test_a_malformed_incoming_request_id_is_replaced(
    client: httpx.AsyncClient, sent: str
) -> None:
    answered = (await client.get("/items/1", headers={"X-Request-ID": sent})).headers
    assert answered["x-request-id"] != sent and is_generated(answered["x-request-id"])


async def test_excluded_paths_still_answer_with_a_request_id(client: httpx.AsyncClient) -> None:
    assert is_generated((await client.get("/skip")).headers["x-request-id"])


async def test_the_latest_request_of_a_bucket_is_its_exemplar(client: httpx.AsyncClient) -> None:
    for request_id in ("exemplar-probe-older", "exemplar-probe-latest"):
        await client.get("/items/7", headers={"X-Request-ID": request_id})
    HTTP_REQUEST_EXEMPLARS.flush()
    exemplars = [
        line.split(" # ", 1)[1]
        for line in generate_latest(REGISTRY).decode().splitlines()  # type: ignore[no-untyped-call]
        if line.startswith("flask_http_request_duration_seconds_bucket{")
        and 'path="/items/{item_id}"' in line
        and " # " in line
    ]
    assert any('request_id="exemplar-probe-latest"' in e for e in exemplars)
    assert not any('request_id="exemplar-probe-older"' in e for e in exemplars)


async def test_instrumentation_is_the_outermost_layer_in_place_of_starlettes_catch_all() -> None:
    app = _app()
    outermost = app.build_middleware_stack()
    assert type(outermost) is RequestInstrumentation
    # What it took the place of is not also inside it.
    layer = outermost.app
    while hasattr(layer, "app"):
        assert type(layer).__name__ != "ServerErrorMiddleware"
        layer = layer.app


async def test_an_unhandled_exception_is_answered_500_with_a_request_id(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/raises-before-answer", headers={"X-Request-ID": "boom-0000-0001"})
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert response.headers["x-request-id"] == "boom-0000-0001"


async def test_an_unhandled_exception_still_reaches_the_server() -> None:
    # Starlette re-raises after answering so that the server logs the traceback.
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(LookupError, match="boom"):
            await client.get("/raises-before-answer")


async def test_the_applications_own_500_handler_answers_with_a_request_id() -> None:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"sorry: {exc}"}, status_code=500)

    app = _app(exception_handlers={Exception: handler})
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/raises-before-answer")
    assert response.status_code == 500
    assert response.json() == {"detail": "sorry: boom"}
    assert is_generated(response.headers["x-request-id"])


async def test_debug_mode_answers_starlettes_traceback_page() -> None:
    transport = httpx.ASGITransport(app=_app(debug=True), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/raises-before-answer", headers={"Accept": "text/html"})
    assert response.status_code == 500
    assert "LookupError" in response.text and "<html>" in response.text


async def test_an_exception_after_the_answer_started_is_counted_once_as_500(
    client: httpx.AsyncClient,
) -> None:
    # The status line went out before the exception: no second answer is attempted.
    labels = {"method": "GET", "path": "/raises-after-answer", "status": "500"}
    before = (
        _value("flask_http_request_exceptions_total", method="GET", status="500"),
        _value("flask_http_request_duration_seconds_count", **labels),
    )
    response = await client.get("/raises-after-answer")
    assert response.status_code == 200 and response.content == b"partial"
    after = (
        _value("flask_http_request_exceptions_total", method="GET", status="500"),
        _value("flask_http_request_duration_seconds_count", **labels),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1]


async def test_an_application_that_never_answers_is_counted_as_500() -> None:
    # The server answers 500 for an application that returns without answering.
    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        raise AssertionError(f"nothing should be sent, got {message}")

    scope = {"type": "http", "method": "GET", "path": "/silent", "headers": []}
    before = _value("flask_http_request_total", method="GET", status="500")
    await RequestInstrumentation(silent)(scope, receive, send)
    assert _value("flask_http_request_total", method="GET", status="500") == before + 1


def test_generated_ids_are_unique_across_processes_and_ordered_within_one() -> None:
    scope = {"headers": []}
    one, other = RequestIds(), RequestIds()  # each process makes one at start
    first, second = one.for_request(scope), one.for_request(scope)
    assert first.split("-")[0] == second.split("-")[0] != other.for_request(scope).split("-")[0]
    assert int(second.split("-")[1]) == int(first.split("-")[1]) + 1
