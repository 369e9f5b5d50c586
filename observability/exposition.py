"""Rendering the metrics: content negotiation, multiprocess collection and access checks.

Rendering is synchronous CPU work (a large registry takes a noticeable fraction of a
second), so it never runs on the event loop, nor holds the GIL of a process serving
requests: see `Renderer`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hmac
import logging
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

from observability.exemplars import HTTP_REQUEST_EXEMPLARS
from observability.file_samples import CachedFileCollector
from observability.mirror import Copy, LayoutMissing, RegistryCopier, render_copy
from observability.parent_watch import die_with_parent
from observability.priority import background_priority

# Served at the Flask-era path on the web process's main port.
WEB_METRICS_PATH = "/debug/metrics"
# Served on the dedicated listeners (worker, and web's WEB_PROMETHEUS_PORT).
LISTENER_METRICS_PATH = "/metrics"
# A render of even a huge registry takes well under a second; a child stuck for longer is
# replaced rather than waited for.
RENDER_TIMEOUT = 10.0
log = logging.getLogger("mergequeue.metrics")

AUTH_CHALLENGE = 'Basic realm="metrics", charset="UTF-8"'


# The render child lives as long as the serving process and scrapes the same directory
# over and over: its collector keeps what it parsed of the files from one scrape to the next.
_COLLECTORS: dict[Path, CachedFileCollector] = {}


def _registry(multiproc_dir: Path | None) -> CollectorRegistry:
    if multiproc_dir is None:
        return REGISTRY
    collector = _COLLECTORS.get(multiproc_dir)
    if collector is None:
        collector = _COLLECTORS.setdefault(multiproc_dir, CachedFileCollector(str(multiproc_dir)))
    registry = CollectorRegistry()
    registry.register(collector)
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
    scrape-under-load benchmark measured. So a long-lived child process renders, spawned
    at the lowest CPU priority and replaced if it dies or hangs:

    - multiprocess mode (PROMETHEUS_MULTIPROC_DIR): the samples are files the child reads.
    - single-process mode: the samples and the request-id exemplars exist only in this
      process's memory; they are copied on the event loop, a slice at a time, and the
      child renders the copy (`observability.mirror`). Without a loop, it renders here.

    When the child fails, the scrape is rendered here instead: scrapes never fail for it.
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
        self._copier = RegistryCopier()
        # The child that holds a mirror of the registry, and of which layout version.
        self._mirrored: tuple[ProcessPoolExecutor, int] | None = None
        # Renders of a copy under way, by content type; touched on the loop only.
        self._copying: dict[str, asyncio.Future[tuple[bytes, str]]] = {}
        if multiproc_dir is not None or loop is not None:
            self._start_child()

    @property
    def copies(self) -> bool:
        """Whether scrapes are rendered from a copy of this process's values."""
        return self.multiproc_dir is None and self._loop is not None

    async def on_loop(self, accept: str | None) -> tuple[bytes, str]:
        if not self.copies:
            return await asyncio.to_thread(self._render_elsewhere, accept)
        _, content_type = choose_encoder(accept or "")
        # Scrapes arriving while a render of the same format is under way share it: a
        # flood of scrapes costs one copy at a time, not one each.
        shared = self._copying.get(content_type)
        if shared is None:
            shared = self._copying[content_type] = asyncio.ensure_future(
                self._copy_and_render(accept, content_type)
            )
            shared.add_done_callback(lambda done: self._forget(content_type, done))
        # shield: one scraper hanging up does not cancel the render the others wait for.
        return await asyncio.shield(shared)

    def _forget(self, content_type: str, render: asyncio.Future[tuple[bytes, str]]) -> None:
        if self._copying.get(content_type) is render:
            del self._copying[content_type]

    async def _copy_and_render(self, accept: str | None, content_type: str) -> tuple[bytes, str]:
        HTTP_REQUEST_EXEMPLARS.flush()
        copy = await self._copier.copy()
        child = self._start_child()
        try:
            body = await self._render_copy(child, accept, copy)
        except (BrokenProcessPool, TimeoutError) as exc:
            reason = "took too long" if isinstance(exc, TimeoutError) else "died"
            log.warning("metrics render process %s; rendering in-process, replacing it", reason)
            self._replace(child)
            return await asyncio.to_thread(render, accept)
        return body, content_type

    async def _render_copy(
        self, child: ProcessPoolExecutor, accept: str | None, copy: Copy
    ) -> bytes:
        async def submit(copy: Copy) -> bytes:
            future = asyncio.wrap_future(child.submit(render_copy, accept, copy))
            return await asyncio.wait_for(future, self.timeout)

        # The layout is sent only to a child that does not have it yet.
        if self._mirrored == (child, copy.version):
            try:
                return await submit(dataclasses.replace(copy, layout=None))
            except LayoutMissing:
                pass
        body = await submit(copy)
        self._mirrored = (child, copy.version)
        return body

    def from_thread(self, accept: str | None) -> tuple[bytes, str]:
        loop = self._loop
        if not self.copies or loop is None or not loop.is_running():
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
                # spawn, not fork: a fork copies every page of this process, and from a
                # thread it inherits the event loop's and other threads' locks in whatever
                # state they were.
                self._child = ProcessPoolExecutor(
                    1, mp_context=get_context("spawn"), initializer=_start_render_child
                )
                self._child.submit(int)  # start it now, not on the first scrape
            return self._child

    def _replace(self, child: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._child is child:
                self._child = None
        _kill(child)

    def close(self) -> None:
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            child.shutdown(wait=True, cancel_futures=True)


def _start_render_child() -> None:
    die_with_parent()
    background_priority()
    # A Ctrl-C in a terminal reaches the whole process group: the serving process shuts
    # its render child down itself, and answers scrapes until then.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _kill(child: ProcessPoolExecutor) -> None:
    """Stop a child that failed: shutdown() alone waits on a hung one forever."""
    # The executor's own map of its worker processes; it has no public way to kill them.
    processes = list((getattr(child, "_processes", None) or {}).values())
    child.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.kill()
        process.join(5)


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
