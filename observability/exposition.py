"""Rendering the metrics: content negotiation, multiprocess collection and access checks.

Rendering is synchronous CPU work (a large registry takes a noticeable fraction of a
second), so it never runs on the event loop, nor holds the GIL of a process serving
requests: see `Renderer`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
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
from observability.priority import background_priority
from observability.snapshot import SnapshotFailed, fork_render

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
    """Renders a scrape's answer without holding up the event loop.

    A render is pure Python holding the GIL (~0.2 s for 20k lines): in a thread of the
    serving process, every request arriving meanwhile would wait for it, as the
    scrape-under-load benchmark measured. So the render runs in another process at the
    lowest CPU priority:

    - multiprocess mode (PROMETHEUS_MULTIPROC_DIR): the samples are files any process can
      read; a long-lived spawned child renders them, replaced if it dies.
    - single-process mode: the samples and the request-id exemplars exist only in this
      process's memory; a child forked from the event loop renders its copy-on-write
      snapshot (`observability.snapshot`). Without a loop to fork from, it renders here.

    When a child fails, the scrape is rendered here instead: scrapes never fail for it.
    Call `on_loop` from the event loop and `from_thread` from any other thread.
    """

    def __init__(
        self,
        multiproc_dir: Path | None,
        loop: asyncio.AbstractEventLoop | None = None,
        timeout: float = RENDER_TIMEOUT,
    ) -> None:
        self.multiproc_dir = multiproc_dir
        self.timeout = timeout
        self._loop = loop
        self._lock = threading.Lock()
        self._child: ProcessPoolExecutor | None = None
        # Renders under way in forked children, by content type; touched on the loop only.
        self._forked: dict[str, asyncio.Future[tuple[bytes, str]]] = {}
        if multiproc_dir is not None:
            self._start_child()

    @property
    def forks(self) -> bool:
        """Whether scrapes are rendered from a forked snapshot of this process."""
        return self.multiproc_dir is None and self._loop is not None

    async def on_loop(self, accept: str | None) -> tuple[bytes, str]:
        if not self.forks:
            return await asyncio.to_thread(self._render_elsewhere, accept)
        _, content_type = choose_encoder(accept or "")
        # Scrapes arriving while a render of the same format is under way share it: a
        # flood of scrapes costs one fork at a time, not one fork (and child) each.
        shared = self._forked.get(content_type)
        if shared is None:
            shared = self._forked[content_type] = asyncio.ensure_future(
                self._fork_and_render(accept, content_type)
            )
            shared.add_done_callback(lambda done: self._forget(content_type, done))
        # shield: one scraper hanging up does not cancel the render the others wait for.
        return await asyncio.shield(shared)

    def _forget(self, content_type: str, render: asyncio.Future[tuple[bytes, str]]) -> None:
        if self._forked.get(content_type) is render:
            del self._forked[content_type]

    async def _fork_and_render(self, accept: str | None, content_type: str) -> tuple[bytes, str]:
        try:
            child = fork_render(lambda: render(accept)[0], self.timeout)
        except OSError as exc:
            log.warning("metrics render could not fork (%s); rendering in-process", exc)
            return await asyncio.to_thread(render, accept)
        try:
            body = await asyncio.to_thread(child.result, self.timeout)
        except SnapshotFailed as exc:
            log.warning("metrics render child failed (%s); rendering in-process", exc)
            return await asyncio.to_thread(render, accept)
        return body, content_type

    def from_thread(self, accept: str | None) -> tuple[bytes, str]:
        loop = self._loop
        if not self.forks or loop is None or not loop.is_running():
            return self._render_elsewhere(accept)
        try:
            future = asyncio.run_coroutine_threadsafe(self.on_loop(accept), loop)
        except RuntimeError:  # the loop closed meanwhile (shutting down)
            return render(accept)
        try:
            # The child's own timeout, then an in-process render, bound the wait.
            return future.result(2 * self.timeout + 5)
        except FutureTimeoutError:
            future.cancel()
            log.warning("event loop did not start a metrics render; rendering in-process")
            return render(accept)

    def _render_elsewhere(self, accept: str | None) -> tuple[bytes, str]:
        if self.multiproc_dir is None:
            return render(accept)
        child = self._start_child()
        try:
            return child.submit(render, accept, self.multiproc_dir).result(self.timeout)
        except (BrokenProcessPool, FutureTimeoutError):
            log.warning("metrics render process failed; rendering in-process and replacing it")
            self._replace(child)
            return render(accept, self.multiproc_dir)

    def _start_child(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._child is None:
                # spawn, not fork: this child outlives the moment of the fork, and a fork
                # from a thread inherits the event loop's and other threads' locks in
                # whatever state they were.
                self._child = ProcessPoolExecutor(
                    1, mp_context=get_context("spawn"), initializer=background_priority
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
