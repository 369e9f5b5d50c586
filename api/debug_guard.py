"""Pure-ASGI middleware: `/debug/*` answers 403 to clients outside DEBUG_ALLOWED_NETWORKS.

The client address is the one uvicorn reports: behind a proxy, start uvicorn with
`--forwarded-allow-ips` so it is the real client's, not the proxy's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from api.answers import send_error
from mergequeue.settings import IPNetwork

_DETAIL = "forbidden: client address not in DEBUG_ALLOWED_NETWORKS"


class DebugNetworkGuard:
    def __init__(self, app: ASGIApp, *, networks: Sequence[IPNetwork]) -> None:
        self.app = app
        self.networks = tuple(networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _is_debug(scope["path"]) and not self._allowed(scope):
            await send_error(send, 403, _DETAIL)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        client = scope.get("client")
        if not client:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def _is_debug(path: str) -> bool:
    return path == "/debug" or path.startswith("/debug/")
