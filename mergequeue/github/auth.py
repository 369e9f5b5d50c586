"""GitHub App and static-token authentication.

An App signs a short JWT with its private key and trades it for an installation token
(valid one hour). Tokens are cached per installation and re-minted shortly before they
expire; concurrent callers for the same installation wait for a single mint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import jwt

__all__ = [
    "AppAuth",
    "Auth",
    "InstallationToken",
    "InstallationTokenCache",
    "StaticTokenAuth",
    "make_app_jwt",
    "parse_github_time",
]

# GitHub refuses an `exp` more than 10 minutes ahead; leave room for clock drift.
JWT_LIFETIME_SECONDS = 9 * 60
# GitHub's own advice: backdate `iat` 60 s against clock drift.
JWT_BACKDATE_SECONDS = 60


def make_app_jwt(*, app_id: str | int, private_key: str, now: float | None = None) -> str:
    """An RS256 App JWT: `iat` 60 s in the past, `exp` 9 minutes ahead, `iss` = app id."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iat": issued - JWT_BACKDATE_SECONDS,
        "exp": issued + JWT_LIFETIME_SECONDS,
        "iss": str(app_id),
    }
    return jwt.encode(claims, private_key, algorithm="RS256")


def parse_github_time(value: str) -> float:
    """GitHub's ISO 8601 timestamps ("2026-11-24T18:30:00Z") as Unix time."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True, slots=True)
class InstallationToken:
    token: str
    expires_at: float  # Unix time
    # What GitHub granted the token (the installation's permissions when it was minted),
    # e.g. {"contents": "write", "actions": "write"}; None when the answer did not say.
    permissions: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class StaticTokenAuth:
    """One token for every call (`GITHUB_TOKEN` mode)."""

    token: str

    def __repr__(self) -> str:
        return "StaticTokenAuth(token=***)"


class InstallationTokenCache:
    """Installation tokens by installation id, minted at most once at a time each."""

    def __init__(
        self, *, refresh_margin: float = 300.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._margin = refresh_margin
        self._clock = clock
        self._tokens: dict[int, InstallationToken] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def _fresh(self, installation_id: int) -> str | None:
        cached = self._tokens.get(installation_id)
        if cached is not None and cached.expires_at - self._margin > self._clock():
            return cached.token
        return None

    async def get(
        self, installation_id: int, mint: Callable[[], Awaitable[InstallationToken]]
    ) -> str:
        token = self._fresh(installation_id)
        if token is not None:
            return token
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            # Another caller may have minted while this one waited for the lock.
            token = self._fresh(installation_id)
            if token is not None:
                return token
            minted = await mint()
            self._tokens[installation_id] = minted
            return minted.token

    def permissions(self, installation_id: int) -> Mapping[str, str] | None:
        """The permissions GitHub granted the installation's current token (None: no
        token minted yet, or GitHub did not say)."""
        cached = self._tokens.get(installation_id)
        return cached.permissions if cached is not None else None

    def invalidate(self, installation_id: int, token: str | None = None) -> None:
        """Forget a token GitHub refused (only that one, if given: a newer may exist)."""
        cached = self._tokens.get(installation_id)
        if cached is not None and (token is None or cached.token == token):
            del self._tokens[installation_id]


class AppAuth:
    """A GitHub App: signs JWTs and holds the installation-token cache."""

    def __init__(
        self,
        *,
        app_id: str | int,
        private_key: str,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app_id = str(app_id)
        self._private_key = private_key
        # `clock` drives the cache only: the JWT must carry the real time GitHub checks.
        self.tokens = InstallationTokenCache(refresh_margin=refresh_margin, clock=clock)

    def jwt(self) -> str:
        return make_app_jwt(app_id=self.app_id, private_key=self._private_key)

    def __repr__(self) -> str:
        return f"AppAuth(app_id={self.app_id!r})"


Auth = AppAuth | StaticTokenAuth
