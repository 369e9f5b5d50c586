"""Liveness and readiness."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import DatabaseDep

router = APIRouter(tags=["health"])
log = logging.getLogger("mergequeue.health")

READY_TIMEOUT_SECONDS = 3.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "the database does not answer"}})
async def readyz(database: DatabaseDep) -> JSONResponse:
    try:
        await asyncio.wait_for(database.ping(), READY_TIMEOUT_SECONDS)
    except Exception as exc:
        reason = f"database unavailable: {type(exc).__name__}"
        log.warning("not ready: %s", reason)
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ok"})
