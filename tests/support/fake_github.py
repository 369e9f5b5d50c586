"""The fake GitHub as a real server process, with a GitHub App key pair for it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.processes import Process, base_env, free_port

APP_ID = 4242


@dataclass
class FakeGitHubServer:
    process: Process
    port: int
    private_key_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def control(self, name: str, /, **arguments: Any) -> Any:
        # `name` is positional-only: controls such as `delay` take a `method` argument.
        response = httpx.post(f"{self.url}/_fake/{name}", json=arguments, timeout=10)
        response.raise_for_status()
        return response.json()["result"]

    def calls(self, route: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = httpx.get(f"{self.url}/_fake/calls", timeout=10).json()
        return [
            c
            for c in found
            if (route is None or c["route"] == route) and (method is None or c["method"] == method)
        ]

    def app_env(self) -> dict[str, str]:
        """The environment a mergequeue process needs to talk to this fake as the App."""
        return {
            "GITHUB_API_URL": self.url,
            "GITHUB_APP_ID": str(APP_ID),
            "GITHUB_APP_PRIVATE_KEY_PATH": str(self.private_key_path),
        }


@pytest.fixture
def fake_github(tmp_path: Path) -> Iterator[FakeGitHubServer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = tmp_path / "app.pem"
    public = tmp_path / "app.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    port = free_port()
    process = Process(
        f"fakegithub:{port}",
        [
            sys.executable,
            "-m",
            "tests.fakegithub",
            "--port",
            str(port),
            "--app-id",
            str(APP_ID),
            "--public-key-file",
            str(public),
        ],
        base_env(),
        tmp_path / "fakegithub.log",
    )
    server = FakeGitHubServer(process, port, private)
    process.wait_http(f"{server.url}/_fake/health")
    yield server
    process.stop()
