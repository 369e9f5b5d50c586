"""What an incoming-webhook URL must look like, for NOTIFY_WEBHOOK_URL and a
repository's `notify_webhook_url` alike (no imports from the rest of mergequeue)."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

MAX_URL_LENGTH: Final = 2048


def check_webhook_url(value: str) -> str:
    """The URL, trimmed; ValueError saying what is wrong (never quoting the URL, whose path
    is a secret for Slack)."""
    url = value.strip()
    if not url:
        raise ValueError("must not be empty")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError("must not hold spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("must be an http:// or https:// URL with a host") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    del port
    return url


def host_of(url: str) -> str:
    """The host (and port) of a URL: all that may be logged of it."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "?"
