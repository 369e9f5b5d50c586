"""A dedicated metrics listener: `/metrics` on its own port, served from a thread.

Used by the worker (always, on PROMETHEUS_PORT) and by the web process when
WEB_PROMETHEUS_PORT is set. prometheus_client's start_http_server answers on any path and
has no authentication, hence this small server of our own.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from observability.exposition import (
    AUTH_CHALLENGE,
    LISTENER_METRICS_PATH,
    Renderer,
    basic_auth_ok,
)

log = logging.getLogger("mergequeue.metrics")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], reuse_port: bool) -> None:
        self._reuse_port = reuse_port
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        if self._reuse_port:
            # Every `uvicorn --workers N` process binds the same port; the kernel spreads
            # scrapes among them, and in multiprocess mode each answer covers all of them.
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class _Handler(BaseHTTPRequestHandler):
    server_version = "mergequeue-metrics"
    protocol_version = "HTTP/1.1"
    credentials: ClassVar[tuple[str, str] | None] = None
    renderer: ClassVar[Renderer]

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def _serve(self, *, with_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path != LISTENER_METRICS_PATH:
            self._plain(404, b"Not Found\n", with_body)
            return
        settings = self.server_settings()
        if not basic_auth_ok(self.headers.get("Authorization"), settings.credentials):
            self._plain(401, b"Unauthorized\n", with_body, challenge=True)
            return
        try:
            body, content_type = settings.renderer.from_thread(self.headers.get("Accept"))
        except Exception:
            log.exception("rendering metrics failed")
            self._plain(500, b"Internal Server Error\n", with_body)
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def server_settings(self) -> type[_Handler]:
        return type(self)

    def _plain(self, status: int, body: bytes, with_body: bool, challenge: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if challenge:
            self.send_header("WWW-Authenticate", AUTH_CHALLENGE)
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Scrapes every few seconds would drown the logs; failures are logged above.
        pass


class MetricsListener:
    """Serves `/metrics` from a daemon thread until `stop()`."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        credentials: tuple[str, str] | None,
        renderer: Renderer | None = None,
        reuse_port: bool = False,
    ) -> None:
        handler = type(
            "MetricsHandler",
            (_Handler,),
            {"credentials": credentials, "renderer": renderer or Renderer(None)},
        )
        self._server = _Server((host, port), reuse_port)
        self._server.RequestHandlerClass = handler
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"metrics-listener:{port}", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info("metrics listener started", extra={"port": self.port})

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
