"""A fake GitHub REST API for tests: in-process (`httpx.ASGITransport(fake.asgi)`) or as a
server process (`python -m tests.fakegithub --port N`, driven through `/_fake/...`)."""

from tests.fakegithub.state import ApiError, Call, FakeGitHub, fake_sha

__all__ = ["ApiError", "Call", "FakeGitHub", "fake_sha"]
