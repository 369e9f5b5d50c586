"""The fake's in-memory GitHub: repositories, pull requests, checks, tokens, faults.

`FakeGitHub` is both the state and the test controls. Its public methods are what the
HTTP control API (`/_fake/<method>`) exposes, so in-process tests and tests driving a
fake server process use the same vocabulary.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal["delay", "fail", "hang", "secondary_rate_limit"]


def fake_sha(*parts: object) -> str:
    return hashlib.sha1("/".join(str(p) for p in parts).encode()).hexdigest()


@dataclass
class FakePull:
    number: int
    id: int
    head_ref: str
    head_sha: str
    base_ref: str
    # The base commit the head includes: behind when the base branch has moved past it.
    base_sha: str
    title: str = "A change"
    body: str | None = None
    user: str = "octocat"
    user_id: int = 583231
    labels: list[str] = field(default_factory=list)
    state: Literal["open", "closed"] = "open"
    merged: bool = False
    draft: bool = False
    conflict: bool = False
    merge_commit_sha: str | None = None
    # Test overrides of GitHub's computed fields (e.g. mergeable=None: "still computing").
    mergeable_override: bool | None = None
    mergeable_is_unknown: bool = False
    mergeable_state_override: str | None = None
    comments: list[int] = field(default_factory=list)


@dataclass
class FakeCheckRun:
    id: int
    head_sha: str
    name: str
    status: str
    conclusion: str | None
    app_id: int
    app_slug: str
    suite_id: int


@dataclass
class FakeStatus:
    id: int
    sha: str
    context: str
    state: str
    description: str | None
    target_url: str | None


@dataclass
class FakeProtection:
    strict: bool
    contexts: list[str]
    checks: list[tuple[str, int | None]]

    def all_checks(self) -> list[tuple[str, int | None]]:
        named = {c for c, _ in self.checks}
        return list(self.checks) + [(c, None) for c in self.contexts if c not in named]

    def required_names(self) -> set[str]:
        return {c for c, _ in self.all_checks()}


@dataclass
class FakeRepo:
    id: int
    owner: str
    owner_id: int
    name: str
    default_branch: str
    private: bool = False
    archived: bool = False
    branches: dict[str, str] = field(default_factory=dict)
    protection: dict[str, FakeProtection] = field(default_factory=dict)
    pulls: dict[int, FakePull] = field(default_factory=dict)
    check_runs: list[FakeCheckRun] = field(default_factory=list)
    statuses: list[FakeStatus] = field(default_factory=list)
    label_ids: dict[str, int] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class FakeComment:
    id: int
    repo: str
    number: int
    body: str
    author: str


@dataclass
class FakeToken:
    token: str
    installation_id: int | None  # None: a personal/static token that sees every repo
    expires_at: float


@dataclass
class Fault:
    kind: FaultKind
    route: str | None
    method: str | None
    times: int | None  # None: until cleared
    seconds: float = 0.0
    status: int = 502
    retry_after: int | None = None

    def matches(self, route: str, method: str) -> bool:
        return (self.route is None or self.route == route) and (
            self.method is None or self.method == method.upper()
        )


@dataclass
class Call:
    method: str
    path: str
    route: str
    query: dict[str, str]
    body: Any
    authorization: str | None
    status: int = 0
    # Decoded App JWT claims, for calls authenticated as the App.
    jwt_claims: dict[str, Any] | None = None
    # When the call arrived (Unix time), to check what a client did before a reset.
    at: float = field(default_factory=time.time)


@dataclass
class RateWindow:
    limit: int
    used: int
    reset: int


class FakeGitHub:
    """State and controls of one fake GitHub. `FakeGitHub().asgi` is the ASGI app."""

    # Methods the HTTP control API may call (POST /_fake/<name> with JSON keyword args).
    CONTROL_METHODS = (
        "reset",
        "set_app",
        "add_installation",
        "add_token",
        "add_repo",
        "add_branch",
        "push",
        "add_pull",
        "set_pull",
        "add_check_run",
        "add_status",
        "protect",
        "unprotect",
        "delay",
        "fail",
        "hang",
        "rate_limit_primary",
        "rate_limit_secondary",
        "set_rate_limit",
        "clear_faults",
        "clear_calls",
        "calls_json",
        "pull_json",
        "comments_json",
    )

    def __init__(
        self,
        *,
        app_id: int | None = None,
        public_key: str | None = None,
        token_lifetime: float = 3600.0,
        rate_limit: int = 5000,
    ) -> None:
        self.token_lifetime = token_lifetime
        self.default_rate_limit = rate_limit
        self.app_id: int | None = None
        self.public_key: str | None = None
        self._init_state()
        if app_id is not None and public_key is not None:
            self.set_app(app_id=app_id, public_key=public_key)
        from tests.fakegithub.app import build_app

        self.asgi = build_app(self)

    def _init_state(self) -> None:
        self.installations: dict[int, dict[str, Any]] = {}
        self.tokens: dict[str, FakeToken] = {}
        self.repos: dict[str, FakeRepo] = {}
        self.comments: list[FakeComment] = []
        self.faults: list[Fault] = []
        self.calls: list[Call] = []
        self.windows: dict[str, RateWindow] = {}
        self.exhausted: dict[str | None, int] = {}
        self.minted = 0
        self._ids = itertools.count(1000)
        self._release = asyncio.Event()

    def next_id(self) -> int:
        return next(self._ids)

    # -- seeding ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget all state, faults and calls (and release hung requests); the App stays."""
        self._release.set()
        self._init_state()

    def set_app(self, *, app_id: int, public_key: str) -> None:
        """The App whose JWTs `POST /app/installations/{id}/access_tokens` accepts."""
        self.app_id = int(app_id)
        self.public_key = public_key

    def add_installation(
        self, *, installation_id: int, account: str, repositories: Iterable[str] = ()
    ) -> None:
        repos = list(repositories)
        for full_name in repos:
            if full_name not in self.repos:
                self.add_repo(full_name=full_name)
        self.installations[int(installation_id)] = {"account": account, "repositories": repos}

    def add_token(
        self, *, token: str, installation_id: int | None = None, expires_in: float = 3600.0
    ) -> None:
        """A token the API accepts: an installation's, or (None) a static one for all."""
        self.tokens[token] = FakeToken(token, installation_id, time.time() + expires_in)

    def add_repo(
        self,
        *,
        full_name: str,
        default_branch: str = "main",
        private: bool = False,
        archived: bool = False,
    ) -> dict[str, Any]:
        owner, name = full_name.split("/", 1)
        repo = FakeRepo(
            id=self.next_id(),
            owner=owner,
            owner_id=int(fake_sha("owner", owner)[:6], 16),
            name=name,
            default_branch=default_branch,
            private=private,
            archived=archived,
        )
        repo.branches[default_branch] = fake_sha(full_name, default_branch, 0)
        self.repos[full_name] = repo
        return {"id": repo.id, "sha": repo.branches[default_branch]}

    def repo(self, full_name: str) -> FakeRepo:
        return self.repos[full_name]

    def add_branch(self, *, full_name: str, branch: str, sha: str | None = None) -> str:
        repo = self.repos[full_name]
        repo.branches[branch] = sha or fake_sha(full_name, branch, self.next_id())
        return repo.branches[branch]

    def push(self, *, full_name: str, branch: str, sha: str | None = None) -> str:
        """Move a branch to a new commit (e.g. the base moves: open pulls become behind)."""
        return self.add_branch(full_name=full_name, branch=branch, sha=sha)

    def add_pull(
        self,
        *,
        full_name: str,
        number: int | None = None,
        head_ref: str | None = None,
        head_sha: str | None = None,
        base_ref: str | None = None,
        labels: Iterable[str] = (),
        title: str = "A change",
        user: str = "octocat",
        draft: bool = False,
        conflict: bool = False,
    ) -> dict[str, Any]:
        repo = self.repos[full_name]
        number = number or max([0, *repo.pulls]) + 1
        base_ref = base_ref or repo.default_branch
        head_ref = head_ref or f"feature-{number}"
        head_sha = head_sha or fake_sha(full_name, head_ref, self.next_id())
        repo.branches[head_ref] = head_sha
        repo.pulls[number] = FakePull(
            number=number,
            id=self.next_id(),
            head_ref=head_ref,
            head_sha=head_sha,
            base_ref=base_ref,
            base_sha=repo.branches[base_ref],
            title=title,
            user=user,
            labels=list(labels),
            draft=draft,
            conflict=conflict,
        )
        return {"number": number, "head_sha": head_sha, "head_ref": head_ref}

    def set_pull(self, *, full_name: str, number: int, **changes: Any) -> None:
        """Change a pull request's fields, e.g. `conflict=True`, `head_sha=...`,
        `mergeable=None` (GitHub still computing), `mergeable_state="unstable"`."""
        pr = self.repos[full_name].pulls[number]
        if "mergeable" in changes:
            value = changes.pop("mergeable")
            pr.mergeable_is_unknown = value is None
            pr.mergeable_override = value
        if "mergeable_state" in changes:
            pr.mergeable_state_override = changes.pop("mergeable_state")
        for key, value in changes.items():
            if not hasattr(pr, key):
                raise AttributeError(f"pull request has no field {key!r}")
            setattr(pr, key, value)
        if "head_sha" in changes:
            self.repos[full_name].branches[pr.head_ref] = pr.head_sha

    def add_check_run(
        self,
        *,
        full_name: str,
        head_sha: str,
        name: str,
        status: str = "completed",
        conclusion: str | None = "success",
        app_id: int = 15368,
        app_slug: str = "github-actions",
    ) -> int:
        run = FakeCheckRun(
            id=self.next_id(),
            head_sha=head_sha,
            name=name,
            status=status,
            conclusion=conclusion if status == "completed" else None,
            app_id=app_id,
            app_slug=app_slug,
            suite_id=int(fake_sha("suite", head_sha, app_id)[:8], 16),
        )
        self.repos[full_name].check_runs.append(run)
        return run.id

    def add_status(
        self,
        *,
        full_name: str,
        sha: str,
        context: str,
        state: str,
        description: str | None = None,
        target_url: str | None = None,
    ) -> int:
        st = FakeStatus(self.next_id(), sha, context, state, description, target_url)
        self.repos[full_name].statuses.append(st)
        return st.id

    def protect(
        self,
        *,
        full_name: str,
        branch: str,
        contexts: Iterable[str] = (),
        checks: Iterable[tuple[str, int | None] | list[Any]] = (),
        strict: bool = True,
    ) -> None:
        self.repos[full_name].protection[branch] = FakeProtection(
            strict=strict,
            contexts=list(contexts),
            checks=[(str(c), a) for c, a in checks],
        )

    def unprotect(self, *, full_name: str, branch: str) -> None:
        self.repos[full_name].protection.pop(branch, None)

    # -- faults -------------------------------------------------------------------------

    def _fault(self, fault: Fault) -> None:
        if fault.method is not None:
            fault.method = fault.method.upper()
        self.faults.append(fault)

    def delay(
        self,
        *,
        seconds: float,
        route: str | None = None,
        method: str | None = None,
        times: int | None = None,
    ) -> None:
        """Answer slowly (then normally)."""
        self._fault(Fault("delay", route, method, times, seconds=seconds))

    def fail(
        self,
        *,
        status: int = 502,
        times: int | None = 1,
        route: str | None = None,
        method: str | None = None,
    ) -> None:
        """Answer `status` (5xx) `times` times."""
        self._fault(Fault("fail", route, method, times, status=status))

    def hang(
        self,
        *,
        seconds: float = 3600.0,
        route: str | None = None,
        method: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Never answer (for `seconds`, or until `reset`): the caller must time out."""
        self._fault(Fault("hang", route, method, times, seconds=seconds))

    def rate_limit_secondary(
        self,
        *,
        retry_after: int | None = 60,
        status: int = 403,
        times: int | None = 1,
        route: str | None = None,
        method: str | None = None,
    ) -> None:
        """GitHub's secondary limit: 403/429, `Retry-After` (or None: only the message)."""
        self._fault(
            Fault(
                "secondary_rate_limit", route, method, times, status=status, retry_after=retry_after
            )
        )

    def rate_limit_primary(self, *, until: int, installation_id: int | None = None) -> None:
        """Exhaust the primary limit until Unix time `until`, for one installation or all."""
        key = None if installation_id is None else str(installation_id)
        self.exhausted[key] = int(until)

    def set_rate_limit(self, *, limit: int) -> None:
        """The per-identity hourly limit for identities seen from now on."""
        self.default_rate_limit = limit

    def clear_faults(self) -> None:
        self.faults.clear()
        self.exhausted.clear()
        self._release.set()
        self._release = asyncio.Event()

    def take_fault(self, route: str, method: str) -> list[Fault]:
        """The faults that apply to this call: delays first, then at most one other."""
        picked: list[Fault] = []
        terminal = False
        for fault in list(self.faults):
            if not fault.matches(route, method) or (terminal and fault.kind != "delay"):
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
            picked.append(fault)
            terminal = terminal or fault.kind != "delay"
        return sorted(picked, key=lambda f: f.kind != "delay")

    async def wait_released(self, seconds: float) -> None:
        release = self._release
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), timeout=seconds)

    # -- records ------------------------------------------------------------------------

    def clear_calls(self) -> None:
        self.calls.clear()

    def calls_to(self, route: str | None = None, method: str | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if (route is None or c.route == route)
            and (method is None or c.method == method.upper())
        ]

    def calls_json(self) -> list[dict[str, Any]]:
        return [vars(c).copy() for c in self.calls]

    def pull_json(self, *, full_name: str, number: int) -> dict[str, Any]:
        pr = self.repos[full_name].pulls[number]
        return {k: v for k, v in vars(pr).items() if not k.startswith("_")}

    def comments_json(self) -> list[dict[str, Any]]:
        return [vars(c).copy() for c in self.comments]

    # -- rate limits --------------------------------------------------------------------

    def window(self, key: str, limit: int | None = None) -> RateWindow:
        now = int(time.time())
        win = self.windows.get(key)
        if win is None or win.reset <= now:
            limit = self.default_rate_limit if limit is None else limit
            win = RateWindow(limit=limit, used=0, reset=now + 3600)
            self.windows[key] = win
        return win

    def exhausted_until(self, key: str) -> int | None:
        now = int(time.time())
        for k in (key, None):
            until = self.exhausted.get(k)
            if until is not None and until > now:
                return until
        return None
