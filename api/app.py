"""Assembles the FastAPI application from settings. No module-level app or engine here."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException

from api.debug_guard import DebugNetworkGuard
from api.gate import ApiGate
from api.graphql import route as graphql
from api.pages import routes as pages
from api.pages.github import GitHubSignIn
from api.routes import deliveries, health, metrics, queue, repos, webhook
from api.trusted_host import TrustedHosts
from mergequeue.db import create_database
from mergequeue.heap import freeze_startup_heap
from mergequeue.settings import Settings
from mergequeue.tasks import TaskQueue
from mergequeue.version import build_version
from mergequeue.webhooks.writer import InboxWriter
from observability import multiprocess
from observability.db import install_query_timing
from observability.exposition import WEB_METRICS_PATH, Renderer
from observability.listener import MetricsListener
from observability.metrics import BUILD_INFO
from observability.middleware import InstrumentedFastAPI

log = logging.getLogger("mergequeue.web")


def create_app(
    settings: Settings, *, github_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """`github_transport`: where the dashboard's sign-in reaches GitHub (tests: the fake
    in process); by default the network."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.PROMETHEUS_MULTIPROC_DIR is not None:
            multiprocess.join_run(settings.PROMETHEUS_MULTIPROC_DIR)
        database = create_database(settings.DATABASE_URL)
        if settings.ENABLE_DB_METRICS:
            install_query_timing(database.engine)
        app.state.database = database
        app.state.inbox = InboxWriter(database)
        app.state.tasks = TaskQueue(settings.REDIS_URL)
        dashboard = None
        if settings.sign_in_configured:
            dashboard = pages.Dashboard(settings, GitHubSignIn(settings, github_transport))
        app.state.dashboard = dashboard
        renderer = app.state.renderer = Renderer(
            settings.PROMETHEUS_MULTIPROC_DIR, loop=asyncio.get_running_loop()
        )
        listener = None
        if settings.WEB_PROMETHEUS_PORT is not None:
            listener = MetricsListener(
                host="0.0.0.0",
                port=settings.WEB_PROMETHEUS_PORT,
                credentials=settings.basic_auth,
                renderer=renderer,
                reuse_port=True,
            )
            listener.start()
        BUILD_INFO.labels(build_version()).set(1)
        freeze_startup_heap()
        log.info(
            "web started",
            extra={
                "version": build_version(),
                "metrics": _where_metrics(settings),
                "db_metrics": settings.ENABLE_DB_METRICS,
                "dashboard": "on" if dashboard is not None else "off (no sign-in configured)",
            },
        )
        try:
            yield
        finally:
            if listener is not None:
                listener.stop()
            renderer.close()
            if dashboard is not None:
                await dashboard.aclose()
            await app.state.inbox.close()
            await app.state.tasks.close()
            await database.dispose()
            if settings.PROMETHEUS_MULTIPROC_DIR is not None:
                multiprocess.leave_run(settings.PROMETHEUS_MULTIPROC_DIR)

    app = InstrumentedFastAPI(
        title="mergequeue",
        version=build_version(),
        description="A self-hosted GitHub merge queue.",
        lifespan=lifespan,
        # No answer is ever a redirect: Starlette's "add/remove the trailing slash" 307
        # builds its Location from the client's Host header (and made `/debug/metrics/`
        # redirect). A path is served exactly as documented or it is a 404.
        redirect_slashes=False,
    )
    app.state.settings = settings

    app.include_router(health.router)
    app.include_router(repos.router)
    app.include_router(queue.router)
    app.include_router(deliveries.router)
    app.include_router(graphql.router)
    app.include_router(webhook.router)
    if settings.web_metrics_on_main_port:
        app.include_router(metrics.router)
    # The dashboard's pages last: the API's paths win any overlap.
    app.include_router(pages.router)

    app.add_exception_handler(HTTPException, _undecodable_body)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.add_exception_handler(PoolTimeoutError, _database_unavailable)
    app.add_exception_handler(ConnectionError, _database_unavailable)

    # The instrumentation is the outermost layer (InstrumentedFastAPI) and wraps the guard,
    # so logs, exemplars and the guard's refusals carry the request id, and refusals count.
    # Added innermost first: the host check runs before the guard, the guard before the
    # API gate (which reads the body, once the token is checked).
    app.add_middleware(ApiGate, settings=settings)
    if settings.DEBUG_ALLOWED_NETWORKS:
        app.add_middleware(DebugNetworkGuard, networks=settings.DEBUG_ALLOWED_NETWORKS)
    if "*" not in settings.ALLOWED_HOSTS:
        app.add_middleware(TrustedHosts, allowed=settings.ALLOWED_HOSTS)
    app.uncounted_paths = {WEB_METRICS_PATH} if settings.web_metrics_on_main_port else set()
    return app


def _where_metrics(settings: Settings) -> str:
    if settings.WEB_PROMETHEUS_PORT is not None:
        return f":{settings.WEB_PROMETHEUS_PORT}/metrics"
    if settings.SERVE_PROMETHEUS_ENDPOINT:
        return WEB_METRICS_PATH
    return "off"


async def _undecodable_body(request: Request, exc: Exception) -> Response:
    # FastAPI answers a JSON body that is not UTF-8 with a bare 400 (a Starlette
    # HTTPException) that no operation documents, as schemathesis found; bad input is a
    # 422 like any other malformed JSON. Every other HTTPException is answered as before.
    # The same holds for any other failure to parse a body (JSON nested past the parser's
    # recursion limit raised RecursionError): FastAPI's only 400 is "error parsing the body".
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and exc.__cause__ is not None:
        reason = "not UTF-8" if isinstance(exc.__cause__, UnicodeDecodeError) else "unparsable"
        error = {"type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error"}
        invalid = RequestValidationError([{**error, "input": {}, "ctx": {"error": reason}}])
        return await _invalid_request(request, invalid)
    return await http_exception_handler(request, exc)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    # FastAPI's own 422 echoes the input as UTF-8, and a lone surrogate in it (JSON's
    # "\ud800") cannot be encoded: the rejection itself became a 500. ASCII-escaped JSON
    # carries any input.
    assert isinstance(exc, RequestValidationError)
    body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True)
    return Response(body, status_code=422, media_type="application/json")


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DBAPIError) and not isinstance(exc, OperationalError | InterfaceError):
        raise exc
    log.warning("database unavailable: %s", type(exc).__name__)
    return JSONResponse({"detail": "database unavailable"}, status_code=503)
