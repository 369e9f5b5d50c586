"""Run the fake GitHub as a server: `python -m tests.fakegithub --port 8765`.

Seed and control it over HTTP: `POST /_fake/<method>` with the method's keyword arguments
as a JSON object (see `FakeGitHub.CONTROL_METHODS`), `GET /_fake/calls`, `GET /_fake/health`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from tests.fakegithub.state import FakeGitHub


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakegithub")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app-id", type=int, help="GitHub App id whose JWTs are accepted")
    parser.add_argument("--public-key-file", type=Path, help="the App's PEM public key")
    parser.add_argument("--token-lifetime", type=float, default=3600.0)
    args = parser.parse_args()
    public_key = args.public_key_file.read_text() if args.public_key_file else None
    fake = FakeGitHub(app_id=args.app_id, public_key=public_key, token_lifetime=args.token_lifetime)
    uvicorn.run(
        fake.asgi,
        host=args.host,
        port=args.port,
        log_level="warning",
        lifespan="off",
        # Hung requests must not hold up the shutdown.
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
