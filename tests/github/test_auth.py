"""GitHub App authentication: JWT claims, installation tokens minted once and reused."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest

from mergequeue.github import (
    AppAuth,
    GitHubClient,
    InstallationToken,
    InstallationTokenCache,
    Unauthorized,
    make_app_jwt,
)
from tests.fakegithub import FakeGitHub
from tests.github.conftest import (
    APP_ID,
    FULL_NAME,
    INSTALLATION_ID,
    OWNER,
    REPO,
    KeyPair,
    Observed,
    make_client,
)

TOKENS = "/app/installations/{installation_id}/access_tokens"


def test_jwt_claims(app_keys: KeyPair) -> None:
    now = int(time.time())
    token = make_app_jwt(app_id=APP_ID, private_key=app_keys.private_pem, now=now)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, app_keys.public_pem, algorithms=["RS256"])
    assert claims == {"iat": now - 60, "exp": now + 540, "iss": str(APP_ID)}
    # GitHub's limit: at most 10 minutes between issue and expiry.
    assert claims["exp"] - claims["iat"] <= 600


async def test_fake_verified_the_jwt(gh: GitHubClient, fake: FakeGitHub) -> None:
    await gh.get_branch(owner=OWNER, repo=REPO, branch="main")
    (mint,) = fake.calls_to(TOKENS)
    assert mint.path == f"/app/installations/{INSTALLATION_ID}/access_tokens"
    assert mint.jwt_claims is not None
    assert mint.jwt_claims["iss"] == str(APP_ID)
    now = time.time()
    assert now - 70 <= mint.jwt_claims["iat"] <= now - 50
    assert now + 8 * 60 <= mint.jwt_claims["exp"] <= now + 10 * 60


async def test_installation_token_minted_once_and_reused(
    gh: GitHubClient, fake: FakeGitHub
) -> None:
    fake.add_pull(full_name=FULL_NAME)
    for _ in range(3):
        await gh.get_pull_request(owner=OWNER, repo=REPO, number=1)
    await asyncio.gather(*(gh.get_branch(owner=OWNER, repo=REPO, branch="main") for _ in range(10)))
    assert fake.minted == 1
    api_calls = [c for c in fake.calls if c.route != TOKENS]
    assert len({c.authorization for c in api_calls}) == 1
    assert api_calls[0].authorization.startswith("Bearer ghs_")  # type: ignore[union-attr]


async def test_concurrent_first_calls_mint_once(
    fake: FakeGitHub, app_keys: KeyPair, observed: Observed
) -> None:
    fake.delay(seconds=0.05, route=TOKENS)
    async with make_client(fake, app_keys, observed) as client:
        gh = client.for_installation(INSTALLATION_ID)
        await asyncio.gather(
            *(gh.get_branch(owner=OWNER, repo=REPO, branch="main") for _ in range(20))
        )
    assert fake.minted == 1


async def test_token_reminted_shortly_before_expiry(
    fake: FakeGitHub, app_keys: KeyPair, observed: Observed
) -> None:
    offset = 0.0
    auth = AppAuth(
        app_id=APP_ID,
        private_key=app_keys.private_pem,
        refresh_margin=300,
        clock=lambda: time.time() + offset,
    )
    async with make_client(fake, app_keys, observed, auth=auth) as client:
        gh = client.for_installation(INSTALLATION_ID)
        await gh.get_branch(owner=OWNER, repo=REPO, branch="main")
        offset = 3600 - 301  # still outside the 5-minute margin: reuse
        await gh.get_branch(owner=OWNER, repo=REPO, branch="main")
        assert fake.minted == 1
        offset = 3600 - 299  # inside the margin: mint a fresh one
        await gh.get_branch(owner=OWNER, repo=REPO, branch="main")
        assert fake.minted == 2
    branch_calls = fake.calls_to("/repos/{owner}/{repo}/branches/{branch}")
    auths = [c.authorization for c in branch_calls]
    assert auths[0] == auths[1] != auths[2]


async def test_revoked_token_is_replaced(gh: GitHubClient, fake: FakeGitHub) -> None:
    await gh.get_branch(owner=OWNER, repo=REPO, branch="main")
    fake.tokens = {t: v for t, v in fake.tokens.items() if v.installation_id is None}
    await gh.get_branch(owner=OWNER, repo=REPO, branch="main")
    assert fake.minted == 2


async def test_installations_have_their_own_tokens(gh: GitHubClient, fake: FakeGitHub) -> None:
    fake.add_installation(installation_id=6, account="other", repositories=["other/repo"])
    other = gh.for_installation(6)
    await other.get_branch(owner="other", repo="repo", branch="main")
    await gh.get_branch(owner=OWNER, repo=REPO, branch="main")
    assert fake.minted == 2


async def test_wrong_app_key_is_unauthorized(
    fake: FakeGitHub, app_keys: KeyPair, observed: Observed
) -> None:
    fake.set_app(app_id=APP_ID + 1, public_key=app_keys.public_pem)
    async with make_client(fake, app_keys, observed) as client:
        with pytest.raises(Unauthorized) as refused:
            await client.for_installation(INSTALLATION_ID).get_branch(
                owner=OWNER, repo=REPO, branch="main"
            )
    assert refused.value.status == 401


async def test_app_calls_need_an_installation(app_client: GitHubClient) -> None:
    with pytest.raises(RuntimeError, match="installation"):
        await app_client.get_branch(owner=OWNER, repo=REPO, branch="main")


async def test_cache_waits_for_one_mint_per_installation() -> None:
    now = [1000.0]
    cache = InstallationTokenCache(refresh_margin=300, clock=lambda: now[0])
    mints: list[int] = []

    def minter(installation_id: int, token: str) -> object:
        async def mint() -> InstallationToken:
            mints.append(installation_id)
            await asyncio.sleep(0.01)
            return InstallationToken(token=token, expires_at=now[0] + 3600)

        return mint

    results = await asyncio.gather(
        *(cache.get(1, minter(1, "a")) for _ in range(5)),  # type: ignore[arg-type]
        *(cache.get(2, minter(2, "b")) for _ in range(5)),  # type: ignore[arg-type]
    )
    assert results == ["a"] * 5 + ["b"] * 5
    assert sorted(mints) == [1, 2]
    cache.invalidate(1, "not-the-cached-one")
    assert await cache.get(1, minter(1, "c")) == "a"  # type: ignore[arg-type]
    cache.invalidate(1, "a")
    assert await cache.get(1, minter(1, "c")) == "c"  # type: ignore[arg-type]


def test_credentials_are_not_printed(app_keys: KeyPair) -> None:
    from mergequeue.github import StaticTokenAuth

    assert "secret" not in repr(StaticTokenAuth("secret"))
    assert "PRIVATE" not in repr(AppAuth(app_id=1, private_key=app_keys.private_pem))
