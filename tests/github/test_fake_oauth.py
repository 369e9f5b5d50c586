"""The fake's OAuth web flow: authorize (for the user a control chose), exchange the code
once, then the user's token reads `/user` and exactly the repositories that user may."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.fakegithub import FakeGitHub

CALLBACK = "https://mq.example.com/oauth/callback"


@pytest.fixture
async def http() -> AsyncIterator[tuple[FakeGitHub, httpx.AsyncClient]]:
    fake = FakeGitHub()
    fake.set_oauth_app(client_id="Iv1.abc", client_secret="s3cret", callback_url=CALLBACK)
    fake.add_repo(full_name="octo/public")
    fake.add_repo(full_name="octo/private", private=True)
    transport = httpx.ASGITransport(app=fake.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="https://github.com") as client:
        yield fake, client


async def sign_in(client: httpx.AsyncClient, state: str = "xyz") -> str:
    answer = await client.get(
        "/login/oauth/authorize", params={"client_id": "Iv1.abc", "state": state}
    )
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(CALLBACK + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    return query["code"][0]


async def test_the_web_flow_gives_a_token_for_the_chosen_user(http: tuple) -> None:
    fake, client = http
    fake.sign_in_as(login="mona")
    code = await sign_in(client)
    exchange = await client.post(
        "/login/oauth/access_token",
        data={"client_id": "Iv1.abc", "client_secret": "s3cret", "code": code},
        headers={"Accept": "application/json"},
    )
    token = exchange.json()["access_token"]
    assert exchange.json()["token_type"] == "bearer"
    user = await client.get("/user", headers={"Authorization": f"Bearer {token}"})
    assert user.json()["login"] == "mona"
    # A code is good once.
    again = await client.post(
        "/login/oauth/access_token",
        data={"client_id": "Iv1.abc", "client_secret": "s3cret", "code": code},
        headers={"Accept": "application/json"},
    )
    assert again.status_code == 200
    assert again.json()["error"] == "bad_verification_code"


async def test_wrong_client_secret_is_an_error_answer(http: tuple) -> None:
    fake, client = http
    fake.sign_in_as(login="mona")
    code = await sign_in(client)
    exchange = await client.post(
        "/login/oauth/access_token",
        data={"client_id": "Iv1.abc", "client_secret": "nope", "code": code},
        headers={"Accept": "application/json"},
    )
    assert exchange.json()["error"] == "incorrect_client_credentials"


async def test_nobody_signed_in_or_unknown_client_is_refused(http: tuple) -> None:
    fake, client = http
    answer = await client.get("/login/oauth/authorize", params={"client_id": "Iv1.abc"})
    assert answer.status_code == 401
    fake.sign_in_as(login="mona")
    answer = await client.get("/login/oauth/authorize", params={"client_id": "other"})
    assert answer.status_code == 404
    answer = await client.get(
        "/login/oauth/authorize",
        params={"client_id": "Iv1.abc", "redirect_uri": "https://evil.example.com/"},
    )
    assert answer.status_code == 400


async def test_repositories_are_visible_per_user(http: tuple) -> None:
    fake, client = http
    fake.set_permission(full_name="octo/private", username="mona", role_name="write")
    mona = {"Authorization": f"Bearer {fake.user_token(login='mona')}"}
    stranger = {"Authorization": f"Bearer {fake.user_token(login='stranger')}"}
    assert (await client.get("/repos/octo/private", headers=mona)).json()["permissions"]["push"]
    assert (await client.get("/repos/octo/private", headers=stranger)).status_code == 404
    assert (await client.get("/repos/octo/private/pulls/1", headers=stranger)).status_code == 404
    public = await client.get("/repos/octo/public", headers=stranger)
    assert public.json()["permissions"]["pull"] is True
    assert public.json()["permissions"]["push"] is False
