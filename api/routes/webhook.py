"""`POST /api/webhook`: GitHub's deliveries, verified and stored before the answer.

Answers (docs/operations.md 3): 202 stored; 200 ping or an already-seen delivery id; 401 bad or
missing signature; 400 malformed; 413 over 25 MiB; 503 no secret configured or database
unavailable. A 503 makes GitHub show the failure so the delivery can be redelivered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.body import BodyTooLarge, read_capped
from api.deps import get_settings
from api.inputs import unstorable
from mergequeue.db import DATABASE_DOWN
from mergequeue.tasks import PROCESS_DELIVERY, TaskQueue, delivery_job_id
from mergequeue.webhooks.events import metric_event
from mergequeue.webhooks.inbox import Delivery
from mergequeue.webhooks.writer import InboxWriter
from observability.metrics import GITHUB_WEBHOOK_LATENCY

router = APIRouter(tags=["webhooks"])
log = logging.getLogger("mergequeue.webhook")

MAX_BODY_BYTES = 25 * 1024 * 1024
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_EVENT = re.compile(r"^[a-z0-9_]{1,64}$")


def _answer(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is `sha256=` + the body's HMAC. Any malformed header is simply
    not a match: the comparison is of bytes, which never raises (compare_digest refuses
    non-ASCII text, and header text is whatever bytes the client sent)."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    given = header.removeprefix("sha256=").encode("utf-8", "surrogateescape")
    return hmac.compare_digest(expected, given)


@router.post(
    "/api/webhook",
    status_code=202,
    responses={
        200: {"description": "ping, or a delivery id already received"},
        400: {"description": "malformed delivery"},
        401: {"description": "bad or missing X-Hub-Signature-256"},
        413: {"description": "body over 25 MiB"},
        503: {"description": "no webhook secret configured, or the database is unavailable"},
    },
)
async def receive_webhook(request: Request) -> JSONResponse:
    # Called, not declared as a dependency: FastAPI's dependency resolution was a tenth
    # of this hot path's CPU in the ingest profile.
    settings = await get_settings(request)
    started = time.perf_counter()
    event = request.headers.get("x-github-event", "")
    try:
        return await _receive(request, settings.GITHUB_WEBHOOK_SECRET, event)
    finally:
        GITHUB_WEBHOOK_LATENCY.labels(metric_event(event)).observe(time.perf_counter() - started)


async def _receive(request: Request, secret: Any, event: str) -> JSONResponse:
    if secret is None or not secret.get_secret_value():
        return _answer(503, "webhooks are disabled: GITHUB_WEBHOOK_SECRET is not configured")
    try:
        body = await read_capped(request, MAX_BODY_BYTES)
    except BodyTooLarge:
        return _answer(413, f"body over {MAX_BODY_BYTES} bytes")
    if not signature_ok(
        secret.get_secret_value(), body, request.headers.get("x-hub-signature-256")
    ):
        return _answer(401, "bad or missing X-Hub-Signature-256")

    delivery_id = request.headers.get("x-github-delivery", "")
    if not _EVENT.match(event):
        return _answer(400, "missing or malformed X-GitHub-Event")
    if not _DELIVERY_ID.match(delivery_id):
        return _answer(400, "missing or malformed X-GitHub-Delivery")
    try:
        text = body.decode("utf-8")
        payload = json.loads(text, parse_constant=_not_json)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _answer(400, "body is not JSON")
    if not isinstance(payload, dict):
        return _answer(400, "body is not a JSON object")
    if event == "ping":
        return _answer(200, "pong")

    delivery = Delivery(
        id=delivery_id,
        event=event,
        action=_str(payload.get("action")),
        installation_id=_installation_id(payload),
        repository_full_name=_str((payload.get("repository") or {}).get("full_name"))
        if isinstance(payload.get("repository"), dict)
        else None,
        payload=text,
    )
    inbox: InboxWriter = request.app.state.inbox
    try:
        new = await inbox.store(delivery)
    except DATABASE_DOWN as exc:
        log.warning("webhook refused, database unavailable: %s", type(exc).__name__)
        return _answer(503, "database unavailable")
    if not new:
        return _answer(200, "delivery already received")

    tasks: TaskQueue = request.app.state.tasks
    await tasks.enqueue(PROCESS_DELIVERY, delivery_id, job_id=delivery_job_id(delivery_id, 0))
    log.info("webhook stored", extra={"event": event, "delivery": delivery_id})
    return _answer(202, "accepted")


def _not_json(constant: str) -> object:
    # Python's parser takes NaN and Infinity, which JSON (and GitHub) never send.
    raise ValueError(f"{constant} is not JSON")


def _str(value: object) -> str | None:
    # A column's copy of a payload field: one the database cannot store (NUL, a lone
    # surrogate) is left out; the payload itself is kept, and the worker judges it.
    if not isinstance(value, str) or unstorable(value) is not None:
        return None
    return value[:64]


def _installation_id(payload: dict[str, Any]) -> int | None:
    installation = payload.get("installation")
    if isinstance(installation, dict) and isinstance(installation.get("id"), int):
        installation_id = int(installation["id"])
        # The column is a BIGINT; an id outside it is not GitHub's and is not stored as one.
        if -(2**63) <= installation_id < 2**63:
            return installation_id
    return None
