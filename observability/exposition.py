"""Rendering the metrics: content negotiation, multiprocess collection and access checks.

Rendering is synchronous CPU work (a large registry takes a noticeable fraction of a
second), so the web process runs it in a thread and the dedicated listeners serve from
threads of their own: a scrape never stalls the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

# Served at the Flask-era path on the web process's main port.
WEB_METRICS_PATH = "/debug/metrics"
# Served on the dedicated listeners (worker, and web's WEB_PROMETHEUS_PORT).
LISTENER_METRICS_PATH = "/metrics"
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
    return encoder(_registry(multiproc_dir)), content_type


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
