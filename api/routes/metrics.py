"""`GET /debug/metrics`: the Flask-era exposition path on the main port.

Registered only when SERVE_PROMETHEUS_ENDPOINT is on (otherwise the path is a plain
404), at exactly this path (a mount would redirect). Rendering runs in a child process at
the lowest CPU priority, never on the event loop: see `Renderer`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import SettingsDep
from observability.exposition import AUTH_CHALLENGE, WEB_METRICS_PATH, Renderer, basic_auth_ok

router = APIRouter()


@router.get(WEB_METRICS_PATH, include_in_schema=False)
async def metrics(request: Request, settings: SettingsDep) -> Response:
    if not basic_auth_ok(request.headers.get("authorization"), settings.basic_auth):
        return Response(
            "Unauthorized\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": AUTH_CHALLENGE},
        )
    renderer: Renderer = request.app.state.renderer
    body, content_type = await renderer.on_loop(request.headers.get("accept"))
    return Response(body, media_type=None, headers={"Content-Type": content_type})
