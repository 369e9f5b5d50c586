"""An httpx transport that measures every GitHub call, including the ones that fail.

httpx's response event hooks never run for timeouts or connection errors, so the timing
lives here, in a try/finally around the inner transport. The observation ends when the
response body has been read (or failed), not when the headers arrive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Final

import httpx

from mergequeue.github.routes import endpoint_template

__all__ = [
    "INSTALLATION_KEY_EXTENSION",
    "CallObserver",
    "InstrumentedTransport",
    "RateLimitObserver",
]

# (method, endpoint template, status or "timeout"/"error", seconds)
CallObserver = Callable[[str, str, str, float], None]
# (installation key, remaining, reset as Unix time)
RateLimitObserver = Callable[[str, int, int], None]

# The client tags each request with whose quota it spends (an installation id, "app" for
# JWT calls, "token" for a static token); the rate-limit observer is told that key.
INSTALLATION_KEY_EXTENSION: Final = "mergequeue.installation_key"

STATUS_TIMEOUT: Final = "timeout"
STATUS_ERROR: Final = "error"

logger = logging.getLogger(__name__)


def _notify(observer: Callable[..., None], *args: object) -> None:
    # A broken metric must not fail (or, worse, retry) a merge: log it and carry on.
    try:
        observer(*args)
    except Exception:
        logger.exception("GitHub call observer %r failed", observer)


def _failure_status(exc: BaseException) -> str:
    return STATUS_TIMEOUT if isinstance(exc, httpx.TimeoutException) else STATUS_ERROR


class _Observation:
    """Reports one call exactly once, whichever of the phases ends it."""

    def __init__(
        self, observe: CallObserver | None, method: str, endpoint: str, start: float
    ) -> None:
        self._observe = observe
        self._method = method
        self._endpoint = endpoint
        self._start = start
        self._done = False

    def finish(self, status: str) -> None:
        if self._done:
            return
        self._done = True
        if self._observe is not None:
            elapsed = time.perf_counter() - self._start
            _notify(self._observe, self._method, self._endpoint, status, elapsed)


class _ObservedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, obs: _Observation, status: str) -> None:
        self._inner = inner
        self._obs = obs
        self._status = status

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except GeneratorExit:
            # The reader stopped early: not a failure of the call.
            raise
        except BaseException as exc:
            self._status = _failure_status(exc)
            raise

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._obs.finish(self._status)


class InstrumentedTransport(httpx.AsyncBaseTransport):
    """Wraps `inner`, reporting each call to `observe_call` and rate-limit headers to
    `observe_rate_limit`.

    `deadline` bounds the wait for the response headers as a whole (httpx's own timeouts
    are per network operation, and in-process ASGI transports apply none); when it passes
    the call fails with `httpx.ReadTimeout`.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        observe_call: CallObserver | None = None,
        observe_rate_limit: RateLimitObserver | None = None,
        base_path: str = "",
        deadline: float | None = None,
    ) -> None:
        self._inner = inner
        self._observe_call = observe_call
        self._observe_rate_limit = observe_rate_limit
        self._base_path = base_path
        self._deadline = deadline

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raw_path = request.url.raw_path.decode("ascii", errors="replace")
        endpoint = endpoint_template(raw_path, self._base_path)
        obs = _Observation(self._observe_call, request.method, endpoint, time.perf_counter())
        status = STATUS_ERROR
        try:
            response = await self._send(request)
            status = str(response.status_code)
        except BaseException as exc:
            obs.finish(_failure_status(exc))
            raise
        self._report_rate_limit(request, response)
        response.stream = _ObservedStream(_as_async_stream(response), obs, status)
        return response

    async def _send(self, request: httpx.Request) -> httpx.Response:
        if self._deadline is None:
            return await self._inner.handle_async_request(request)
        try:
            async with asyncio.timeout(self._deadline):
                return await self._inner.handle_async_request(request)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(
                f"no answer within {self._deadline:g} s", request=request
            ) from exc

    def _report_rate_limit(self, request: httpx.Request, response: httpx.Response) -> None:
        # A refused credential is answered with the anonymous quota, not the caller's.
        if self._observe_rate_limit is None or response.status_code == 401:
            return
        remaining = response.headers.get("x-ratelimit-remaining")
        reset = response.headers.get("x-ratelimit-reset")
        if remaining is None or reset is None:
            return
        try:
            remaining_n, reset_n = int(remaining), int(reset)
        except ValueError:
            return
        key = request.extensions.get(INSTALLATION_KEY_EXTENSION, "unknown")
        _notify(self._observe_rate_limit, str(key), remaining_n, reset_n)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _as_async_stream(response: httpx.Response) -> httpx.AsyncByteStream:
    stream = response.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        raise TypeError("InstrumentedTransport needs an async inner transport")
    return stream
