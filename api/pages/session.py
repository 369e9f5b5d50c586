"""The dashboard's sessions: sealed cookies, no server-side store.

A session is a small JSON object (login, the user's GitHub token, a CSRF token, when it
was issued) sealed with AES-GCM under a key derived from SESSION_SECRET: the cookie is
authenticated (a changed byte fails to open) and confidential (the GitHub token in it is
not readable by whoever sees the cookie). Any web process or replica with the same
secret opens it, so `uvicorn --workers N` and several pods need no shared store.

The sign-in's `state` travels the same way in a second, short-lived cookie.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE: Final = "mq_session"
STATE_COOKIE: Final = "mq_oauth_state"
# A session lasts a working day (GitHub's user access tokens of an App expire after 8 h).
SESSION_MAX_AGE: Final = 8 * 3600
# The round trip to GitHub's authorize page and back.
STATE_MAX_AGE: Final = 600
_NONCE_BYTES: Final = 12


@dataclass(frozen=True)
class Session:
    sid: str  # names the session in the per-process access cache
    login: str
    token: str  # the user's GitHub access token
    csrf: str
    issued_at: float

    @classmethod
    def start(cls, *, login: str, token: str, now: float | None = None) -> Session:
        return cls(
            sid=secrets.token_urlsafe(16),
            login=login,
            token=token,
            csrf=secrets.token_urlsafe(24),
            issued_at=time.time() if now is None else now,
        )

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            presented.encode("utf-8", "surrogateescape"), self.csrf.encode()
        )


class Sealer:
    """Seals and opens cookie values; `purpose` keeps a state cookie from passing as a
    session (it is the AEAD's associated data)."""

    def __init__(self, secret: str) -> None:
        key = hmac.new(secret.encode(), b"mergequeue dashboard cookies v1", hashlib.sha256)
        self._aead = AESGCM(key.digest())

    def seal(self, purpose: str, data: dict[str, Any]) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, json.dumps(data).encode(), purpose.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, purpose: str, value: str | None) -> dict[str, Any] | None:
        if not value or len(value) > 4096:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], purpose.encode())
            data = json.loads(plain)
        except (binascii.Error, ValueError, InvalidTag):
            return None
        return data if isinstance(data, dict) else None


class Sessions:
    def __init__(self, secret: str) -> None:
        self._sealer = Sealer(secret)

    def read(self, request: Request, now: float | None = None) -> Session | None:
        data = self._sealer.open(SESSION_COOKIE, request.cookies.get(SESSION_COOKIE))
        if data is None:
            return None
        try:
            session = Session(**data)
        except TypeError:
            return None
        now = time.time() if now is None else now
        if not 0 <= now - session.issued_at <= SESSION_MAX_AGE:
            return None
        return session

    def write(self, request: Request, response: Response, session: Session) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            self._sealer.seal(SESSION_COOKIE, asdict(session)),
            max_age=SESSION_MAX_AGE,
            path="/",
            secure=_https(request),
            httponly=True,
            samesite="lax",
        )

    def clear(self, request: Request, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE, path="/", secure=_https(request), httponly=True, samesite="lax"
        )

    @staticmethod
    def new_state() -> str:
        return secrets.token_urlsafe(24)

    def remember_state(self, request: Request, response: Response, state: str) -> None:
        """The `state` sent to GitHub's authorize page, kept in a cookie for the callback."""
        response.set_cookie(
            STATE_COOKIE,
            self._sealer.seal(STATE_COOKIE, {"state": state, "at": time.time()}),
            max_age=STATE_MAX_AGE,
            path="/",
            secure=_https(request),
            httponly=True,
            # Lax: the cookie comes back on GitHub's top-level redirect to the callback.
            samesite="lax",
        )

    def state_matches(self, request: Request, presented: str | None) -> bool:
        data = self._sealer.open(STATE_COOKIE, request.cookies.get(STATE_COOKIE))
        if data is None or presented is None:
            return False
        expected, at = data.get("state"), data.get("at")
        if not isinstance(expected, str) or not isinstance(at, int | float):
            return False
        if not 0 <= time.time() - at <= STATE_MAX_AGE:
            return False
        return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected.encode())

    def end_sign_in(self, request: Request, response: Response) -> None:
        response.delete_cookie(
            STATE_COOKIE, path="/", secure=_https(request), httponly=True, samesite="lax"
        )


def _https(request: Request) -> bool:
    # uvicorn sets the scheme from X-Forwarded-Proto for --forwarded-allow-ips proxies.
    return request.url.scheme == "https"
