"""Fixtures for the GitHub client tests: an App key pair, a seeded fake, clients on it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mergequeue.github import AppAuth, GitHubClient
from tests.fakegithub import FakeGitHub

APP_ID = 4242
INSTALLATION_ID = 5
OWNER, REPO = "octo", "hello"
FULL_NAME = f"{OWNER}/{REPO}"
OTHER_REPO = "octo/secret"  # exists, but the installation cannot see it
INSTALLATION_TOKEN = "ghs_installationtoken"
STATIC_TOKEN = "ghp_statictoken"
BASE_URL = "https://api.github.com"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_pem: str


@pytest.fixture(scope="session")
def app_keys() -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return KeyPair(private_pem, public_pem)


def seed(fake: FakeGitHub, public_pem: str) -> None:
    fake.set_app(app_id=APP_ID, public_key=public_pem)
    fake.add_repo(full_name=FULL_NAME)
    fake.add_repo(full_name=OTHER_REPO)
    fake.add_installation(installation_id=INSTALLATION_ID, account=OWNER, repositories=[FULL_NAME])
    fake.add_token(token=INSTALLATION_TOKEN, installation_id=INSTALLATION_ID)
    fake.add_token(token=STATIC_TOKEN)


@pytest.fixture
def fake(app_keys: KeyPair) -> FakeGitHub:
    fake = FakeGitHub()
    seed(fake, app_keys.public_pem)
    return fake


@dataclass
class Observed:
    """What the client's observers were told."""

    calls: list[tuple[str, str, str, float]] = field(default_factory=list)
    limits: list[tuple[str, int, int]] = field(default_factory=list)

    def call(self, method: str, endpoint: str, status: str, seconds: float) -> None:
        self.calls.append((method, endpoint, status, seconds))

    def limit(self, key: str, remaining: int, reset: int) -> None:
        self.limits.append((key, remaining, reset))

    def labels(self) -> list[tuple[str, str, str]]:
        return [(m, e, s) for m, e, s, _ in self.calls]


@pytest.fixture
def observed() -> Observed:
    return Observed()


async def _no_sleep(seconds: float) -> None:
    return None


def make_client(
    fake: FakeGitHub, app_keys: KeyPair, observed: Observed, **kwargs: object
) -> GitHubClient:
    options: dict[str, object] = {
        "auth": AppAuth(app_id=APP_ID, private_key=app_keys.private_pem),
        "base_url": BASE_URL,
        "transport": httpx.ASGITransport(app=fake.asgi),
        "observe_call": observed.call,
        "observe_rate_limit": observed.limit,
        "sleep": _no_sleep,
        "timeout": 5.0,
    }
    options.update(kwargs)
    return GitHubClient(**options)  # type: ignore[arg-type]


@pytest.fixture
async def app_client(
    fake: FakeGitHub, app_keys: KeyPair, observed: Observed
) -> AsyncIterator[GitHubClient]:
    client = make_client(fake, app_keys, observed)
    yield client
    await client.aclose()


@pytest.fixture
def gh(app_client: GitHubClient) -> GitHubClient:
    """The App client bound to the seeded installation."""
    return app_client.for_installation(INSTALLATION_ID)
