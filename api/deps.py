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


async def require_api_token(
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    challenge = {"WWW-Authenticate": "Bearer"}
    if not settings.api_tokens:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the API is disabled: no API_TOKENS are configured",
            headers=challenge,
        )
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers=challenge)
    given = credentials.credentials.encode()
    # Check every token so the time taken does not tell which one nearly matched.
    matched = False
    for token in settings.api_tokens:
        matched |= hmac.compare_digest(given, token.encode())
    if not matched:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid bearer token", headers=challenge)


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
