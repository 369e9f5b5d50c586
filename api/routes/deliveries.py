"""`/api/v1/deliveries`: webhook deliveries the worker gave up on, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.deps import SessionDep, require_api_token
from api.schemas import ErrorOut
from mergequeue.webhooks.inbox import parked

router = APIRouter(
    prefix="/api/v1",
    tags=["deliveries"],
    dependencies=[Depends(require_api_token)],
    responses={
        401: {"model": ErrorOut, "description": "missing or invalid bearer token"},
        413: {"model": ErrorOut, "description": "request body over 64 KiB"},
    },
)


class ParkedDeliveryOut(BaseModel):
    id: str
    event: str
    action: str | None
    repository_full_name: str | None
    attempts: int
    error: str | None
    received_at: datetime
    processed_at: datetime | None


@router.get(
    "/deliveries/failed",
    response_model=list[ParkedDeliveryOut],
    summary="Webhook deliveries parked as failed, latest first, with the error",
)
async def failed_deliveries(
    session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[ParkedDeliveryOut]:
    return [
        ParkedDeliveryOut.model_validate(d, from_attributes=True)
        for d in await parked(session, limit=limit)
    ]
