"""Pure-ASGI middleware: requests whose `Host` is not in ALLOWED_HOSTS answer 400.

Like Starlette's TrustedHostMiddleware, without its redirect to `www.`: nothing in this
application builds a URL from the `Host` header (redirects are off, see `api.app`), and
this check keeps it so should a redirect ever appear. `*` allows every host (the
default); `*.example.com` allows its subdomains.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from api.answers import send_error

_DETAIL = "invalid Host header: not in ALLOWED_HOSTS"


class TrustedHosts:
    def __init__(self, app: ASGIApp, *, allowed: Sequence[str]) -> None:
        self.app = app
        self.exact = frozenset(h.lower() for h in allowed if not h.startswith("*."))
        self.suffixes = tuple(h[1:].lower() for h in allowed if h.startswith("*."))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self._allowed(scope):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await send_error(send, 400, _DETAIL)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        host = ""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1").lower()
                break
        # Without the port; an IPv6 literal keeps its brackets.
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 or "]:" in host else host
        return host in self.exact or (bool(host) and host.endswith(self.suffixes))
