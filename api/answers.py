"""A JSON error answer sent from pure-ASGI middleware (before any route or FastAPI)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.types import Send


async def send_error(
    send: Send, status: int, detail: str, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """`{"detail": ...}` with `status`, as the API's own errors look."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
