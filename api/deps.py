"""Dependencies shared by the routes: settings, database sessions, API authentication."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from mergequeue.db import Database
from mergequeue.settings import Settings


# async, so FastAPI calls them on the loop instead of sending each to its thread pool.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_session(
    database: Annotated[Database, Depends(get_database)],
) -> AsyncIterator[AsyncSession]:
    async with database.sessions() as session:
        yield session


_bearer = HTTPBearer(auto_error=False, description="A token from API_TOKENS")


def token_refusal(settings: Settings, authorization: str | None) -> str | None:
    """Why a request with this `Authorization` header is refused, or None when it is not.

    Shared by the gate that runs before any body is read (`api.gate`) and the dependency
    that documents the scheme in the OpenAPI description."""
    if not settings.api_tokens:
        return "the API is disabled: no API_TOKENS are configured"
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return "missing bearer token"
    # Header values arrive as latin-1 text: every one encodes, whatever bytes were sent.
    presented = given.encode("utf-8", "surrogateescape")
    # Check every token so the time taken does not tell which one nearly matched.
    matched = False
    for token in settings.api_tokens:
        matched |= hmac.compare_digest(presented, token.encode())
    return None if matched else "invalid bearer token"


async def require_api_token(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    refusal = token_refusal(settings, request.headers.get("authorization"))
    if refusal is not None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, refusal, headers={"WWW-Authenticate": "Bearer"}
        )


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
