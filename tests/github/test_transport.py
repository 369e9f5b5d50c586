"""The instrumented transport: one observation per call, labelled by route template."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import pytest

from mergequeue.github import (
    KNOWN_ROUTES,
    OTHER_ENDPOINT,
    GitHubClient,
    InstrumentedTransport,
    NotFound,
    StaticTokenAuth,
    endpoint_template,
)
from tests.fakegithub import FakeGitHub
from tests.github import openapi
from tests.github.conftest import FULL_NAME, OWNER, REPO, STATIC_TOKEN, Observed


async def test_endpoint_label_is_the_route_template(
    gh: GitHubClient, fake: FakeGitHub, observed: Observed
) -> None:
    pr = fake.add_pull(full_name=FULL_NAME, labels=["x"])
    await gh.get_pull_request(owner=OWNER, repo=REPO, number=1)
    await gh.list_check_runs(owner=OWNER, repo=REPO, ref=pr["head_sha"])
    await gh.remove_label(owner=OWNER, repo=REPO, number=1, label="x")
    with pytest.raises(NotFound):
        await gh.get_pull_request(owner=OWNER, repo=REPO, number=404)
    assert observed.labels() == [
        ("POST", "/app/installations/{installation_id}/access_tokens", "201"),
        ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", "200"),
        ("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs", "200"),
        ("DELETE", "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}", "200"),
        ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", "404"),
    ]
    assert all(seconds >= 0 for *_, seconds in observed.calls)


def _strip_prefix(app: Any, prefix: str) -> Callable[..., Awaitable[None]]:
    """GitHub Enterprise Server serves the API under /api/v3."""

    async def asgi(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        scope = dict(scope)
        scope["path"] = scope["path"].removeprefix(prefix)
        scope["raw_path"] = scope["path"].encode()
        await app(scope, receive, send)

    return asgi


async def test_enterprise_server_base_path(fake: FakeGitHub, observed: Observed) -> None:
    fake.add_pull(full_name=FULL_NAME)
    client = GitHubClient(
        auth=StaticTokenAuth(STATIC_TOKEN),
        base_url="https://ghe.example.com/api/v3/",
        transport=httpx.ASGITransport(app=_strip_prefix(fake.asgi, "/api/v3")),
        observe_call=observed.call,
    )
    async with client:
        assert (await client.get_pull_request(owner=OWNER, repo=REPO, number=1)).number == 1
    assert observed.labels() == [("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", "200")]


@pytest.mark.parametrize(
    ("path", "base", "expected"),
    [
        ("/repos/o/r/pulls/12", "", "/repos/{owner}/{repo}/pulls/{pull_number}"),
        ("/repos/o/r/pulls/12/", "", "/repos/{owner}/{repo}/pulls/{pull_number}"),
        ("/repos/o/r/pulls/12/merge", "", "/repos/{owner}/{repo}/pulls/{pull_number}/merge"),
        (
            "/repos/o/r/commits/abc/check-runs?per_page=100&page=2",
            "",
            "/repos/{owner}/{repo}/commits/{ref}/check-runs",
        ),
        (
            "/repos/o/r/branches/release%2F1.x/protection/required_status_checks",
            "",
            "/repos/{owner}/{repo}/branches/{branch}/protection/required_status_checks",
        ),
        ("/repos/o/r/branches/release%2F1.x", "", "/repos/{owner}/{repo}/branches/{branch}"),
        (
            "/repos/o/r/issues/comments/5",
            "",
            "/repos/{owner}/{repo}/issues/comments/{comment_id}",
        ),
        ("/repos/o/r/issues/5", "", "/repos/{owner}/{repo}/issues/{issue_number}"),
        ("/api/v3/repos/o/r/pulls/1", "/api/v3", "/repos/{owner}/{repo}/pulls/{pull_number}"),
        ("/repos/o/r/pulls/1", "/api/v3", OTHER_ENDPOINT),
        ("/repos/o/r/pulls/1/what/ever", "", OTHER_ENDPOINT),
        ("/../../etc/passwd", "", OTHER_ENDPOINT),
        ("/", "", OTHER_ENDPOINT),
    ],
)
def test_endpoint_template(path: str, base: str, expected: str) -> None:
    assert endpoint_template(path, base) == expected


@pytest.mark.parametrize("template", KNOWN_ROUTES)
def test_known_routes_are_github_routes(template: str) -> None:
    assert template in openapi.spec()["paths"]


async def test_observation_waits_for_the_body(observed: Observed) -> None:
    """The measured time ends when the body has been read, not at the headers."""

    class SlowBody(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            import asyncio

            yield b'{"message": '
            await asyncio.sleep(0.1)
            yield b'"x"}'

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=SlowBody())

    transport = InstrumentedTransport(httpx.MockTransport(handler), observe_call=observed.call)
    async with httpx.AsyncClient(transport=transport) as http:
        response = await http.get("https://api.github.com/rate_limit")
    assert response.json() == {"message": "x"}
    ((method, endpoint, status, seconds),) = observed.calls
    assert (method, endpoint, status) == ("GET", "/rate_limit", "200")
    assert seconds >= 0.1


async def test_failure_while_reading_the_body_is_an_error(observed: Observed) -> None:
    class BrokenBody(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            yield b"{"
            raise httpx.ReadError("connection reset")

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=BrokenBody())

    transport = InstrumentedTransport(httpx.MockTransport(handler), observe_call=observed.call)
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(httpx.ReadError):
            await http.get("https://api.github.com/repos/o/r")
    assert observed.labels() == [("GET", "/repos/{owner}/{repo}", "error")]


async def test_a_failing_observer_does_not_fail_the_call(
    fake: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise ValueError("bad label")

    client = GitHubClient(
        auth=StaticTokenAuth(STATIC_TOKEN),
        transport=httpx.ASGITransport(app=fake.asgi),
        observe_call=broken,
        observe_rate_limit=broken,
    )
    async with client:
        assert (await client.get_branch(owner=OWNER, repo=REPO, branch="main")).name == "main"
    assert "observer" in caplog.text
