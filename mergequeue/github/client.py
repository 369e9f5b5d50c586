"""GitHubClient: the merge queue's calls to GitHub's REST API.

One instance owns an httpx client (behind `InstrumentedTransport`) and the auth state;
`for_installation(id)` gives views bound to an installation that share both. Every method
is keyword-only and returns a small frozen dataclass from `models`.

Failures are typed (`errors`): rate limits raise `RateLimited(retry_at)` for the caller to
defer the work; 5xx answers, timeouts and connection errors are retried here with bounded
exponential backoff, then raise `Unavailable`.

GETs are conditional: the client remembers the ETag and body of the last 200 answer per
(rate-limit key, URL) in a bounded LRU and sends `If-None-Match`; GitHub's 304 answer does
not count against the rate limit, and the client answers from the remembered body.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Self
from urllib.parse import quote, urlsplit

import httpx

from mergequeue.github.auth import (
    AppAuth,
    Auth,
    InstallationToken,
    StaticTokenAuth,
    parse_github_time,
)
from mergequeue.github.errors import (
    Conflict,
    Forbidden,
    GitHubError,
    MergeConflict,
    NotFound,
    NotMergeable,
    RateLimited,
    Unauthorized,
    Unavailable,
    Unprocessable,
)
from mergequeue.github.models import (
    Branch,
    CheckConclusion,
    CheckRun,
    CheckStatus,
    CollaboratorPermission,
    CombinedStatus,
    Comment,
    CommitPull,
    CommitStatus,
    Comparison,
    FileContents,
    GitCommit,
    GitRef,
    HookDelivery,
    HookDeliveryPage,
    Installation,
    IssueComment,
    MalformedResponse,
    MergeMethod,
    MergeResult,
    PullRequest,
    Reaction,
    ReactionContent,
    Repository,
    RequiredStatusChecks,
    StatusState,
    WorkflowRun,
    label_names,
)
from mergequeue.github.transport import (
    INSTALLATION_KEY_EXTENSION,
    CallObserver,
    InstrumentedTransport,
    RateLimitObserver,
)

if TYPE_CHECKING:
    from mergequeue.queue.ports import Budget

__all__ = ["DEFAULT_BASE_URL", "GitHubClient"]

DEFAULT_BASE_URL: Final = "https://api.github.com"
API_VERSION: Final = "2022-11-28"
# GitHub's advice when a secondary limit gives no Retry-After: wait at least a minute.
SECONDARY_LIMIT_DEFAULT_WAIT: Final = 60.0
# A bound against a link loop, far above real needs (100 per page).
MAX_PAGES: Final = 100
# Enough for every open pull request's reads of a few busy repositories.
DEFAULT_ETAG_CACHE_SIZE: Final = 4096

_APP_KEY: Final = "app"
_TOKEN_KEY: Final = "token"

Sleep = Callable[[float], Awaitable[None]]

# (rate-limit key, full URL with its query): an ETag is only valid for the same resource
# as seen by the same credentials.
_CacheKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Remembered:
    """A 200 answer kept to stand in for a later 304: the body and what paginates it."""

    etag: str
    content: bytes
    content_type: str | None
    link: str | None

    def replay(self, not_modified: httpx.Response) -> httpx.Response:
        headers = httpx.Headers(not_modified.headers)
        headers.pop("content-length", None)
        for name, value in (("content-type", self.content_type), ("link", self.link)):
            if value is not None:
                headers[name] = value
        return httpx.Response(
            200, headers=headers, content=self.content, request=not_modified.request
        )


class _EtagCache:
    """Least recently used (rate-limit key, URL) -> last 200 answer, at most `size`."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("etag_cache_size must be at least 1")
        self._size = size
        self._items: OrderedDict[_CacheKey, _Remembered] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: _CacheKey) -> _Remembered | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: _CacheKey, response: httpx.Response) -> None:
        etag = response.headers.get("etag")
        if etag is None:
            self._items.pop(key, None)
            return
        self._items[key] = _Remembered(
            etag=etag,
            content=response.content,
            content_type=response.headers.get("content-type"),
            link=response.headers.get("link"),
        )
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


@dataclass
class _Shared:
    """What every installation view of one client shares."""

    http: httpx.AsyncClient
    auth: Auth
    max_attempts: int
    backoff: float
    max_backoff: float
    sleep: Sleep
    clock: Callable[[], float]
    # Rate-limit key -> (retry_at, kind): calls before retry_at fail without being sent.
    blocked: dict[str, tuple[float, Literal["primary", "secondary"]]] = field(default_factory=dict)
    # None: conditional requests are off (no If-None-Match is ever sent).
    etags: _EtagCache | None = None
    # Rate-limit key -> the last (remaining, limit, reset) GitHub sent for it.
    budgets: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def _path(template: str, **params: str | int) -> str:
    return template.format(**{k: quote(str(v), safe="") for k, v in params.items()})


