"""Pure-ASGI gate for the token-protected API: authenticate, then read a capped body.

FastAPI reads and parses a request's body before it resolves any dependency, the token
check included: an anonymous client could make the process parse hundreds of megabytes
before its 401. Here the token is checked from the headers first, and only then is the
body read, up to the route's cap (refused with 413 from `Content-Length`, or as soon as a
streamed body passes it), then handed to the application. The dashboard's forms (POSTs
outside the API) are capped the same way, at 4 KiB, without a token: their session and
CSRF token are checked by the page itself (`api.pages`). Everything else passes through.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.answers import send_error
from api.deps import token_refusal
from mergequeue.settings import Settings

# (path prefix, largest body accepted). REST bodies are a pull request number or a few
# settings (50 check names at most); GraphQL's own cap is the documented 256 KiB.
REST_PREFIX = "/api/v1/"
GRAPHQL_PATH = "/graphql"
MAX_REST_BODY_BYTES = 64 * 1024
MAX_GRAPHQL_BODY_BYTES = 256 * 1024
# A dashboard form holds a CSRF token and nothing else of size.
MAX_FORM_BODY_BYTES = 4 * 1024
WEBHOOK_PATH = "/api/webhook"


def body_cap(method: str, path: str) -> int | None:
    """The body cap of a token-protected request; None for every other request. Only
    POST is served at /graphql: other methods go on to the router's 405."""
    if path.startswith(REST_PREFIX):
        return MAX_REST_BODY_BYTES
    if path == GRAPHQL_PATH and method == "POST":
        return MAX_GRAPHQL_BODY_BYTES
    return None


def form_cap(method: str, path: str) -> int | None:
    """The body cap of a dashboard form: any body-carrying request that is neither the
    API nor the webhook (whose own 25 MiB cap comes before its signature check)."""
    if method in ("GET", "HEAD", "OPTIONS") or path == WEBHOOK_PATH:
        return None
    if path.startswith(REST_PREFIX) or path == GRAPHQL_PATH:
        return None
    return MAX_FORM_BODY_BYTES


class ApiGate:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api_cap = body_cap(scope["method"], scope["path"])
        cap = api_cap if api_cap is not None else form_cap(scope["method"], scope["path"])
        if cap is None:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope["headers"])
        if api_cap is not None:
            refusal = token_refusal(self.settings, headers.get("authorization"))
            if refusal is not None:
                await send_error(send, 401, refusal, [(b"www-authenticate", b"Bearer")])
                return
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            await send_error(send, 413, f"request body over {cap} bytes")
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client went away: let the application see it
            size += len(message.get("body", b""))
            if size > cap:
                await send_error(send, 413, f"request body over {cap} bytes")
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _headers(raw: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}
