"""A dedicated metrics listener: `/metrics` on its own port, served from a thread.

Used by the worker (always, on PROMETHEUS_PORT) and by the web process when
WEB_PROMETHEUS_PORT is set. prometheus_client's start_http_server answers on any path and
has no authentication, hence this small server of our own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from observability.exposition import (
    AUTH_CHALLENGE,
    LISTENER_METRICS_PATH,
    Renderer,
    basic_auth_ok,
)

log = logging.getLogger("mergequeue.metrics")

# Served without credentials when the process gives a health report (the worker).
HEALTH_PATH = "/healthz"
# Connections served at once, each by its own thread; more are answered 503 and closed
# at once, without a thread. Prometheus holds one per target.
MAX_CONNECTIONS = 32
# A client has this long to send a request's line and headers (from connecting, or from
# its previous answer on a kept-alive connection); then it is dropped. Prometheus sends
# its request the moment it connects.
HEADER_TIMEOUT = 3.0
# Any single read or write of an answer's socket that stalls this long ends the
# connection (a scraper that stopped reading).
SOCKET_TIMEOUT = 10.0
# At most one log line per this many seconds about refused or dropped connections.
LOG_EVERY = 60.0
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 5\r\nConnection: close\r\n\r\nBusy\n"
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], reuse_port: bool) -> None:
        self._reuse_port = reuse_port
        self._lock = threading.Lock()
        self._active = 0
        # Sockets still waiting for a request head, and when they must have sent it.
        self._deadlines: dict[socket.socket, float] = {}
        self._stopped = threading.Event()
        self._refused = 0
        self._dropped = 0
        self._logged_at = 0.0
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            busy = self._active >= MAX_CONNECTIONS
            if not busy:
                self._active += 1
                self._deadlines[request] = time.monotonic() + HEADER_TIMEOUT
            else:
                self._refused += 1
        if busy:
            # A fresh socket's send buffer is empty: this never blocks the accept loop.
            try:
                request.setblocking(False)
                request.send(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            self._log_trouble()
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._active -= 1
                self._deadlines.pop(request, None)

    def awaiting_head(self, request: socket.socket, waiting: bool) -> None:
        with self._lock:
            if waiting:
                self._deadlines[request] = time.monotonic() + HEADER_TIMEOUT
            else:
                self._deadlines.pop(request, None)

    def watch_deadlines(self) -> None:
        """One thread for every connection: drop those that missed their deadline."""
        while not self._stopped.wait(0.2):
            now = time.monotonic()
            with self._lock:
                late = [sock for sock, deadline in self._deadlines.items() if deadline < now]
                for sock in late:
                    del self._deadlines[sock]
                self._dropped += len(late)
            for sock in late:
                # Wakes the connection's thread from its read with end-of-file.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            if late:
                self._log_trouble()

    def stop_watching(self) -> None:
        self._stopped.set()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr for every failed connection (a client
        # hanging up mid-answer, a dropped slow client): not an error of ours, and
        # thousands of them drowned the logs. Counted into the periodic line instead.
        with self._lock:
            self._dropped += 1

    def _log_trouble(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._logged_at < LOG_EVERY:
                return
            self._logged_at = now
            refused, dropped = self._refused, self._dropped
        log.warning(
            "metrics listener refusing or dropping connections",
            extra={
                "refused_busy_total": refused,
                "dropped_total": dropped,
                "max_connections": MAX_CONNECTIONS,
                "header_timeout_seconds": HEADER_TIMEOUT,
            },
        )

    def server_bind(self) -> None:
        if self._reuse_port:
            # Every `uvicorn --workers N` process binds the same port; the kernel spreads
            # scrapes among them, and in multiprocess mode each answer covers all of them.
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class _Handler(BaseHTTPRequestHandler):
    server_version = "mergequeue-metrics"
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT
    credentials: ClassVar[tuple[str, str] | None] = None
    renderer: ClassVar[Renderer]
    health: ClassVar[Callable[[], tuple[int, dict[str, Any]]] | None] = None
    server: _Server

    def handle_one_request(self) -> None:
        # Waiting for a request head: the watchdog drops the connection past its deadline.
        self.server.awaiting_head(self.connection, True)
        super().handle_one_request()

    def parse_request(self) -> bool:
        parsed = super().parse_request()  # reads the headers, still under the deadline
        # The head is in: answering is bounded by the render's own timeouts instead.
        self.server.awaiting_head(self.connection, False)
        return parsed

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def _serve(self, *, with_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        settings = self.server_settings()
        if path == HEALTH_PATH and settings.health is not None:
            # Liveness, like the web's /healthz: no credentials, nothing stored revealed.
            status, report = settings.health()
            self._plain(status, json.dumps(report).encode(), with_body, "application/json")
            return
        if path != LISTENER_METRICS_PATH:
            self._plain(404, b"Not Found\n", with_body)
            return
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

    def _plain(
        self,
        status: int,
        body: bytes,
        with_body: bool,
        content_type: str = "text/plain; charset=utf-8",
        *,
        challenge: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
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
        health: Callable[[], tuple[int, dict[str, Any]]] | None = None,
    ) -> None:
        handler = type(
            "MetricsHandler",
            (_Handler,),
            {
                "credentials": credentials,
                "renderer": renderer or Renderer(None),
                "health": staticmethod(health) if health is not None else None,
            },
        )
        self._server = _Server((host, port), reuse_port)
        self._server.RequestHandlerClass = handler
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"metrics-listener:{port}", daemon=True
        )
        self._watchdog = threading.Thread(
            target=self._server.watch_deadlines, name=f"metrics-deadlines:{port}", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        self._watchdog.start()
        log.info("metrics listener started", extra={"port": self.port})

    def stop(self) -> None:
        self._server.stop_watching()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