def _ref_path(template: str, *, owner: str, repo: str, ref: str) -> str:
    """`template` with a git reference kept as path segments: heads/mergequeue/main/1
    goes out with its slashes (each segment percent-encoded), as GitHub expects."""
    quoted = "/".join(quote(segment, safe="") for segment in ref.split("/"))
    return template.format(owner=quote(owner, safe=""), repo=quote(repo, safe=""), ref=quoted)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return str(body["message"])
    return response.reason_phrase


def _int_header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _rate_limited(response: httpx.Response, message: str, now: float) -> RateLimited | None:
    """GitHub's documented order: Retry-After, then remaining 0 until reset, then a minute."""
    status = response.status_code
    retry_after = _int_header(response, "retry-after")
    if retry_after is not None:
        return RateLimited(
            retry_at=now + max(retry_after, 0), kind="secondary", status=status, message=message
        )
    if _int_header(response, "x-ratelimit-remaining") == 0:
        reset = _int_header(response, "x-ratelimit-reset")
        retry_at = float(reset) if reset is not None else now + SECONDARY_LIMIT_DEFAULT_WAIT
        return RateLimited(retry_at=retry_at, kind="primary", status=status, message=message)
    if status == 429 or "secondary rate limit" in message.lower():
        return RateLimited(
            retry_at=now + SECONDARY_LIMIT_DEFAULT_WAIT,
            kind="secondary",
            status=status,
            message=message,
        )
    return None


def _raise_for_status(response: httpx.Response, now: float) -> None:
    status = response.status_code
    if status < 400:
        return
    message = _message(response)
    if status in (403, 429):
        limited = _rate_limited(response, message, now)
        if limited is not None:
            raise limited
    error: type[GitHubError] = {
        401: Unauthorized,
        403: Forbidden,
        404: NotFound,
        405: NotMergeable,
        409: Conflict,
        422: Unprocessable,
    }.get(status, Unavailable if status >= 500 else GitHubError)
    raise error(status, message)


def _check_run_fields(
    conclusion: str | None, title: str | None, summary: str | None, details_url: str | None
) -> dict[str, object]:
    """The optional fields of a check run's create or update body."""
    if (title is None) != (summary is None):
        raise ValueError("a check run's output needs both a title and a summary")
    fields: dict[str, object] = {}
    if conclusion is not None:
        fields["conclusion"] = conclusion
    if title is not None:
        fields["output"] = {"title": title, "summary": summary}
    if details_url is not None:
        fields["details_url"] = details_url
    return fields


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise MalformedResponse(response.status_code, "response body is not JSON") from exc


