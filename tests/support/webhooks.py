"""Signing and sending GitHub webhook deliveries the way GitHub does."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
SECRET = "webhook-secret-for-tests"


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


def fixture_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.json"))


def event_of(fixture_name: str) -> str:
    return fixture_name.split(".", 1)[0]


def json_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(
    event: str, body: bytes, delivery: str | None = None, secret: str = SECRET
) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(body, secret),
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
    }


def deliver(
    base_url: str,
    event: str,
    payload: dict[str, Any] | bytes,
    delivery: str | None = None,
    secret: str = SECRET,
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return httpx.post(
        base_url + "/api/webhook",
        content=body,
        headers=headers(event, body, delivery, secret),
        timeout=15,
    )
