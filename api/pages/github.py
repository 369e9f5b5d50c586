"""What the dashboard asks GitHub: the OAuth web flow, who the user is, and what each
repository lets them do, always with the user's own token (never the App's).

A repository the user's token cannot read (`GET /repos/{owner}/{repo}` 404) is not shown
to them at all. The permissions in that answer give their role, which the queue's command
rule (`mergequeue.queue.authorize.permits`) turns into "may pause, resume and dequeue".
Answers are kept per session for ACCESS_TTL seconds (the index asks about every known
repository); a form that changes a queue asks again first.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlencode

import httpx

from mergequeue.queue.authorize import permits
from mergequeue.queue.ports import Role
from mergequeue.settings import CommandPermission, Settings

ACCESS_TTL: Final = 60.0
# Sessions whose answers are kept at once, per process.
MAX_CACHED_SESSIONS: Final = 1000
# GitHub calls at once for one page (the index asks about every repository).
CONCURRENCY: Final = 8
TIMEOUT: Final = httpx.Timeout(10.0, connect=5.0)


class SignInFailed(Exception):
    """GitHub did not give a token for the code (expired, reused, wrong client)."""


class TokenRejected(Exception):
    """GitHub no longer accepts the user's token (revoked or expired): sign in again."""


class GitHubUnavailable(Exception):
    """GitHub could not be asked (5xx, a timeout, a rate limit)."""


@dataclass(frozen=True)
class Access:
    role: Role  # Role.NONE: the user cannot see the repository
    may_command: bool

    @property
    def visible(self) -> bool:
        return self.role is not Role.NONE


NO_ACCESS: Final = Access(Role.NONE, False)


def role_from_permissions(permissions: Mapping[str, object] | None) -> Role:
    """GitHub's permission flags of `GET /repos/{owner}/{repo}` as a role."""
    flags = permissions or {}
    for flag, role in (
        ("admin", Role.ADMIN),
        ("maintain", Role.MAINTAIN),
        ("push", Role.WRITE),
        ("triage", Role.TRIAGE),
        ("pull", Role.READ),
    ):
        if flags.get(flag) is True:
            return role
    return Role.NONE


class GitHubSignIn:
    def __init__(
        self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        assert settings.GITHUB_OAUTH_CLIENT_ID is not None
        assert settings.GITHUB_OAUTH_CLIENT_SECRET is not None
        self.client_id = settings.GITHUB_OAUTH_CLIENT_ID
        self._client_secret = settings.GITHUB_OAUTH_CLIENT_SECRET
        self.web_url = settings.github_web_url
        self.api_url = settings.GITHUB_API_URL
        self.needed: CommandPermission = settings.QUEUE_COMMAND_PERMISSION
        self._http = httpx.AsyncClient(transport=transport, timeout=TIMEOUT, follow_redirects=False)
        self._cache: OrderedDict[str, tuple[float, dict[str, Access]]] = OrderedDict()

    async def aclose(self) -> None:
        await self._http.aclose()

    def authorize_url(self, state: str) -> str:
        # No redirect_uri: GitHub sends the browser to the App's own callback URL, so no
        # URL is ever built from the request's Host header.
        query = urlencode({"client_id": self.client_id, "state": state})
        return f"{self.web_url}/login/oauth/authorize?{query}"

    async def exchange(self, code: str) -> str:
        """The user's access token for a code from the callback."""
        try:
            response = await self._http.post(
                f"{self.web_url}/login/oauth/access_token",
                data={
                    "client_id": self.client_id,
                    "client_secret": self._client_secret.get_secret_value(),
                    "code": code,
                },
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise GitHubUnavailable(type(exc).__name__) from None
        if response.status_code >= 500:
            raise GitHubUnavailable(f"GitHub answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise SignInFailed(f"GitHub answered {response.status_code}") from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(token, str) or not token:
            error = body.get("error") if isinstance(body, dict) else None
            raise SignInFailed(str(error or f"GitHub answered {response.status_code}"))
        return token

    async def login(self, token: str) -> str:
        body = await self._get(token, "/user")
        login = body.get("login") if body is not None else None
        if not isinstance(login, str):
            raise GitHubUnavailable("GET /user gave no login")
        return login

    async def access(
        self, *, sid: str, token: str, full_names: Iterable[str], fresh: bool = False
    ) -> dict[str, Access]:
        """What the user may do on each repository (`owner/name`), from the session's
        cache unless `fresh` or older than ACCESS_TTL."""
        now = time.monotonic()
        cached = self._cache.get(sid)
        known = cached[1] if cached is not None and now - cached[0] < ACCESS_TTL else {}
        wanted = list(dict.fromkeys(full_names))
        missing = wanted if fresh else [name for name in wanted if name not in known]
        if missing:
            limit = asyncio.Semaphore(CONCURRENCY)

            async def one(full_name: str) -> tuple[str, Access]:
                async with limit:
                    return full_name, await self._repository_access(token, full_name)

            answers = await asyncio.gather(*(one(name) for name in missing))
            known = {**known, **dict(answers)}
            self._cache[sid] = (now if cached is None or fresh else cached[0], known)
            self._cache.move_to_end(sid)
            while len(self._cache) > MAX_CACHED_SESSIONS:
                self._cache.popitem(last=False)
        return {name: known[name] for name in wanted}

    def forget(self, sid: str) -> None:
        self._cache.pop(sid, None)

    async def _repository_access(self, token: str, full_name: str) -> Access:
        owner, _, name = full_name.partition("/")
        body = await self._get(token, f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}")
        if body is None:
            return NO_ACCESS
        permissions = body.get("permissions")
        role = role_from_permissions(permissions if isinstance(permissions, dict) else None)
        return Access(role, role is not Role.NONE and permits(role, self.needed))

    async def _get(self, token: str, path: str) -> dict[str, object] | None:
        """A GET with the user's token: the body, None for 404 (not visible to them)."""
        try:
            response = await self._http.get(
                self.api_url + path,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": "2022-11-28",
                },
            )
        except httpx.HTTPError as exc:
            raise GitHubUnavailable(type(exc).__name__) from None
        if response.status_code == 401:
            raise TokenRejected()
        if response.status_code in (403, 404):
            # 403 without a rate limit: this token may not read it (e.g. an SSO-enforced
            # organisation); either way the user does not see it.
            if response.headers.get("x-ratelimit-remaining") == "0":
                raise GitHubUnavailable("rate limited")
            return None
        if response.status_code != 200:
            raise GitHubUnavailable(f"GitHub answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise GitHubUnavailable("GitHub answered with something other than JSON") from None
        return body if isinstance(body, dict) else None