class GitHubClient:
    """GitHub REST calls for the merge queue.

    `auth` is a `StaticTokenAuth` (one token for everything) or an `AppAuth`; with an App,
    calls need an installation: pass `installation_id` or use `for_installation(id)`.
    `transport` replaces the network (tests pass `httpx.ASGITransport(fake_app)`).
    `timeout` bounds each network operation and also the wait for a whole answer.
    """

    def __init__(
        self,
        *,
        auth: Auth,
        base_url: str = DEFAULT_BASE_URL,
        installation_id: int | None = None,
        timeout: float = 10.0,
        observe_call: CallObserver | None = None,
        observe_rate_limit: RateLimitObserver | None = None,
        max_attempts: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = "mergequeue",
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        conditional_requests: bool = True,
        etag_cache_size: int = DEFAULT_ETAG_CACHE_SIZE,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        base_url = base_url.rstrip("/")
        instrumented = InstrumentedTransport(
            transport if transport is not None else httpx.AsyncHTTPTransport(),
            observe_call=observe_call,
            observe_rate_limit=observe_rate_limit,
            base_path=urlsplit(base_url).path,
            deadline=timeout,
        )
        http = httpx.AsyncClient(
            base_url=base_url,
            transport=instrumented,
            timeout=timeout,
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": user_agent,
            },
        )
        self._shared = _Shared(
            http=http,
            auth=auth,
            max_attempts=max_attempts,
            backoff=backoff,
            max_backoff=max_backoff,
            sleep=sleep,
            clock=clock,
            etags=_EtagCache(etag_cache_size) if conditional_requests else None,
        )
        self._installation_id = installation_id
        self._owns_http = True

    @classmethod
    def _view(cls, shared: _Shared, installation_id: int) -> GitHubClient:
        view = cls.__new__(cls)
        view._shared = shared
        view._installation_id = installation_id
        view._owns_http = False
        return view

    def for_installation(self, installation_id: int) -> GitHubClient:
        """A client for one App installation, sharing connections and the token cache.

        Closing the view does nothing; close the client it came from.
        """
        return GitHubClient._view(self._shared, installation_id)

    @property
    def installation_id(self) -> int | None:
        return self._installation_id

    def budget(self) -> Budget | None:
        """This view's rate-limit budget as GitHub last reported it (None: no answer yet)."""
        # Imported here: the queue's ports may import this package (a cycle at import time).
        from mergequeue.queue.ports import Budget

        if isinstance(self._shared.auth, StaticTokenAuth):
            key = _TOKEN_KEY
        elif self._installation_id is not None:
            key = str(self._installation_id)
        else:
            return None
        last = self._shared.budgets.get(key)
        if last is None:
            return None
        remaining, limit, reset = last
        return Budget(remaining=remaining, limit=limit, reset_at=float(reset))

    def budgets(self) -> dict[str, Budget]:
        """Every rate-limit budget GitHub last reported to this client, by whose quota it is
        (an installation id, `token` for a single token, `app` for the App's own calls)."""
        from mergequeue.queue.ports import Budget

        return {
            key: Budget(remaining=remaining, limit=limit, reset_at=float(reset))
            for key, (remaining, limit, reset) in self._shared.budgets.items()
        }

    def granted_permissions(self) -> Mapping[str, str] | None:
        """What GitHub granted this installation view's current token (the token
        answer's `permissions`); None for a single token, or before a token was minted."""
        auth = self._shared.auth
        if not isinstance(auth, AppAuth) or self._installation_id is None:
            return None
        return auth.tokens.permissions(self._installation_id)

    @property
    def authenticates_as_app(self) -> bool:
        """True for an App (calls need an installation), False for a single token."""
        return isinstance(self._shared.auth, AppAuth)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._shared.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the merge queue's calls ------------------------------------------------------

    async def get_pull_request(self, *, owner: str, repo: str, number: int) -> PullRequest:
        path = _path("/repos/{owner}/{repo}/pulls/{n}", owner=owner, repo=repo, n=number)
        return PullRequest.from_json(_json(await self._call("GET", path)))

    async def list_check_runs(self, *, owner: str, repo: str, ref: str) -> list[CheckRun]:
        """The latest check run of each name for a commit (all pages)."""
        path = _path(
            "/repos/{owner}/{repo}/commits/{ref}/check-runs", owner=owner, repo=repo, ref=ref
        )
        items = await self._paginate(path, "check_runs", {"filter": "latest"})
        return [CheckRun.from_json(item) for item in items]

    async def get_combined_status(self, *, owner: str, repo: str, ref: str) -> CombinedStatus:
        """The combined state and the latest status of every context (all pages)."""
        path = _path("/repos/{owner}/{repo}/commits/{ref}/status", owner=owner, repo=repo, ref=ref)
        first: CombinedStatus | None = None
        statuses: list[CommitStatus] = []
        async for response in self._pages(path, {"per_page": "100"}):
            page = CombinedStatus.from_json(_json(response))
            first = first or page
            statuses.extend(page.statuses)
        assert first is not None  # _pages yields at least once
        return CombinedStatus(
            sha=first.sha,
            state=first.state,
            statuses=tuple(statuses),
            total_count=first.total_count,
        )

    async def update_branch(
        self, *, owner: str, repo: str, number: int, expected_head_sha: str | None
    ) -> None:
        """Merge the base into the pull request's branch (GitHub does it asynchronously).

        Raises `Unprocessable` when the branch is not behind, conflicts, or its head is no
        longer `expected_head_sha`.
        """
        path = _path(
            "/repos/{owner}/{repo}/pulls/{n}/update-branch", owner=owner, repo=repo, n=number
        )
        body = {} if expected_head_sha is None else {"expected_head_sha": expected_head_sha}
        await self._call("PUT", path, json=body)

    async def merge(
        self,
        *,
        owner: str,
        repo: str,
        number: int,
        method: MergeMethod,
        sha: str | None,
        commit_title: str | None = None,
        commit_message: str | None = None,
    ) -> MergeResult:
        """Merge the pull request; with `sha`, only if its head is still that commit.

        Raises `NotMergeable` (405) when GitHub refuses, `Conflict` (409) on a moved head.
        """
        path = _path("/repos/{owner}/{repo}/pulls/{n}/merge", owner=owner, repo=repo, n=number)
        body: dict[str, str] = {"merge_method": method}
        if sha is not None:
            body["sha"] = sha
        if commit_title is not None:
            body["commit_title"] = commit_title
        if commit_message is not None:
            body["commit_message"] = commit_message
        return MergeResult.from_json(_json(await self._call("PUT", path, json=body)))

    async def create_comment(self, *, owner: str, repo: str, number: int, body: str) -> Comment:
        path = _path("/repos/{owner}/{repo}/issues/{n}/comments", owner=owner, repo=repo, n=number)
        # Not retried once it may have reached GitHub: a retry could post it twice.
        response = await self._call("POST", path, json={"body": body}, idempotent=False)
        return Comment.from_json(_json(response))

    async def update_comment(self, *, owner: str, repo: str, comment_id: int, body: str) -> Comment:
        """Replace a comment's body; `NotFound` when it was deleted. Repeating an edit
        changes nothing more: retried like a read."""
        path = _path(
            "/repos/{owner}/{repo}/issues/comments/{id}", owner=owner, repo=repo, id=comment_id
        )
        response = await self._call("PATCH", path, json={"body": body})
        return Comment.from_json(_json(response))

    async def add_reaction(
        self, *, owner: str, repo: str, comment_id: int, content: ReactionContent
    ) -> Reaction:
        """React to an issue or pull request comment (`NotFound`: it was deleted). GitHub
        answers a reaction that is there already with it (200): retried like a read."""
        path = _path(
            "/repos/{owner}/{repo}/issues/comments/{id}/reactions",
            owner=owner,
            repo=repo,
            id=comment_id,
        )
        response = await self._call("POST", path, json={"content": content})
        return Reaction.from_json(_json(response))

    async def create_check_run(
        self,
        *,
        owner: str,
        repo: str,
        name: str,
        head_sha: str,
        status: CheckStatus = "queued",
        conclusion: CheckConclusion | None = None,
        title: str | None = None,
        summary: str | None = None,
        details_url: str | None = None,
    ) -> CheckRun:
        """Create a check run on `head_sha`. Only an App's installation may: a single
        token is `Forbidden` ("You must authenticate via a GitHub App.").

        `title` and `summary` are the output shown on the check's page (both or neither;
        the summary is Markdown, at most 65535 characters). `Unprocessable` for an unknown
        commit or `completed` without a conclusion. Not retried once it may have reached
        GitHub: a repeat would create a second run."""
        path = _path("/repos/{owner}/{repo}/check-runs", owner=owner, repo=repo)
        body: dict[str, object] = {"name": name, "head_sha": head_sha, "status": status}
        body.update(_check_run_fields(conclusion, title, summary, details_url))
        response = await self._call("POST", path, json=body, idempotent=False)
        return CheckRun.from_json(_json(response))

    async def update_check_run(
        self,
        *,
        owner: str,
        repo: str,
        check_run_id: int,
        status: CheckStatus | None = None,
        conclusion: CheckConclusion | None = None,
        title: str | None = None,
        summary: str | None = None,
        details_url: str | None = None,
    ) -> CheckRun:
        """Change the App's own check run (fields left None stay as they are; a
        conclusion completes it). `NotFound` when GitHub does not know the run, `Forbidden`
        for another App's. Retried: repeating the same change is harmless."""
        path = _path(
            "/repos/{owner}/{repo}/check-runs/{id}", owner=owner, repo=repo, id=check_run_id
        )
        body: dict[str, object] = {} if status is None else {"status": status}
        body.update(_check_run_fields(conclusion, title, summary, details_url))
        response = await self._call("PATCH", path, json=body)
        return CheckRun.from_json(_json(response))

    async def create_status(
        self,
        *,
        owner: str,
        repo: str,
        sha: str,
        state: StatusState,
        context: str,
        description: str | None = None,
        target_url: str | None = None,
    ) -> CommitStatus:
        """Set the commit status `context` of `sha` (a single token may, unlike check
        runs). `Unprocessable` for an unknown commit, a description over 140 characters
        or the 1,000th status of one sha and context.

        Retried: a repeat only sets the same state again (the latest status of a context
        is the one that counts), at the cost of one of those 1,000."""
        path = _path("/repos/{owner}/{repo}/statuses/{sha}", owner=owner, repo=repo, sha=sha)
        body: dict[str, str] = {"state": state, "context": context}
        if description is not None:
            body["description"] = description
        if target_url is not None:
            body["target_url"] = target_url
        response = await self._call("POST", path, json=body)
        return CommitStatus.from_json(_json(response))

    async def add_labels(
        self, *, owner: str, repo: str, number: int, labels: Sequence[str]
    ) -> tuple[str, ...]:
        """Add labels (creating unknown ones); returns all labels now on the pull request."""
        path = _path("/repos/{owner}/{repo}/issues/{n}/labels", owner=owner, repo=repo, n=number)
        response = await self._call("POST", path, json={"labels": list(labels)})
        return label_names(_json(response))

    async def remove_label(self, *, owner: str, repo: str, number: int, label: str) -> bool:
        """Remove a label; False when it was not on the pull request (not an error)."""
        path = _path(
            "/repos/{owner}/{repo}/issues/{n}/labels/{name}",
            owner=owner,
            repo=repo,
            n=number,
            name=label,
        )
        try:
            await self._call("DELETE", path)
        except NotFound as exc:
            if "label does not exist" in exc.message.lower():
                return False
            raise
        return True

    async def get_required_status_checks(
        self, *, owner: str, repo: str, branch: str
    ) -> RequiredStatusChecks | None:
        """Branch protection's required checks; None when the branch requires none.

        Only GitHub's "not protected"/"not enabled" answers mean None: any other 404 (no
        such branch or repository) raises `NotFound`, so that a typo never reads as "no
        checks required".
        """
        path = _path(
            "/repos/{owner}/{repo}/branches/{branch}/protection/required_status_checks",
            owner=owner,
            repo=repo,
            branch=branch,
        )
        try:
            response = await self._call("GET", path)
        except NotFound as exc:
            message = exc.message.lower()
            if "not protected" in message or "not enabled" in message:
                return None
            raise
        return RequiredStatusChecks.from_json(_json(response))

    async def get_branch(self, *, owner: str, repo: str, branch: str) -> Branch:
        path = _path(
            "/repos/{owner}/{repo}/branches/{branch}", owner=owner, repo=repo, branch=branch
        )
        return Branch.from_json(_json(await self._call("GET", path)))

    async def get_branch_rules_required_checks(
        self, *, owner: str, repo: str, branch: str
    ) -> tuple[str, ...]:
        """Checks that the active rulesets on `branch` require (empty when none do)."""
        path = _path(
            "/repos/{owner}/{repo}/rules/branches/{branch}", owner=owner, repo=repo, branch=branch
        )
        names: dict[str, None] = {}
        for rule in await self._paginate(path, None, {}):
            if rule.get("type") != "required_status_checks":
                continue
            parameters = rule.get("parameters")
            checks = (
                parameters.get("required_status_checks")
                if isinstance(parameters, Mapping)
                else None
            )
            for check in checks if isinstance(checks, list) else []:
                if isinstance(check, Mapping) and isinstance(check.get("context"), str):
                    names[check["context"]] = None
        return tuple(names)

    async def compare(self, *, owner: str, repo: str, base: str, head: str) -> Comparison:
        """How `head` relates to `base` (branch names or shas): GitHub's compare."""
        path = _path(
            "/repos/{owner}/{repo}/compare/{basehead}",
            owner=owner,
            repo=repo,
            basehead=f"{base}...{head}",
        )
        # One page of commits is plenty: the counts are what the queue reads.
        response = await self._call("GET", path, query={"per_page": "1"})
        return Comparison.from_json(_json(response))

    # -- git references, merges and commits (parallel mode's staging branches) ---------

    async def get_ref(self, *, owner: str, repo: str, ref: str) -> GitRef:
        """The reference `ref` (e.g. `heads/main`, without `refs/`); `NotFound` when there
        is no such reference."""
        path = _ref_path("/repos/{owner}/{repo}/git/ref/{ref}", owner=owner, repo=repo, ref=ref)
        return GitRef.from_json(_json(await self._call("GET", path)))

    async def list_matching_refs(self, *, owner: str, repo: str, prefix: str) -> list[GitRef]:
        """Every reference whose name starts with `prefix` (e.g. `heads/mergequeue/main/`),
        all pages; empty when none does."""
        path = _ref_path(
            "/repos/{owner}/{repo}/git/matching-refs/{ref}", owner=owner, repo=repo, ref=prefix
        )
        return [GitRef.from_json(item) for item in await self._paginate(path, None, {})]

    async def create_ref(self, *, owner: str, repo: str, ref: str, sha: str) -> GitRef:
        """Create the fully qualified reference `ref` (`refs/heads/<branch>`) at `sha`.

        Raises `Unprocessable` when it exists already or `sha` is no commit."""
        path = _path("/repos/{owner}/{repo}/git/refs", owner=owner, repo=repo)
        # Not retried once it may have reached GitHub: a repeat would only be "exists".
        response = await self._call("POST", path, json={"ref": ref, "sha": sha}, idempotent=False)
        return GitRef.from_json(_json(response))

    async def update_ref(
        self, *, owner: str, repo: str, ref: str, sha: str, force: bool = False
    ) -> GitRef:
        """Point `ref` (`heads/<branch>`) at `sha`; without `force` only a fast forward.

        Raises `Unprocessable` for "Update is not a fast forward", an unknown reference or
        commit."""
        path = _ref_path("/repos/{owner}/{repo}/git/refs/{ref}", owner=owner, repo=repo, ref=ref)
        response = await self._call("PATCH", path, json={"sha": sha, "force": force})
        return GitRef.from_json(_json(response))

    async def delete_ref(self, *, owner: str, repo: str, ref: str) -> bool:
        """Delete `ref` (`heads/<branch>`); False when there was no such reference."""
        path = _ref_path("/repos/{owner}/{repo}/git/refs/{ref}", owner=owner, repo=repo, ref=ref)
        try:
            await self._call("DELETE", path)
        except Unprocessable as exc:
            if "reference does not exist" in exc.message.lower():
                return False
            raise
        return True

    async def merge_branches(
        self,
        *,
        owner: str,
        repo: str,
        base: str,
        head: str,
        commit_message: str | None = None,
    ) -> GitCommit | None:
        """Merge `head` (a branch or a sha) into the branch `base` (GitHub makes a merge
        commit and moves `base` to it); the merge commit, or None when `base` already
        contains `head` (204).

        Raises `MergeConflict` (409) when they conflict, `NotFound` when either is
        missing. A repeat after a lost answer is harmless (it answers 204), so it is
        retried like a read."""
        path = _path("/repos/{owner}/{repo}/merges", owner=owner, repo=repo)
        body = {"base": base, "head": head}
        if commit_message is not None:
            body["commit_message"] = commit_message
        try:
            response = await self._call("POST", path, json=body)
        except Conflict as exc:
            raise MergeConflict(exc.status, exc.message) from exc
        if response.status_code == 204:
            return None
        return GitCommit.from_commit_json(_json(response))

    async def get_git_commit(self, *, owner: str, repo: str, sha: str) -> GitCommit:
        """The commit `sha` from the git database: its tree and parents (`NotFound` when
        there is none). Commits never change: the conditional read is nearly free."""
        path = _path("/repos/{owner}/{repo}/git/commits/{sha}", owner=owner, repo=repo, sha=sha)
        return GitCommit.from_json(_json(await self._call("GET", path)))

    async def get_file_contents(
        self, *, owner: str, repo: str, path: str, ref: str
    ) -> FileContents | None:
        """The file at `path` on `ref` (a branch or a sha); None when there is none (404).
        A conditional request: reading an unchanged file again is free."""
        quoted = "/".join(quote(segment, safe="") for segment in path.split("/"))
        url = _path("/repos/{owner}/{repo}/contents/", owner=owner, repo=repo) + quoted
        try:
            response = await self._call("GET", url, query={"ref": ref})
        except NotFound:
            return None
        return FileContents.from_json(_json(response))

    async def list_commit_pulls(self, *, owner: str, repo: str, sha: str) -> list[CommitPull]:
        """The pull requests associated with a commit (the one that merged it, or whose
        head holds it), first page (GitHub lists a handful at most)."""
        path = _path("/repos/{owner}/{repo}/commits/{sha}/pulls", owner=owner, repo=repo, sha=sha)
        response = await self._call("GET", path, query={"per_page": "30"})
        body = _json(response)
        if not isinstance(body, list):
            raise MalformedResponse(response.status_code, "pull requests are not a list")
        return [CommitPull.from_json(item) for item in body if isinstance(item, Mapping)]

    # -- GitHub Actions (cancelling the runs of dropped staging builds) --------------------

    async def list_failed_workflow_runs(
        self, *, owner: str, repo: str, branch: str
    ) -> list[WorkflowRun]:
        """The workflow runs on `branch` that failed (GitHub's `status=failure` filter),
        newest first, one page of 100 (see `list_workflow_runs`)."""
        path = _path("/repos/{owner}/{repo}/actions/runs", owner=owner, repo=repo)
        query = {
            "branch": branch,
            "status": "failure",
            "per_page": "100",
            "exclude_pull_requests": "true",
        }
        body = _json(await self._call("GET", path, query=query))
        items = body.get("workflow_runs") if isinstance(body, Mapping) else None
        if not isinstance(items, list):
            raise MalformedResponse(200, "missing list workflow_runs")
        return [WorkflowRun.from_json(item) for item in items if isinstance(item, Mapping)]

    async def rerun_failed_jobs(self, *, owner: str, repo: str, run_id: int) -> None:
        """Re-run only the failed jobs of a workflow run (201). `Forbidden` (403) when the
        installation lacks `actions: write` or the run has no failed job."""
        path = _path(
            "/repos/{owner}/{repo}/actions/runs/{id}/rerun-failed-jobs",
            owner=owner,
            repo=repo,
            id=run_id,
        )
        # Not retried once it may have reached GitHub: a second re-run is another attempt.
        await self._call("POST", path, idempotent=False)

    async def list_workflow_runs(self, *, owner: str, repo: str, branch: str) -> list[WorkflowRun]:
        """The workflow runs on `branch` not yet completed, newest first.

        One page of 100, not all pages: the queue asks this of a staging branch, which is
        made once per build (its name carries the build's id) and pushed to at most twice,
        so it holds a run per workflow triggered by its push, far fewer than 100. GitHub's
        `status` filter takes one value and "not completed" is several (queued,
        in_progress, waiting, requested, pending), so completed runs are dropped here.
        `exclude_pull_requests` keeps the answer small."""
        path = _path("/repos/{owner}/{repo}/actions/runs", owner=owner, repo=repo)
        query = {"branch": branch, "per_page": "100", "exclude_pull_requests": "true"}
        body = _json(await self._call("GET", path, query=query))
        items = body.get("workflow_runs") if isinstance(body, Mapping) else None
        if not isinstance(items, list):
            raise MalformedResponse(200, "missing list workflow_runs")
        runs = [WorkflowRun.from_json(item) for item in items if isinstance(item, Mapping)]
        return [run for run in runs if not run.completed]

    async def cancel_workflow_run(self, *, owner: str, repo: str, run_id: int) -> bool:
        """Ask GitHub to cancel a workflow run (202: it is cancelling); False when the run
        had already finished (409), which is not an error. `Forbidden` (403) when the
        installation lacks `actions: write`."""
        path = _path(
            "/repos/{owner}/{repo}/actions/runs/{id}/cancel", owner=owner, repo=repo, id=run_id
        )
        try:
            # Repeating it is harmless: a run cancelled already answers 409.
            await self._call("POST", path)
        except Conflict:
            return False
        return True

    async def get_collaborator_permission(
        self, *, owner: str, repo: str, username: str
    ) -> CollaboratorPermission:
        """The user's permission and role on the repository (`NotFound`: no such user)."""
        path = _path(
            "/repos/{owner}/{repo}/collaborators/{username}/permission",
            owner=owner,
            repo=repo,
            username=username,
        )
        return CollaboratorPermission.from_json(_json(await self._call("GET", path)))

    async def get_collaborator_role(self, *, owner: str, repo: str, username: str) -> str:
        """The user's role name on the repository (none, read, triage, write, maintain,
        admin or a custom role); GitHub's coarser `permission` when it gives no role."""
        found = await self.get_collaborator_permission(owner=owner, repo=repo, username=username)
        return found.role

    async def list_open_pulls_with_label(
        self, *, owner: str, repo: str, label: str
    ) -> tuple[int, ...]:
        """Numbers of the open pull requests carrying `label` (all pages)."""
        path = _path("/repos/{owner}/{repo}/issues", owner=owner, repo=repo)
        items = await self._paginate(path, None, {"state": "open", "labels": label})
        # The issues API lists pull requests as issues with a `pull_request` key.
        return tuple(
            item["number"]
            for item in items
            if "pull_request" in item and isinstance(item.get("number"), int)
        )

    async def list_recent_comments(
        self, *, owner: str, repo: str, limit: int
    ) -> list[IssueComment]:
        """The repository's `limit` most recently created issue and pull request comments,
        newest first."""
        if limit < 1:
            return []
        path = _path("/repos/{owner}/{repo}/issues/comments", owner=owner, repo=repo)
        query = {"sort": "created", "direction": "desc", "per_page": str(min(limit, 100))}
        comments: list[IssueComment] = []
        async for response in self._pages(path, query):
            body = _json(response)
            if not isinstance(body, list):
                raise MalformedResponse(response.status_code, "comments are not a list")
            comments.extend(IssueComment.from_json(item) for item in body)
            if len(comments) >= limit:
                break
        return comments[:limit]

    async def list_app_installations(self) -> list[Installation]:
        """Every installation of the App (App JWT), suspended ones included."""
        items = await self._paginate("/app/installations", None, {}, as_app=True)
        return [Installation.from_json(item) for item in items]

    async def token_login(self) -> str:
        """The login a single token authenticates as (`GET /user`): proof it works."""
        body = _json(await self._call("GET", "/user"))
        login = body.get("login") if isinstance(body, Mapping) else None
        if not isinstance(login, str):
            raise MalformedResponse(200, "user lacks a login")
        return login

    async def list_hook_deliveries(
        self, *, per_page: int = 100, cursor: str | None = None
    ) -> HookDeliveryPage:
        """One page of the App's webhook deliveries, newest first (App JWT)."""
        query = {"per_page": str(per_page)}
        if cursor is not None:
            query["cursor"] = cursor
        response = await self._call_as_app("GET", "/app/hook/deliveries", query=query)
        body = _json(response)
        if not isinstance(body, list):
            raise MalformedResponse(response.status_code, "deliveries are not a list")
        next_url = response.links.get("next", {}).get("url")
        next_cursor = httpx.URL(next_url).params.get("cursor") if next_url else None
        return HookDeliveryPage(
            deliveries=tuple(HookDelivery.from_json(item) for item in body),
            next_cursor=next_cursor,
        )

    async def redeliver(self, *, delivery_id: int) -> None:
        """Ask GitHub to deliver a webhook again (same X-GitHub-Delivery guid)."""
        path = _path("/app/hook/deliveries/{id}/attempts", id=delivery_id)
        # Repeating it is harmless: a receiver drops a guid it already has.
        await self._call_as_app("POST", path)

    async def list_installation_repositories(self) -> list[Repository]:
        items = await self._paginate("/installation/repositories", "repositories", {})
        return [Repository.from_json(item) for item in items]

    # -- plumbing ---------------------------------------------------------------------

    async def _paginate(
        self, path: str, key: str | None, query: Mapping[str, str], *, as_app: bool = False
    ) -> list[Mapping[str, Any]]:
        """Every item of every page: the list under `key`, or (None) the body itself."""
        items: list[Mapping[str, Any]] = []
        async for response in self._pages(path, {**query, "per_page": "100"}, as_app=as_app):
            body = _json(response)
            if key is None:
                page = body
            elif isinstance(body, Mapping):
                page = body.get(key)
            else:
                page = None
            if not isinstance(page, list):
                raise MalformedResponse(response.status_code, f"missing list {key or 'body'}")
            items.extend(item for item in page if isinstance(item, Mapping))
        return items

    async def _pages(
        self, path: str, query: Mapping[str, str], *, as_app: bool = False
    ) -> AsyncIterator[httpx.Response]:
        """The first page's answer, then each page its `next` link leads to."""
        url: str | None = path
        params: Mapping[str, str] | None = query
        call = self._call_as_app if as_app else self._call
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = await call("GET", url, query=params)
            yield response
            # The next link carries its own query string.
            url, params = response.links.get("next", {}).get("url"), None

    async def _call_as_app(
        self, method: str, url: str, *, query: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """A call authenticated as the App itself (a fresh JWT), not as an installation."""
        auth = self._shared.auth
        if not isinstance(auth, AppAuth):
            raise RuntimeError("this endpoint needs the App's own credentials (AppAuth)")
        return await self._send(method, url, key=_APP_KEY, token=auth.jwt(), query=query)

    async def _credentials(self) -> tuple[str, str]:
        """(key for rate-limit accounting, token) for the next call."""
        auth = self._shared.auth
        if isinstance(auth, StaticTokenAuth):
            return _TOKEN_KEY, auth.token
        if self._installation_id is None:
            raise RuntimeError("AppAuth calls need an installation: use for_installation(id)")
        installation_id = self._installation_id
        token = await auth.tokens.get(installation_id, lambda: self._mint(auth, installation_id))
        return str(installation_id), token

    async def _mint(self, auth: AppAuth, installation_id: int) -> InstallationToken:
        path = _path("/app/installations/{id}/access_tokens", id=installation_id)
        response = await self._send("POST", path, key=_APP_KEY, token=auth.jwt())
        body = _json(response)
        if not isinstance(body, Mapping):
            raise MalformedResponse(response.status_code, "installation token is not an object")
        token, expires_at = body.get("token"), body.get("expires_at")
        if not isinstance(token, str) or not isinstance(expires_at, str):
            raise MalformedResponse(response.status_code, "installation token lacks fields")
        permissions = body.get("permissions")
        return InstallationToken(
            token=token,
            expires_at=parse_github_time(expires_at),
            permissions=(
                {str(k): str(v) for k, v in permissions.items()}
                if isinstance(permissions, Mapping)
                else None
            ),
        )

    async def _call(
        self,
        method: str,
        url: str,
        *,
        json: object = None,
        query: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        key, token = await self._credentials()
        try:
            return await self._send(
                method, url, key=key, token=token, json=json, query=query, idempotent=idempotent
            )
        except Unauthorized:
            auth = self._shared.auth
            if not isinstance(auth, AppAuth) or self._installation_id is None:
                raise
            # A cached installation token can be revoked before it expires: mint once more.
            auth.tokens.invalidate(self._installation_id, token)
            key, token = await self._credentials()
            return await self._send(
                method, url, key=key, token=token, json=json, query=query, idempotent=idempotent
            )

    async def _send(
        self,
        method: str,
        url: str,
        *,
        key: str,
        token: str,
        json: object = None,
        query: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        shared = self._shared
        self._check_blocked(key)
        attempt = 0
        while True:
            attempt += 1
            last_try = attempt >= shared.max_attempts
            request = shared.http.build_request(
                method,
                url,
                json=json,
                params=query,
                headers={"Authorization": f"Bearer {token}"},
                extensions={INSTALLATION_KEY_EXTENSION: key},
            )
            cache_key = (key, str(request.url))
            remembered = self._remembered(method, cache_key)
            if remembered is not None:
                request.headers["If-None-Match"] = remembered.etag
            try:
                response = await shared.http.send(request)
            except httpx.TransportError as exc:
                # Without an answer a non-idempotent call may still have happened; only a
                # connection that never opened is certainly safe to repeat.
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if last_try or not (idempotent or unsent):
                    raise Unavailable(0, f"{method} {url}: {type(exc).__name__}: {exc}") from exc
                await shared.sleep(self._backoff(attempt))
                continue
            if response.status_code >= 500 and idempotent and not last_try:
                await shared.sleep(self._backoff(attempt))
                continue
            now = shared.clock()
            self._note_rate_limit(key, response, now)
            self._note_budget(key, response)
            if response.status_code == 304 and remembered is not None:
                response = remembered.replay(response)
            try:
                _raise_for_status(response, now)
            except RateLimited as exc:
                shared.blocked[key] = (exc.retry_at, exc.kind)
                raise
            if shared.etags is not None and method == "GET" and response.status_code == 200:
                shared.etags.put(cache_key, response)
            return response

    def _remembered(self, method: str, cache_key: _CacheKey) -> _Remembered | None:
        etags = self._shared.etags
        if etags is None or method != "GET":
            return None
        return etags.get(cache_key)

    def _note_budget(self, key: str, response: httpx.Response) -> None:
        # A refused credential is answered with the anonymous quota, not the caller's.
        if response.status_code == 401:
            return
        remaining = _int_header(response, "x-ratelimit-remaining")
        limit = _int_header(response, "x-ratelimit-limit")
        reset = _int_header(response, "x-ratelimit-reset")
        if remaining is not None and limit is not None and reset is not None:
            self._shared.budgets[key] = (remaining, limit, reset)

    def _backoff(self, attempt: int) -> float:
        shared = self._shared
        delay = min(shared.max_backoff, shared.backoff * 2.0 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0)

    def _check_blocked(self, key: str) -> None:
        blocked = self._shared.blocked.get(key)
        if blocked is None:
            return
        retry_at, kind = blocked
        if self._shared.clock() < retry_at:
            raise RateLimited(
                retry_at=retry_at, kind=kind, status=0, message="rate limited (not sent)"
            )
        del self._shared.blocked[key]

    def _note_rate_limit(self, key: str, response: httpx.Response, now: float) -> None:
        # The last call of a window succeeds with remaining 0: the next would be refused.
        if _int_header(response, "x-ratelimit-remaining") == 0 and response.status_code < 400:
            reset = _int_header(response, "x-ratelimit-reset")
            if reset is not None and reset > now:
                self._shared.blocked[key] = (float(reset), "primary")
