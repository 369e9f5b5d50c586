"""Rendering the metrics: content negotiation, multiprocess collection and access checks.

Rendering is synchronous CPU work (a large registry takes a noticeable fraction of a
second), so the web process runs it in a thread and the dedicated listeners serve from
threads of their own: a scrape never stalls the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from observability.exemplars import HTTP_REQUEST_EXEMPLARS

# Served at the Flask-era path on the web process's main port.
WEB_METRICS_PATH = "/debug/metrics"
# Served on the dedicated listeners (worker, and web's WEB_PROMETHEUS_PORT).
LISTENER_METRICS_PATH = "/metrics"
# A render of even a huge registry takes well under a second; a child stuck for longer is
# replaced rather than waited for.
RENDER_TIMEOUT = 10.0
log = logging.getLogger("mergequeue.metrics")

AUTH_CHALLENGE = 'Basic realm="metrics", charset="UTF-8"'


def _registry(multiproc_dir: Path | None) -> CollectorRegistry:
    if multiproc_dir is None:
        return REGISTRY
    # A fresh registry per scrape: MultiProcessCollector reads every process's files.
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(multiproc_dir))  # type: ignore[no-untyped-call]
    return registry


def render(accept: str | None, multiproc_dir: Path | None = None) -> tuple[bytes, str]:
    """The exposition for a scraper sending `accept`, and its content type."""
    encoder, content_type = choose_encoder(accept or "")
    if multiproc_dir is None:  # prometheus_client has no exemplars across processes
        HTTP_REQUEST_EXEMPLARS.flush()
    return encoder(_registry(multiproc_dir)), content_type


class Renderer:
    """Renders a scrape's answer; call it from a thread, never on the event loop.

    In multiprocess mode (PROMETHEUS_MULTIPROC_DIR) the samples are files any process can
    read, so a child process renders them. A thread of the serving process would hold its
    GIL for the whole render (~0.2 s for 20k lines), and every request arriving meanwhile
    would wait for it: the scrape-under-load benchmark measured that. The child is started
    with the renderer and replaced if it dies; a scrape that finds it dead is rendered
    here instead, so scrapes never fail for it. In single-process mode the samples, and
    the request-id exemplars, exist only in this process's memory and are rendered here.
    """

    def __init__(self, multiproc_dir: Path | None) -> None:
        self.multiproc_dir = multiproc_dir
        self._lock = threading.Lock()
        self._child: ProcessPoolExecutor | None = None
        if multiproc_dir is not None:
            self._start_child()

    def __call__(self, accept: str | None) -> tuple[bytes, str]:
        if self.multiproc_dir is None:
            return render(accept)
        child = self._start_child()
        try:
            return child.submit(render, accept, self.multiproc_dir).result(RENDER_TIMEOUT)
        except (BrokenProcessPool, FutureTimeoutError):
            log.warning("metrics render process failed; rendering in-process and replacing it")
            self._replace(child)
            return render(accept, self.multiproc_dir)

    def _start_child(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._child is None:
                # spawn, not fork: a fork of a process running an event loop and threads
                # inherits their locks in whatever state they were.
                self._child = ProcessPoolExecutor(
                    1, mp_context=get_context("spawn"), initializer=_background_priority
                )
                self._child.submit(int)  # start it now, not on the first scrape
            return self._child

    def _replace(self, child: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._child is child:
                self._child = None
        child.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            child.shutdown(wait=True, cancel_futures=True)


def _background_priority() -> None:
    # The child shares the web process's CPU (one core per pod, typically). At the lowest
    # priority the kernel lets a request preempt a render at once, instead of sharing
    # the core with it while the request waits.
    os.nice(19)


def basic_auth_ok(authorization: str | None, expected: tuple[str, str] | None) -> bool:
    """True when no credentials are required, or `authorization` carries the right ones."""
    if expected is None:
        return True
    if not authorization:
        return False
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    user, sep, password = decoded.partition(b":")
    # Compare both parts, always, so timing does not reveal which one was wrong.
    user_ok = hmac.compare_digest(user, expected[0].encode())
    password_ok = hmac.compare_digest(password, expected[1].encode())
    return bool(sep) and user_ok and password_ok
