"""The fake's in-memory GitHub: repositories, pull requests, checks, tokens, faults.

`FakeGitHub` is both the state and the test controls. Its public methods are what the
HTTP control API (`/_fake/<method>`) exposes, so in-process tests and tests driving a
fake server process use the same vocabulary.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import hmac
import itertools
import json
import random
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlencode as _urlencode

import httpx

from tests.fakegithub.git import Commit, Comparison, Git, MergeOutcome

FaultKind = Literal["delay", "fail", "hang", "secondary_rate_limit"]

# GitHub's coarse `permission` for each fine-grained role (the permission endpoint's answer).
ROLE_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}
# An installation's permissions unless `set_installation_permissions` says otherwise: what
# mergequeue asked for before it could cancel workflow runs (no `actions`).
DEFAULT_INSTALLATION_PERMISSIONS: dict[str, str] = {
    "checks": "read",
    "contents": "write",
    "issues": "write",
    "metadata": "read",
    "pull_requests": "write",
    "statuses": "read",
}
# The app whose check runs are GitHub Actions workflow runs.
ACTIONS_SLUG = "github-actions"
# GitHub's answer to an installation token calling what its permissions do not cover.
NOT_ACCESSIBLE = "Resource not accessible by integration"
# Check run conclusions GitHub counts as a passing required check.
PASSING_CONCLUSIONS = frozenset({"success", "neutral", "skipped"})
# What the checks API takes (only GitHub itself sets `stale`; Actions the other statuses).
CHECK_STATUSES = ("queued", "in_progress", "completed")
CHECK_CONCLUSIONS = frozenset(
    {"action_required", "cancelled", "failure", "neutral", "success", "skipped", "timed_out"}
)
STATUS_STATES = frozenset({"error", "failure", "pending", "success"})
REACTIONS = frozenset({"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"})
# GitHub's documented limits.
CHECK_SUMMARY_LIMIT = 65535
STATUS_DESCRIPTION_LIMIT = 140
STATUSES_PER_CONTEXT = 1000
COMMENT_BODY_LIMIT = 65536


class ApiError(Exception):
    """A GitHub error answer: the HTTP fake renders it as GitHub's error body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def fake_sha(*parts: object) -> str:
    return hashlib.sha1("/".join(str(p) for p in parts).encode()).hexdigest()


def _check_state(
    status: str, conclusion: str | None, previous: str | None
) -> tuple[str, str | None]:
    """(status, conclusion) for a check run as GitHub takes them: a conclusion completes
    the run; `completed` needs one (the run's earlier one will do)."""
    if conclusion is not None:
        if conclusion not in CHECK_CONCLUSIONS:
            raise ApiError(422, f"Invalid request.\n\n{conclusion!r} is not a valid conclusion.")
        status = "completed"
    if status not in CHECK_STATUSES:
        raise ApiError(422, f"Invalid request.\n\n{status!r} is not a valid status.")
    if status != "completed":
        return status, None
    conclusion = conclusion or previous
    if conclusion is None:
        raise ApiError(422, 'Invalid request.\n\n"conclusion" wasn\'t supplied.')
    return status, conclusion


def _check_summary(summary: str | None) -> None:
    if summary is not None and len(summary) > CHECK_SUMMARY_LIMIT:
        raise ApiError(
            422,
            f"Invalid request.\n\nOnly {CHECK_SUMMARY_LIMIT} characters are allowed; "
            f"{len(summary)} were supplied.",
        )


def _check_comment_body(body: str) -> None:
    if len(body) > COMMENT_BODY_LIMIT:
        raise ApiError(422, "Validation Failed: body is too long (maximum is 65536 characters)")


def _pull_file(number: int) -> dict[str, str | None]:
    """What a pull request changes unless told otherwise: a file of its own."""
    return {f"changes/{number}.txt": f"change {number}\n"}


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
    # A fork's branch the App may push to only if its author allows maintainers to.
    from_fork: bool = False
    maintainer_can_modify: bool = False


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
    # The output's summary (None: "<name>: <conclusion>") and title (None: the name).
    summary: str | None = None
    title: str | None = None
    details_url: str | None = None


@dataclass
class FakeStatus:
    id: int
    sha: str
    context: str
    state: str
    description: str | None
    target_url: str | None
    creator: str = "octocat"


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
class FakeRuleset:
    id: int
    # Branch names or fnmatch patterns; "~DEFAULT_BRANCH" is the default branch, "~ALL" all.
    branches: list[str]
    required_checks: list[str]
    enforcement: str  # active, evaluate or disabled: only active rulesets are enforced

    def applies_to(self, branch: str, default_branch: str) -> bool:
        if self.enforcement != "active":
            return False
        for pattern in self.branches:
            if pattern == "~ALL" or (pattern == "~DEFAULT_BRANCH" and branch == default_branch):
                return True
            if fnmatch.fnmatchcase(branch, pattern.removeprefix("refs/heads/")):
                return True
        return False


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
    # The repository's commits: compare, merges and mergeability come from real ancestry.
    git: Git = field(default_factory=Git)
    rulesets: list[FakeRuleset] = field(default_factory=list)
    # Collaborators' role names (none/read/triage/write/maintain/admin).
    roles: dict[str, str] = field(default_factory=dict)
    protection: dict[str, FakeProtection] = field(default_factory=dict)
    pulls: dict[int, FakePull] = field(default_factory=dict)
    check_runs: list[FakeCheckRun] = field(default_factory=list)
    statuses: list[FakeStatus] = field(default_factory=list)
    label_ids: dict[str, int] = field(default_factory=dict)
    # Every commit each branch has pointed at, oldest first (what the reflog would say).
    moves: dict[str, list[str]] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def set_branch(self, branch: str, sha: str) -> None:
        """Point `branch` at the commit `sha` (use `FakeGitHub` methods: they also run CI)."""
        self.branches[branch] = sha
        log = self.moves.setdefault(branch, [])
        if not log or log[-1] != sha:
            log.append(sha)


@dataclass
class FakeComment:
    id: int
    repo: str
    number: int
    body: str
    author: str
    author_association: str = "NONE"
    created_at: float = field(default_factory=time.time)
    # None until edited.
    updated_at: float | None = None
    # {"id", "content", "user"} in the order they were added.
    reactions: list[dict[str, Any]] = field(default_factory=list)


# What `force_ci` may script: a check run's conclusions that a CI run can end with.
CI_CONCLUSIONS: Final = ("success", "failure", "cancelled", "timed_out", "neutral", "skipped")

# GitHub's compare of base...head (status, ahead_by, behind_by, merge base, commits).
FakeComparison = Comparison


@dataclass
class FakeCI:
    """A scripted CI (`FakeGitHub.set_ci`): it runs on commits that land on matching
    branches and decides from the commit's tree."""

    full_name: str
    name: str
    bad_paths: list[str]
    flaky: dict[str, float]
    seed: int
    branches: list[str]
    app_id: int
    app_slug: str
    ci_delay: float | None

    def runs_on(self, branch: str) -> bool:
        return any(fnmatch.fnmatchcase(branch, pattern) for pattern in self.branches)

    def verdict(self, commit: Commit, attempt: int) -> tuple[str, str]:
        """(conclusion, why) for a run on `commit`: bad paths fail it, flaky paths may."""
        tree = commit.tree
        for pattern in self.bad_paths:
            bad = sorted(p for p in tree if fnmatch.fnmatchcase(p, pattern))
            if bad:
                return "failure", f"bad path {bad[0]}"
        # One generator per run: outcomes depend on the seed, the commit and the attempt,
        # not on the order in which runs happen to be started.
        rng = random.Random(f"{self.seed}:{self.name}:{commit.sha}:{attempt}")
        for path, probability in sorted(self.flaky.items()):
            if path in tree and rng.random() < probability:
                return "failure", f"flaky path {path}"
        return "success", "all good"


@dataclass
class FakeCIForced:
    """An outcome `force_ci` scripted for the next run of CI `name` on a matching branch."""

    full_name: str
    name: str
    branch: str
    conclusion: str


@dataclass
class FakeCIRun:
    """One run of a scripted CI: a check run, pending until completed."""

    check_run_id: int
    full_name: str
    name: str
    sha: str
    tree_sha: str
    branch: str
    conclusion: str  # decided when the run starts, shown when it completes
    reason: str
    status: str = "in_progress"
    details_url: str = ""
    # With GitHub Actions (`app_slug` github-actions) the run is also a workflow run: its
    # id, its number among the workflow's runs, and when it was created (Unix time).
    workflow_run_id: int | None = None
    run_number: int = 0
    created_at: float = field(default_factory=time.time)


@dataclass
class FakeDelivery:
    """One attempt to deliver a webhook (a redelivery is a new attempt, same guid)."""

    id: int
    guid: str
    event: str
    action: str | None
    installation_id: int | None
    repository_id: int | None
    payload: bytes
    redelivery: bool
    delivered_at: float
    duration: float = 0.0
    status: str = "pending"
    status_code: int = 0


@dataclass
class FakeToken:
    token: str
    installation_id: int | None  # None: a personal/static token that sees every repo
    expires_at: float
    # A user access token (the OAuth web flow): it sees what that user may read.
    user: str | None = None


# The permissions a role gives on a repository, as `GET /repos/{owner}/{repo}` shows them.
ROLE_RANKS = ("none", "read", "triage", "write", "maintain", "admin")


def role_permissions(role: str) -> dict[str, bool]:
    rank = ROLE_RANKS.index(role)
    return {
        "admin": rank >= 5,
        "maintain": rank >= 4,
        "push": rank >= 3,
        "triage": rank >= 2,
        "pull": rank >= 1,
    }


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
    # Whose quota it spent: an installation id, "app" or "token" (None: not authenticated).
    identity: str | None = None
    # Whether it counted against that quota (a 304 to a conditional request does not).
    counted: bool = False
    if_none_match: str | None = None


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
        "add_ruleset",
        "set_permission",
        "add_user",
        "add_comment",
        "delete_comment",
        "forget_check_run",
        "suspend_installation",
        "set_webhook_target",
        "send_webhook",
        "redeliver",
        "deliveries_json",
        "branch_log_json",
        "rerun_failed_jobs",
        "delay",
        "fail",
        "hang",
        "rate_limit_primary",
        "rate_limit_secondary",
        "set_rate_limit",
        "clear_faults",
        "clear_calls",
        "calls_json",
        "points",
        "pull_json",
        "comments_json",
        "check_runs_json",
        "statuses_json",
        "commit_json",
        "push_event_json",
        "set_installation_permissions",
        "set_ci",
        "force_ci",
        "complete_ci",
        "run_ci",
        "ci_runs_json",
        "set_oauth_app",
        "sign_in_as",
        "user_token",
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
        self.app_slug = "mergequeue"
        self.public_key: str | None = None
        # The App's webhook settings: like the App, they outlive `reset`.
        self.webhook_url: str | None = None
        self.webhook_secret = ""
        self.webhook_transport: httpx.AsyncBaseTransport | None = None
        # The App's OAuth client (its client id, secret and callback URL): like the App,
        # they outlive `reset`.
        self.oauth_client_id: str | None = None
        self.oauth_client_secret = ""
        self.oauth_callback_url: str | None = None
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
        # Logins GitHub knows: others are 404 on the collaborator permission endpoint.
        self.users: set[str] = {"octocat", "mergequeue[bot]"}
        self.faults: list[Fault] = []
        self.calls: list[Call] = []
        self.windows: dict[str, RateWindow] = {}
        self.exhausted: dict[str | None, int] = {}
        self.minted = 0
        self.deliveries: list[FakeDelivery] = []
        # Scripted CI: (full name, check name) -> its script; every run it started.
        self.cis: dict[tuple[str, str], FakeCI] = {}
        self.ci_runs: list[FakeCIRun] = []
        # Forced outcomes (`force_ci`), each for the next run of a CI on a matching branch.
        self.ci_forced: list[FakeCIForced] = []
        self._ci_tasks: set[asyncio.Task[None]] = set()
        # The API's base URL as last seen by a request (webhook payloads link to it).
        self.api_url = "https://api.github.com"
        self._ids = itertools.count(1000)
        self._release = asyncio.Event()
        # The OAuth web flow: who `/login/oauth/authorize` signs in, and the codes it gave
        # (code -> login), each good for one exchange.
        self.signed_in: str | None = None
        self.oauth_codes: dict[str, str] = {}

    def next_id(self) -> int:
        return next(self._ids)

    # -- seeding ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget all state, faults and calls (and release hung requests); the App stays."""
        self._release.set()
        for task in self._ci_tasks:
            task.cancel()
        self._init_state()

    def set_app(self, *, app_id: int, public_key: str, slug: str = "mergequeue") -> None:
        """The App whose JWTs `POST /app/installations/{id}/access_tokens` accepts; its
        installations' check runs and comments are by `<slug>[bot]`."""
        self.app_id = int(app_id)
        self.app_slug = slug
        self.public_key = public_key

    def add_installation(
        self, *, installation_id: int, account: str, repositories: Iterable[str] = ()
    ) -> None:
        repos = list(repositories)
        for full_name in repos:
            if full_name not in self.repos:
                self.add_repo(full_name=full_name)
        self.installations[int(installation_id)] = {
            "account": account,
            "repositories": repos,
            "suspended_at": None,
            "permissions": dict(DEFAULT_INSTALLATION_PERMISSIONS),
        }

    def set_installation_permissions(
        self, *, installation_id: int, permissions: Mapping[str, str | None]
    ) -> dict[str, str]:
        """Change what the installation was granted, e.g. `{"actions": "write"}` (`None`
        removes one); returns them all. Its listing, its tokens' answers and what its
        tokens may do (cancelling workflow runs needs `actions: write`) follow at once."""
        granted: dict[str, str] = self.installations[int(installation_id)]["permissions"]
        for name, access in permissions.items():
            if access is None:
                granted.pop(name, None)
            else:
                granted[name] = str(access)
        return dict(granted)

    def permissions_of(self, installation_id: int | None) -> dict[str, str] | None:
        """An installation's permissions; None for a static token (it may do anything)."""
        if installation_id is None:
            return None
        return dict(self.installations[int(installation_id)]["permissions"])

    def suspend_installation(self, *, installation_id: int, suspended: bool = True) -> None:
        """Suspend (or unsuspend) an installation: it can no longer mint tokens."""
        inst = self.installations[int(installation_id)]
        inst["suspended_at"] = time.time() if suspended else None

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
        initial = repo.git.commit(
            tree={"README.md": f"# {name}\n"}, message="Initial commit", author=owner
        )
        repo.set_branch(default_branch, initial.sha)
        self.repos[full_name] = repo
        return {"id": repo.id, "sha": repo.branches[default_branch]}

    def repo(self, full_name: str) -> FakeRepo:
        return self.repos[full_name]

    def add_branch(
        self,
        *,
        full_name: str,
        branch: str,
        sha: str | None = None,
        files: Mapping[str, str | None] | None = None,
        message: str | None = None,
    ) -> str:
        """Same as `push`."""
        return self.push(full_name=full_name, branch=branch, sha=sha, files=files, message=message)

    def push(
        self,
        *,
        full_name: str,
        branch: str,
        sha: str | None = None,
        files: Mapping[str, str | None] | None = None,
        message: str | None = None,
    ) -> str:
        """Move a branch to a new commit on top of it (a new branch starts from the
        default branch's head): the base moves, open pulls on it become behind.

        The commit changes `files` (path -> content, None deletes), by default a file of
        its own; `sha` names it (a known sha just moves the branch there)."""
        repo = self.repos[full_name]
        if sha is not None and files is None and sha in repo.git:
            self._move(repo, branch, sha)
            return sha
        parent = repo.branches.get(branch, repo.branches[repo.default_branch])
        n = self.next_id()
        changes = dict(files) if files is not None else {f"pushes/{n}.txt": f"push {n}\n"}
        made = self._commit_on(repo, parent, changes, message or f"Push {n} to {branch}", sha=sha)
        self._move(repo, branch, made.sha)
        return made.sha

    def _commit_on(
        self,
        repo: FakeRepo,
        parent: str,
        changes: Mapping[str, str | None],
        message: str,
        *,
        sha: str | None = None,
        author: str = "Monalisa Octocat",
    ) -> Commit:
        tree = repo.git.get(parent).tree.changed(changes)
        return repo.git.commit(
            tree=tree, parents=(parent,), message=message, author=author, sha=sha
        )

    def _move(self, repo: FakeRepo, branch: str, sha: str) -> None:
        """Point a branch at a commit, as a push does: scripted CI runs on new commits of
        the branches it watches, and, as on GitHub, an open pull request whose head is
        now in its base branch's history is merged."""
        moved = repo.branches.get(branch) != sha
        repo.set_branch(branch, sha)
        if not moved:
            return
        for pr in repo.pulls.values():
            if (
                pr.state == "open"
                and pr.base_ref == branch
                and pr.head_sha in repo.git
                and repo.git.is_ancestor(pr.head_sha, sha)
            ):
                pr.merged, pr.state, pr.merge_commit_sha = True, "closed", sha
        self._start_ci(repo, branch, sha)

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
        files: Mapping[str, str | None] | None = None,
    ) -> dict[str, Any]:
        """A pull request whose head is one commit on top of its base's head, changing
        `files` (path -> content, None deletes; default: `changes/<number>.txt`).
        `head_sha` names that commit; `conflict=True` makes it conflict with its base
        whatever the trees say."""
        repo = self.repos[full_name]
        number = number or max([0, *repo.pulls]) + 1
        base_ref = base_ref or repo.default_branch
        head_ref = head_ref or f"feature-{number}"
        base_head = repo.branches[base_ref]
        if head_sha is not None and files is None and head_sha in repo.git:
            head = repo.git.get(head_sha)
        else:
            changes = dict(files) if files is not None else _pull_file(number)
            head = self._commit_on(repo, base_head, changes, title, sha=head_sha, author=user)
        self._move(repo, head_ref, head.sha)
        self.users.add(user)
        repo.pulls[number] = FakePull(
            number=number,
            id=self.next_id(),
            head_ref=head_ref,
            head_sha=head.sha,
            base_ref=base_ref,
            base_sha=base_head,
            title=title,
            user=user,
            labels=list(labels),
            draft=draft,
            conflict=conflict,
        )
        return {"number": number, "head_sha": head.sha, "head_ref": head_ref}

    def set_pull(self, *, full_name: str, number: int, **changes: Any) -> None:
        """Change a pull request's fields, e.g. `conflict=True`, `head_sha=...`,
        `mergeable=None` (GitHub still computing), `mergeable_state="unstable"`."""
        repo = self.repos[full_name]
        pr = repo.pulls[number]
        if "head_sha" in changes and changes["head_sha"] not in repo.git:
            # The author pushed: a new commit on top of the head, with that sha.
            self._commit_on(
                repo,
                self._head_commit(repo, pr),
                {f"changes/{pr.number}.txt": f"change {pr.number} at {changes['head_sha']}\n"},
                f"Push to {pr.head_ref}",
                sha=changes["head_sha"],
            )
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
            self._move(repo, pr.head_ref, pr.head_sha)

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
        run.details_url = f"https://ci.example.com/runs/{run.id}"
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

    def add_ruleset(
        self,
        *,
        full_name: str,
        branches: list[str],
        required_checks: list[str],
        enforcement: str = "active",
    ) -> int:
        """A branch ruleset requiring `required_checks` on branches matching `branches`
        (names, fnmatch patterns like "release/*", "~DEFAULT_BRANCH" or "~ALL")."""
        ruleset = FakeRuleset(self.next_id(), list(branches), list(required_checks), enforcement)
        self.repos[full_name].rulesets.append(ruleset)
        return ruleset.id

    def set_permission(self, *, full_name: str, username: str, role_name: str) -> None:
        """Make `username` a collaborator with this role (none/read/triage/write/maintain/admin)."""
        if role_name not in ROLE_PERMISSION:
            raise ValueError(f"unknown role {role_name!r}")
        self.users.add(username)
        self.repos[full_name].roles[username] = role_name

    def add_user(self, *, login: str) -> None:
        """A GitHub user who is no collaborator (public repositories: read)."""
        self.users.add(login)

    # -- the OAuth web flow (sign in with GitHub) ---------------------------------------

    def set_oauth_app(self, *, client_id: str, client_secret: str, callback_url: str) -> None:
        """The App's OAuth client: `/login/oauth/authorize` sends people back to
        `callback_url` (the App's "Callback URL") with a code for `client_id`."""
        self.oauth_client_id = client_id
        self.oauth_client_secret = client_secret
        self.oauth_callback_url = callback_url

    def sign_in_as(self, *, login: str | None) -> None:
        """The user signed in to GitHub in the browser: `/login/oauth/authorize` approves
        for them at once (None: nobody, it answers 401 as a sign-in page would)."""
        if login is not None:
            self.users.add(login)
        self.signed_in = login

    def user_token(self, *, login: str, expires_in: float = 8 * 3600.0) -> str:
        """A user access token for `login`, as the code exchange gives one."""
        self.users.add(login)
        token = "ghu_" + uuid.uuid4().hex
        self.tokens[token] = FakeToken(token, None, time.time() + expires_in, user=login)
        return token

    def authorize(self, *, client_id: str, state: str | None, redirect_uri: str | None) -> str:
        """Where `/login/oauth/authorize` sends the browser: the callback with a code."""
        if self.oauth_client_id is None or client_id != self.oauth_client_id:
            raise ApiError(404, "Not Found")
        if self.signed_in is None:
            raise ApiError(401, "Sign in to GitHub first")
        callback = self.oauth_callback_url or ""
        # GitHub takes a redirect_uri only on the callback URL's host and under its path.
        if redirect_uri is not None and not redirect_uri.startswith(callback):
            raise ApiError(400, "The redirect_uri MUST match the registered callback URL")
        code = uuid.uuid4().hex[:20]
        self.oauth_codes[code] = self.signed_in
        query = {"code": code} | ({"state": state} if state is not None else {})
        target = redirect_uri or callback
        return target + ("&" if "?" in target else "?") + _urlencode(query)

    def exchange_code(self, *, client_id: str, client_secret: str, code: str) -> dict[str, Any]:
        """`POST /login/oauth/access_token`: GitHub answers 200 either way, with an
        `error` instead of a token when something is wrong."""
        if client_id != self.oauth_client_id or not hmac.compare_digest(
            client_secret, self.oauth_client_secret
        ):
            return {
                "error": "incorrect_client_credentials",
                "error_description": "The client_id and/or client_secret passed are incorrect.",
            }
        login = self.oauth_codes.pop(code, None)
        if login is None:
            return {
                "error": "bad_verification_code",
                "error_description": "The code passed is incorrect or expired.",
            }
        token = self.user_token(login=login)
        return {"access_token": token, "token_type": "bearer", "scope": ""}

    def user_role(self, *, full_name: str, login: str) -> str:
        """What `login` may do on a repository: its collaborator role, else read on a
        public repository and none on a private one."""
        repo = self._repo(full_name)
        return repo.roles.get(login) or ("none" if repo.private else "read")

    def add_comment(
        self,
        *,
        full_name: str,
        number: int,
        body: str,
        user: str,
        author_association: str = "NONE",
    ) -> int:
        """A comment posted by someone else (e.g. a command), as it would arrive."""
        return self.create_comment(
            full_name=full_name,
            number=number,
            body=body,
            author=user,
            author_association=author_association,
        )

    # -- GitHub's semantics: the HTTP handlers answer with these, in-memory fakes reuse them

    def _repo(self, full_name: str) -> FakeRepo:
        repo = self.repos.get(full_name)
        if repo is None:
            raise ApiError(404, "Not Found")
        return repo

    def _pull(self, full_name: str, number: int) -> tuple[FakeRepo, FakePull]:
        repo = self._repo(full_name)
        pr = repo.pulls.get(int(number))
        if pr is None:
            raise ApiError(404, "Not Found")
        return repo, pr

    def latest_checks(
        self, *, full_name: str, sha: str
    ) -> tuple[list[FakeCheckRun], list[FakeStatus]]:
        """The latest check run per (name, app) and the latest status per context on a
        commit, newest first: what GitHub shows (and counts) for that commit."""
        repo = self._repo(full_name)
        runs: dict[tuple[str, int], FakeCheckRun] = {}
        for run in repo.check_runs:
            if run.head_sha == sha:
                runs[(run.name, run.app_id)] = run
        statuses: dict[str, FakeStatus] = {}
        for st in repo.statuses:
            if st.sha == sha:
                statuses[st.context] = st
        return (
            sorted(runs.values(), key=lambda r: -r.id),
            sorted(statuses.values(), key=lambda st: -st.id),
        )

    def _check_results(
        self, full_name: str, sha: str
    ) -> tuple[set[tuple[str, int | None]], set[str]]:
        """(passing (name, app_id) pairs, names of failing checks) for a commit."""
        runs, statuses = self.latest_checks(full_name=full_name, sha=sha)
        passing: set[tuple[str, int | None]] = set()
        failing: set[str] = set()
        for run in runs:
            if run.status == "completed" and run.conclusion in PASSING_CONCLUSIONS:
                passing.add((run.name, run.app_id))
            elif run.status == "completed":
                failing.add(run.name)
        for st in statuses:
            if st.state == "success":
                passing.add((st.context, None))
            elif st.state in ("failure", "error"):
                failing.add(st.context)
        return passing, failing

    def _rulesets_for(self, repo: FakeRepo, branch: str) -> list[FakeRuleset]:
        return [r for r in repo.rulesets if r.applies_to(branch, repo.default_branch)]

    def active_rulesets(self, *, full_name: str, branch: str) -> list[FakeRuleset]:
        """The active rulesets that apply to `branch`, oldest first."""
        repo = self._repo(full_name)
        return self._rulesets_for(repo, branch)

    def _required(self, repo: FakeRepo, branch: str) -> list[tuple[str, int | None]]:
        """Required (check, app_id or None: any app) of classic protection, then rulesets'."""
        prot = repo.protection.get(branch)
        required = prot.all_checks() if prot is not None else []
        named = {name for name, _ in required}
        for ruleset in self._rulesets_for(repo, branch):
            for name in ruleset.required_checks:
                if name not in named:
                    named.add(name)
                    required.append((name, None))
        return required

    def required_check_names(self, *, full_name: str, branch: str) -> set[str]:
        """Checks branch protection and active rulesets require on `branch` (their union)."""
        return {name for name, _ in self._required(self._repo(full_name), branch)}

    def _head_commit(self, repo: FakeRepo, pr: FakePull) -> str:
        """The pull request's head as a known commit (a test that assigned `head_sha`
        directly gets a commit with that sha on top of the pull's base)."""
        if pr.head_sha not in repo.git:
            parent = pr.base_sha if pr.base_sha in repo.git else repo.branches[pr.base_ref]
            self._commit_on(repo, parent, _pull_file(pr.number), pr.title, sha=pr.head_sha)
        return pr.head_sha

    def _trial_merge(self, repo: FakeRepo, pr: FakePull) -> MergeOutcome | None:
        """The merge of the head into its base as GitHub tries it (None: no base)."""
        base_head = repo.branches.get(pr.base_ref)
        if base_head is None:
            return None
        return repo.git.merge(base_head, self._head_commit(repo, pr))

    def merge_state(self, *, full_name: str, number: int) -> tuple[bool | None, str, str | None]:
        """(mergeable, mergeable_state, why a merge would be refused or None).

        Mergeable comes from a trial merge of the head into the base (and the test
        overrides: `conflict`, `mergeable`); behind means the base's head is not in the
        head's history."""
        repo, pr = self._pull(full_name, number)
        if pr.state == "closed" or pr.merged:
            return None, "unknown", "Pull Request is not mergeable"
        if pr.mergeable_is_unknown:
            return None, "unknown", "Base branch was modified. Review and try the merge again."
        trial = self._trial_merge(repo, pr)
        clean = not pr.conflict and (trial is None or trial.clean)
        mergeable = clean if pr.mergeable_override is None else pr.mergeable_override
        prot = repo.protection.get(pr.base_ref)
        base_head = repo.branches.get(pr.base_ref)
        behind = base_head is not None and not repo.git.is_ancestor(base_head, pr.head_sha)
        passing, failing = self._check_results(full_name, pr.head_sha)
        missing = [
            name
            for name, app_id in self._required(repo, pr.base_ref)
            if not any(n == name and (app_id is None or a in (app_id, None)) for n, a in passing)
        ]
        if pr.mergeable_state_override is not None:
            state = pr.mergeable_state_override
        elif pr.draft:
            state = "draft"
        elif not mergeable:
            state = "dirty"
        elif behind and prot is not None and prot.strict:
            state = "behind"
        elif missing:
            state = "blocked"
        elif failing:
            state = "unstable"
        else:
            state = "clean"
        refusal = {
            "draft": "Pull Request is still a draft",
            "dirty": "Pull Request is not mergeable",
            "behind": "Head branch is out of date. Review and try the merge again.",
            "blocked": f'Required status check "{missing[0]}" is expected.'
            if missing
            else "Blocked",
        }.get(state)
        return mergeable, state, refusal

    def update_branch(self, *, full_name: str, number: int, expected_head_sha: str | None) -> None:
        """Merge the base into the pull request's head: a new head (a merge commit whose
        parents are the old head and the base's head) that includes the base."""
        repo, pr = self._pull(full_name, number)
        if pr.state != "open":
            raise ApiError(422, "Pull request is closed")
        if pr.from_fork and not pr.maintainer_can_modify:
            raise ApiError(403, "You don't have permission to update this pull request.")
        if expected_head_sha is not None and expected_head_sha != pr.head_sha:
            raise ApiError(422, "expected_head_sha does not match the pull request's head")
        base_head = repo.branches[pr.base_ref]
        head = self._head_commit(repo, pr)
        if repo.git.is_ancestor(base_head, head):
            raise ApiError(422, "There are no new commits on the base branch.")
        trial = repo.git.merge(head, base_head)
        if pr.conflict or trial.tree is None:
            raise ApiError(422, "merge conflict between base and head")
        merged = repo.git.commit(
            tree=trial.tree,
            parents=(head, base_head),
            message=f"Merge branch '{pr.base_ref}' into {pr.head_ref}",
        )
        pr.head_sha = merged.sha
        pr.base_sha = base_head
        self._move(repo, pr.head_ref, merged.sha)

    def merge_pull(
        self,
        *,
        full_name: str,
        number: int,
        sha: str | None,
        method: str,
        commit_title: str | None = None,
        commit_message: str | None = None,
    ) -> str:
        """Merge the pull request into its base; returns the new commit's sha.

        `merge` makes a merge commit (parents: the base's head, the pull's head);
        `squash` and `rebase` one commit on top of the base; all with the three-way
        merged tree. 405 when GitHub would refuse (conflict, checks, behind, draft),
        409 when `sha` is not the head."""
        repo, pr = self._pull(full_name, number)
        if method not in ("merge", "squash", "rebase"):
            raise ApiError(422, "Invalid request.\n\nmerge_method is not a valid value.")
        if pr.state == "open" and sha not in (None, pr.head_sha):
            raise ApiError(409, "Head branch was modified. Review and try the merge again.")
        _, _, refusal = self.merge_state(full_name=full_name, number=number)
        if refusal is not None:
            raise ApiError(405, refusal)
        base_head = repo.branches[pr.base_ref]
        head = self._head_commit(repo, pr)
        trial = repo.git.merge(base_head, head)
        if trial.tree is None:
            # Only a test override (mergeable=True) gets here: GitHub cannot merge it.
            raise ApiError(405, "Pull Request is not mergeable")
        if method == "merge":
            title = (
                commit_title or f"Merge pull request #{pr.number} from {repo.owner}/{pr.head_ref}"
            )
            parents: tuple[str, ...] = (base_head, head)
            default_body = pr.title
        elif method == "squash":
            title = commit_title or f"{pr.title} (#{pr.number})"
            parents = (base_head,)
            default_body = ""
        else:
            title = commit_title or repo.git.get(head).message
            parents = (base_head,)
            default_body = ""
        body = commit_message if commit_message is not None else default_body
        merged = repo.git.commit(
            tree=trial.tree,
            parents=parents,
            message=f"{title}\n\n{body}" if body else title,
            author=pr.user,
        )
        self._move(repo, pr.base_ref, merged.sha)
        pr.merged, pr.state, pr.merge_commit_sha = True, "closed", merged.sha
        return merged.sha

    def create_comment(
        self,
        *,
        full_name: str,
        number: int,
        body: str,
        author: str,
        author_association: str = "NONE",
    ) -> int:
        """Comment on a pull request; returns the comment's id."""
        repo, pr = self._pull(full_name, number)
        _check_comment_body(body)
        ident = self.next_id()
        pr.comments.append(ident)
        self.users.add(author)
        self.comments.append(
            FakeComment(ident, repo.full_name, pr.number, body, author, author_association)
        )
        return ident

    def remove_label(self, *, full_name: str, number: int, label: str) -> None:
        _, pr = self._pull(full_name, number)
        if label not in pr.labels:
            raise ApiError(404, "Label does not exist")
        pr.labels.remove(label)

    # -- showing the queue: check runs, commit statuses, comment edits, reactions -------

    def app_identity(self) -> tuple[int, str]:
        """(id, slug) of the App whose installations call: what its check runs carry (id
        1 before `set_app`)."""
        return (self.app_id if self.app_id is not None else 1), self.app_slug

    def create_check_run(
        self,
        *,
        full_name: str,
        head_sha: str,
        name: str,
        status: str | None = None,
        conclusion: str | None = None,
        title: str | None = None,
        summary: str | None = None,
        details_url: str | None = None,
    ) -> int:
        """A check run created by the App (`POST /repos/{o}/{r}/check-runs`), stored like
        `add_check_run`'s (so `latest_checks` and merge states count it); returns its id.

        As on GitHub: 422 for an unknown commit, a bad status or conclusion, `completed`
        without a conclusion, a summary over 65535 characters; a conclusion completes it;
        without `details_url` the App's homepage is its link."""
        repo = self._repo(full_name)
        if not isinstance(head_sha, str) or head_sha not in repo.git:
            raise ApiError(422, f"No commit found for SHA: {head_sha}")
        if not isinstance(name, str) or not name:
            raise ApiError(422, 'Invalid request.\n\n"name" wasn\'t supplied.')
        status, conclusion = _check_state(status or "queued", conclusion, None)
        _check_summary(summary)
        app_id, app_slug = self.app_identity()
        ident = self.add_check_run(
            full_name=full_name,
            head_sha=head_sha,
            name=name,
            status=status,
            conclusion=conclusion,
            app_id=app_id,
            app_slug=app_slug,
        )
        run = repo.check_runs[-1]
        run.title, run.summary = title, summary
        run.details_url = details_url or f"https://{app_slug}.example.com"
        return ident

    def update_check_run(
        self,
        *,
        full_name: str,
        check_run_id: int,
        name: str | None = None,
        status: str | None = None,
        conclusion: str | None = None,
        title: str | None = None,
        summary: str | None = None,
        details_url: str | None = None,
    ) -> None:
        """Change the App's check run (`PATCH .../check-runs/{id}`): fields left None stay.

        404 for a run GitHub does not know (or one `forget_check_run` dropped), 403 for
        another App's run; the other refusals as `create_check_run`."""
        repo = self._repo(full_name)
        run = next((r for r in repo.check_runs if r.id == int(check_run_id)), None)
        if run is None:
            raise ApiError(404, "Not Found")
        if (run.app_id, run.app_slug) != self.app_identity():
            raise ApiError(403, "Resource not accessible by integration")
        new_status, new_conclusion = _check_state(
            status or ("completed" if conclusion else run.status), conclusion, run.conclusion
        )
        _check_summary(summary)
        run.status, run.conclusion = new_status, new_conclusion
        if name:
            run.name = name
        if title is not None:
            run.title = title
        if summary is not None:
            run.summary = summary
        if details_url is not None:
            run.details_url = details_url

    def forget_check_run(self, *, full_name: str, check_run_id: int) -> None:
        """GitHub no longer knows this check run: updating it is 404 from now on."""
        repo = self._repo(full_name)
        repo.check_runs = [r for r in repo.check_runs if r.id != int(check_run_id)]

    def check_runs_json(self, *, full_name: str, sha: str | None = None) -> list[dict[str, Any]]:
        """Every check run of the repository (on `sha`), oldest first, with its output
        `title`/`summary`, `details_url` and the App (`app_id`, `app_slug`)."""
        return [
            vars(r).copy()
            for r in self._repo(full_name).check_runs
            if sha is None or r.head_sha == sha
        ]

    def create_status(
        self,
        *,
        full_name: str,
        sha: str,
        state: str,
        context: str = "default",
        description: str | None = None,
        target_url: str | None = None,
        creator: str = "octocat",
    ) -> int:
        """A commit status (`POST .../statuses/{sha}`); returns its id. 422 for an unknown
        commit (a full sha), a bad state, a description over 140 characters, or the
        1,000th status of one sha and context."""
        repo = self._repo(full_name)
        if not isinstance(sha, str) or sha not in repo.git:
            raise ApiError(422, f"No commit found for SHA: {sha}")
        if state not in STATUS_STATES:
            raise ApiError(422, f"Validation Failed: state is not included in the list ({state!r})")
        if description is not None and len(description) > STATUS_DESCRIPTION_LIMIT:
            raise ApiError(
                422, "Validation Failed: description is too long (maximum is 140 characters)"
            )
        same = sum(1 for st in repo.statuses if st.sha == sha and st.context == context)
        if same >= STATUSES_PER_CONTEXT:
            raise ApiError(422, "This SHA and context has reached the maximum number of statuses.")
        self.users.add(creator)
        st = FakeStatus(self.next_id(), sha, context, state, description, target_url, creator)
        repo.statuses.append(st)
        return st.id

    def statuses_json(self, *, full_name: str, sha: str | None = None) -> list[dict[str, Any]]:
        """Every commit status of the repository (on `sha`), oldest first."""
        return [
            vars(st).copy() for st in self._repo(full_name).statuses if sha is None or st.sha == sha
        ]

    def comment(self, *, full_name: str, comment_id: int) -> FakeComment:
        """The repository's comment `comment_id`; 404 when there is none (or deleted)."""
        self._repo(full_name)
        for c in self.comments:
            if c.id == int(comment_id) and c.repo == full_name:
                return c
        raise ApiError(404, "Not Found")

    def update_comment(self, *, full_name: str, comment_id: int, body: str) -> None:
        """Edit a comment's body (`PATCH .../issues/comments/{id}`): 404 once deleted."""
        comment = self.comment(full_name=full_name, comment_id=comment_id)
        _check_comment_body(body)
        comment.body = body
        comment.updated_at = time.time()

    def delete_comment(self, *, full_name: str, comment_id: int) -> None:
        """Delete a comment (someone removed it): 404 on edits from then on."""
        comment = self.comment(full_name=full_name, comment_id=comment_id)
        self.comments.remove(comment)
        pr = self.repos[full_name].pulls.get(comment.number)
        if pr is not None and comment.id in pr.comments:
            pr.comments.remove(comment.id)

    def add_reaction(
        self, *, full_name: str, comment_id: int, content: str, user: str
    ) -> tuple[int, bool]:
        """React to a comment: (the reaction's id, whether it is new). The same user's
        same reaction is there once (GitHub answers it 200 instead of 201)."""
        comment = self.comment(full_name=full_name, comment_id=comment_id)
        if content not in REACTIONS:
            raise ApiError(422, f"Validation Failed: content is not a valid reaction ({content!r})")
        for reaction in comment.reactions:
            if reaction["content"] == content and reaction["user"] == user:
                return int(reaction["id"]), False
        ident = self.next_id()
        self.users.add(user)
        comment.reactions.append({"id": ident, "content": content, "user": user})
        return ident, True

    def _resolve(self, repo: FakeRepo, ref: str) -> str | None:
        """The commit a branch name or a (prefix of a) sha names."""
        if ref in repo.branches:
            return repo.branches[ref]
        return repo.git.resolve(ref)

    def file_content(self, *, full_name: str, path: str, ref: str | None = None) -> str:
        """The content of `path` at `ref` (a branch, a sha; None: the default branch)."""
        repo = self._repo(full_name)
        ref = ref or repo.default_branch
        sha = self._resolve(repo, ref)
        if sha is None or sha not in repo.git:
            raise ApiError(404, f"No commit found for the ref {ref}")
        tree = repo.git.get(sha).tree
        if path not in tree:
            raise ApiError(404, "Not Found")
        return tree[path]

    def commit_pulls(self, *, full_name: str, sha: str) -> list[FakePull]:
        """GitHub's pull requests of a commit: on the default branch, the merged pull
        request that brought it there; elsewhere, the open ones whose head holds it."""
        repo = self._repo(full_name)
        found = repo.git.resolve(sha)
        if found is None:
            raise ApiError(422, f"No commit found for SHA: {sha}")
        git = repo.git
        on_default = git.is_ancestor(found, repo.branches[repo.default_branch])

        def brought(pr: FakePull) -> bool:
            if pr.merge_commit_sha == found:
                return True
            return (
                pr.head_sha in git
                and git.is_ancestor(found, pr.head_sha)
                and not (pr.base_sha in git and git.is_ancestor(found, pr.base_sha))
            )

        return [
            pr
            for pr in sorted(repo.pulls.values(), key=lambda p: p.number)
            if brought(pr)
            and (
                (pr.merged and pr.base_ref == repo.default_branch)
                if on_default
                else pr.state == "open"
            )
        ]

    def push_event_json(
        self, *, full_name: str, branch: str, before: str, installation_id: int | None = None
    ) -> dict[str, Any]:
        """The `push` webhook GitHub sends for `branch` having moved from `before` to its
        head: the pushed commits (those `before` lacks, oldest first, at most 20 as GitHub
        lists) with the paths each added, modified and removed against its first parent."""
        from tests.fakegithub import shapes

        repo = self._repo(full_name)
        after = repo.branches[branch]
        git = repo.git
        known = git.ancestors(before) if before in git else frozenset()
        pushed = sorted(git.ancestors(after) - known, key=lambda c: (git.generation(c), c))
        commits = []
        for sha in pushed[-20:]:
            c = git.get(sha)
            parent = git.get(c.parents[0]).tree if c.parents else {}
            added = sorted(p for p in c.tree if p not in parent)
            removed = sorted(p for p in parent if p not in c.tree)
            modified = sorted(p for p in c.tree if p in parent and parent[p] != c.tree[p])
            commits.append((c, added, modified, removed))
        payload = shapes.push_event(self.api_url, repo, branch, before, after, commits)
        if installation_id is not None:
            payload["installation"] = {
                "id": installation_id,
                "node_id": shapes.node_id("I", installation_id),
            }
        return payload

    def comparison(self, *, full_name: str, base: str, head: str) -> FakeComparison:
        """GitHub's compare of `base...head` (branch names or shas), from real ancestry:
        ahead_by counts the head's commits the base lacks, behind_by the base's commits
        the head lacks."""
        repo = self._repo(full_name)
        base_sha, head_sha = self._resolve(repo, base), self._resolve(repo, head)
        if base_sha is None or head_sha is None:
            raise ApiError(404, "Not Found")
        found = repo.git.compare(base_sha, head_sha)
        if found is None:
            raise ApiError(404, f"No common ancestor between {base} and {head}.")
        return found

    def compare(self, *, full_name: str, base: str, head: str) -> tuple[str, int, int]:
        """(status, ahead_by, behind_by) of `base...head`: see `comparison`."""
        c = self.comparison(full_name=full_name, base=base, head=head)
        return c.status, c.ahead_by, c.behind_by

    def behind_by(self, *, full_name: str, base: str, head_sha: str) -> int:
        """How many commits of `base` the head lacks."""
        return self.compare(full_name=full_name, base=base, head=head_sha)[2]

    # -- git: refs, merges, commits (the REST handlers answer with these) -----------------

    def git_commit(self, *, full_name: str, sha: str) -> Commit:
        """The commit `sha` (or an unambiguous prefix); 404 when there is none."""
        repo = self._repo(full_name)
        found = repo.git.resolve(sha)
        if found is None:
            raise ApiError(404, "Not Found")
        return repo.git.get(found)

    def get_ref(self, *, full_name: str, ref: str) -> str:
        """The sha the ref `heads/<branch>` points at; 404 when there is no such ref."""
        repo = self._repo(full_name)
        branch = ref.removeprefix("heads/") if ref.startswith("heads/") else None
        if branch is None or branch not in repo.branches:
            raise ApiError(404, "Not Found")
        return repo.branches[branch]

    def matching_refs(self, *, full_name: str, ref: str) -> list[tuple[str, str]]:
        """(fully qualified ref, sha) of every branch whose `heads/<branch>` starts with
        `ref`, sorted by name (empty when none does)."""
        repo = self._repo(full_name)
        return sorted(
            (f"refs/heads/{branch}", sha)
            for branch, sha in repo.branches.items()
            if f"heads/{branch}".startswith(ref)
        )

    def _known_sha(self, repo: FakeRepo, sha: object) -> str:
        if not isinstance(sha, str) or sha not in repo.git:
            raise ApiError(422, "Object does not exist")
        return sha

    def create_ref(self, *, full_name: str, ref: str, sha: str) -> str:
        """Create the branch of `refs/heads/<branch>` at a known commit."""
        repo = self._repo(full_name)
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise ApiError(422, "Reference name must start with 'refs/' and have two slashes.")
        if not ref.startswith("refs/heads/"):
            raise ApiError(422, "The fake GitHub only models branches (refs/heads/...).")
        branch = ref.removeprefix("refs/heads/")
        sha = self._known_sha(repo, sha)
        if branch in repo.branches:
            raise ApiError(422, "Reference already exists")
        self._move(repo, branch, sha)
        return sha

    def update_ref(self, *, full_name: str, ref: str, sha: str, force: bool = False) -> str:
        """Point the branch of `heads/<branch>` at a known commit; without `force` only
        a fast forward (the current head is in the new commit's history)."""
        repo = self._repo(full_name)
        branch = ref.removeprefix("heads/") if ref.startswith("heads/") else None
        if branch is None or branch not in repo.branches:
            raise ApiError(422, "Reference does not exist")
        sha = self._known_sha(repo, sha)
        if not force and not repo.git.is_ancestor(repo.branches[branch], sha):
            raise ApiError(422, "Update is not a fast forward")
        # As on GitHub, a protected branch takes only a commit whose required checks passed
        # (the App is assumed allowed to push there; reviews are not modelled).
        passing, _ = self._check_results(full_name, sha)
        for name, app_id in self._required(repo, branch):
            if not any(n == name and (app_id is None or a in (app_id, None)) for n, a in passing):
                raise ApiError(422, f'Required status check "{name}" is expected.')
        self._move(repo, branch, sha)
        return sha

    def delete_ref(self, *, full_name: str, ref: str) -> None:
        """Delete the branch of `heads/<branch>` (a pull request's head branch too)."""
        repo = self._repo(full_name)
        branch = ref.removeprefix("heads/") if ref.startswith("heads/") else None
        if branch is None or branch not in repo.branches:
            raise ApiError(422, "Reference does not exist")
        if branch == repo.default_branch:
            raise ApiError(422, "Cannot delete the default branch")
        del repo.branches[branch]

    def merge_branches(
        self, *, full_name: str, base: str, head: str, commit_message: str | None = None
    ) -> str | None:
        """GitHub's merges endpoint: merge `head` (a branch or a sha) into the branch
        `base` with a merge commit; its sha, or None (204) when the base has the head
        already. 404 "Base/Head does not exist", 409 "Merge conflict" (also for the head
        of an open pull request flagged `conflict`)."""
        repo = self._repo(full_name)
        if base not in repo.branches:
            raise ApiError(404, "Base does not exist")
        head_sha = self._resolve(repo, head)
        if head_sha is None:
            raise ApiError(404, "Head does not exist")
        base_head = repo.branches[base]
        if repo.git.is_ancestor(head_sha, base_head):
            return None
        flagged = any(
            p.conflict and p.state == "open" and p.head_sha == head_sha for p in repo.pulls.values()
        )
        trial = repo.git.merge(base_head, head_sha)
        if flagged or trial.tree is None:
            raise ApiError(409, "Merge conflict")
        merged = repo.git.commit(
            tree=trial.tree,
            parents=(base_head, head_sha),
            message=commit_message or f"Merge {head} into {base}",
        )
        self._move(repo, base, merged.sha)
        return merged.sha

    def branch_log_json(self, *, full_name: str, branch: str) -> list[dict[str, str]]:
        """Every commit `branch` has pointed at, oldest first: [{"sha", "tree_sha"}]."""
        repo = self._repo(full_name)
        return [
            {"sha": sha, "tree_sha": repo.git.get(sha).tree_sha}
            for sha in repo.moves.get(branch, [])
        ]

    def commit_json(self, *, full_name: str, sha: str) -> dict[str, Any]:
        """A commit: {"sha", "tree_sha", "tree" (path -> content), "parents", "message",
        "author"} (a branch name works too)."""
        repo = self._repo(full_name)
        found = self._resolve(repo, sha)
        if found is None:
            raise ApiError(404, "Not Found")
        c = repo.git.get(found)
        return {
            "sha": c.sha,
            "tree_sha": c.tree_sha,
            "tree": dict(c.tree),
            "parents": list(c.parents),
            "message": c.message,
            "author": c.author,
        }

    # -- scripted CI --------------------------------------------------------------------

    def set_ci(
        self,
        *,
        full_name: str,
        name: str = "ci",
        bad_paths: Iterable[str] = (),
        flaky: Mapping[str, float] | None = None,
        seed: int = 0,
        branches: Iterable[str] = ("mergequeue/*",),
        app_id: int = 15368,
        app_slug: str = "github-actions",
        ci_delay: float | None = None,
    ) -> None:
        """A CI that runs check run `name` on every commit that lands on a branch matching
        `branches` (fnmatch; push, refs API, merges API, pull heads, merges of pulls).

        The outcome comes from the commit's tree: a path matching one of `bad_paths`
        fails it; a path of `flaky` fails a run with that probability (seeded by `seed`,
        the commit and the attempt). A run is pending (`in_progress`) until
        `complete_ci`/`run_ci`, or, with `ci_delay`, completes by itself that many seconds
        later (in a running event loop, e.g. the server) and sends the `check_run` and
        `check_suite` webhooks. Calling again replaces the CI of that name;
        `branches=[]` turns it off."""
        self._repo(full_name)
        self.cis[(full_name, name)] = FakeCI(
            full_name=full_name,
            name=name,
            bad_paths=list(bad_paths),
            flaky={str(k): float(v) for k, v in (flaky or {}).items()},
            seed=int(seed),
            branches=list(branches),
            app_id=int(app_id),
            app_slug=app_slug,
            ci_delay=None if ci_delay is None else float(ci_delay),
        )

    def force_ci(
        self,
        *,
        full_name: str,
        outcomes: Iterable[str] = ("failure",),
        branch: str = "*",
        name: str = "ci",
    ) -> int:
        """Force the outcome of the next runs of CI `name` on a branch matching `branch`
        (fnmatch): the next such run concludes `outcomes[0]` whatever its tree, the one after
        `outcomes[1]`, and so on; runs after those are decided by `set_ci`'s script again.
        E.g. a flaky failure: `force_ci(full_name, ["failure"], branch="mergequeue/*")`.
        Adds to outcomes forced before; returns how many are still to be used."""
        self._repo(full_name)
        for conclusion in outcomes:
            if conclusion not in CI_CONCLUSIONS:
                raise ValueError(f"outcome must be one of {', '.join(CI_CONCLUSIONS)}")
            self.ci_forced.append(FakeCIForced(full_name, name, branch, conclusion))
        return sum(1 for f in self.ci_forced if f.full_name == full_name)

    def _forced(self, full_name: str, name: str, branch: str) -> str | None:
        for forced in self.ci_forced:
            if (
                forced.full_name == full_name
                and forced.name == name
                and fnmatch.fnmatchcase(branch, forced.branch)
            ):
                self.ci_forced.remove(forced)
                return forced.conclusion
        return None

    def _start_ci(
        self,
        repo: FakeRepo,
        branch: str,
        sha: str,
        *,
        only: str | None = None,
        workflow_run_id: int | None = None,
    ) -> None:
        for ci in self.cis.values():
            if ci.full_name != repo.full_name or not ci.runs_on(branch):
                continue
            if only is not None and ci.name != only:
                continue
            commit = repo.git.get(sha)
            attempt = sum(1 for r in self.ci_runs if r.name == ci.name and r.sha == sha)
            conclusion, reason = ci.verdict(commit, attempt)
            forced = self._forced(repo.full_name, ci.name, branch)
            if forced is not None:
                conclusion, reason = forced, f"forced {forced}"
            check_run_id = self.add_check_run(
                full_name=repo.full_name,
                head_sha=sha,
                name=ci.name,
                status="in_progress",
                conclusion=None,
                app_id=ci.app_id,
                app_slug=ci.app_slug,
            )
            run = FakeCIRun(
                check_run_id=check_run_id,
                full_name=repo.full_name,
                name=ci.name,
                sha=sha,
                tree_sha=commit.tree_sha,
                branch=branch,
                conclusion=conclusion,
                reason=reason,
                details_url=f"https://ci.example.com/runs/{check_run_id}",
            )
            if ci.app_slug == ACTIONS_SLUG and workflow_run_id is not None:
                run.workflow_run_id = workflow_run_id  # a re-run: the same workflow run
            elif ci.app_slug == ACTIONS_SLUG:
                run.workflow_run_id = self.next_id()
                run.run_number = 1 + sum(
                    1
                    for r in self.ci_runs
                    if r.full_name == repo.full_name
                    and r.name == ci.name
                    and r.workflow_run_id is not None
                )
            self.ci_runs.append(run)
            if ci.ci_delay is not None:
                self._complete_later(run, ci.ci_delay)

    def _complete_later(self, run: FakeCIRun, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop: stays pending until complete_ci/run_ci
        task = loop.create_task(self._run_after(run, delay))
        self._ci_tasks.add(task)
        task.add_done_callback(self._ci_tasks.discard)

    async def _run_after(self, run: FakeCIRun, delay: float) -> None:
        await asyncio.sleep(delay)
        if run.status != "completed" and run in self.ci_runs:
            self._finish_ci(run)
            await self._announce_ci(run)

    def _finish_ci(self, run: FakeCIRun) -> dict[str, Any]:
        run.status = "completed"
        for check in self.repos[run.full_name].check_runs:
            if check.id == run.check_run_id:
                check.status, check.conclusion = "completed", run.conclusion
                check.summary = f"{run.name}: {run.conclusion} ({run.reason})"
        return vars(run).copy()

    def complete_ci(
        self, *, full_name: str, sha: str | None = None, name: str | None = None
    ) -> list[dict[str, Any]]:
        """Complete the pending CI runs of the repository (only those on `sha`, of check
        `name`, when given) with the outcome decided when they started; returns them as
        `ci_runs_json` does. No webhooks: see `run_ci`."""
        return [
            self._finish_ci(run)
            for run in self.ci_runs
            if run.full_name == full_name
            and run.status != "completed"
            and (sha is None or run.sha == sha)
            and (name is None or run.name == name)
        ]

    async def run_ci(
        self, *, full_name: str, sha: str | None = None, name: str | None = None
    ) -> list[dict[str, Any]]:
        """`complete_ci`, then (when a webhook target is set) the `check_run` completed
        and `check_suite` completed webhooks of each run, as GitHub sends them."""
        done = self.complete_ci(full_name=full_name, sha=sha, name=name)
        for item in done:
            run = next(r for r in self.ci_runs if r.check_run_id == item["check_run_id"])
            await self._announce_ci(run)
        return done

    async def _announce_ci(self, run: FakeCIRun) -> None:
        if self.webhook_url is None:
            return
        from tests.fakegithub import shapes

        repo = self.repos[run.full_name]
        check = next(c for c in repo.check_runs if c.id == run.check_run_id)
        pulls = [p for p in repo.pulls.values() if p.head_sha == run.sha and p.state == "open"]
        installation = next(
            (i for i, inst in self.installations.items() if run.full_name in inst["repositories"]),
            None,
        )
        commit = repo.git.get(run.sha)
        for event, payload in (
            ("check_run", shapes.check_run_event(self.api_url, repo, check, pulls, run.branch)),
            (
                "check_suite",
                shapes.check_suite_event(self.api_url, repo, check, pulls, run.branch, commit),
            ),
        ):
            if installation is not None:
                payload["installation"] = {
                    "id": installation,
                    "node_id": shapes.node_id("I", installation),
                }
            await self.send_webhook(event=event, payload=payload)

    def workflow_runs(
        self, *, full_name: str, branch: str | None = None, status: str | None = None
    ) -> list[FakeCIRun]:
        """The repository's GitHub Actions workflow runs (scripted CI runs whose app is
        github-actions; a re-run's latest attempt stands for its run), newest first; only
        those on `branch`, and with `status` as their status or conclusion (GitHub's
        filter), when given."""
        latest: dict[int, FakeCIRun] = {}
        for r in self.ci_runs:
            if r.full_name == full_name and r.workflow_run_id is not None:
                latest[r.workflow_run_id] = r
        runs = [
            r
            for r in latest.values()
            if (branch is None or r.branch == branch)
            and (
                status is None
                or r.status == status
                or (r.status == "completed" and r.conclusion == status)
            )
        ]
        return sorted(runs, key=lambda r: -(r.workflow_run_id or 0))

    def cancel_workflow_run(
        self, *, full_name: str, run_id: int, installation_id: int | None = None
    ) -> None:
        """Cancel a workflow run, as `POST .../actions/runs/{run_id}/cancel` does: the run
        and its check run end `completed`/`cancelled` (no webhooks). 403 when the
        installation (None: a static token, allowed) lacks `actions: write`, 404 for an
        unknown run, 409 when it has completed already."""
        granted = self.permissions_of(installation_id)
        if granted is not None and granted.get("actions") != "write":
            raise ApiError(403, NOT_ACCESSIBLE)
        run = next(
            (r for r in self.workflow_runs(full_name=full_name) if r.workflow_run_id == run_id),
            None,
        )
        if run is None:
            raise ApiError(404, "Not Found")
        if run.status == "completed":
            raise ApiError(409, "Cannot cancel a workflow run that is completed.")
        run.status, run.conclusion, run.reason = "completed", "cancelled", "cancelled"
        for check in self.repos[full_name].check_runs:
            if check.id == run.check_run_id:
                check.status, check.conclusion = "completed", "cancelled"
                check.summary = f"{run.name}: cancelled"

    def rerun_failed_jobs(
        self, *, full_name: str, run_id: int, installation_id: int | None = None
    ) -> None:
        """Re-run a workflow run's failed jobs, as `POST .../actions/runs/{run_id}/
        rerun-failed-jobs` does: a new attempt of the scripted CI on the same commit, its
        outcome decided afresh (a flaky path may pass this time). 403 without `actions:
        write`, 404 for an unknown run, 403 "...not failed" (GitHub's 403) when it did not
        fail."""
        granted = self.permissions_of(installation_id)
        if granted is not None and granted.get("actions") != "write":
            raise ApiError(403, NOT_ACCESSIBLE)
        run = next(
            (r for r in self.workflow_runs(full_name=full_name) if r.workflow_run_id == run_id),
            None,
        )
        if run is None:
            raise ApiError(404, "Not Found")
        if run.status != "completed" or run.conclusion != "failure":
            raise ApiError(403, "This workflow run has no failed jobs to re-run.")
        repo = self.repos[full_name]
        self._start_ci(repo, run.branch, run.sha, only=run.name, workflow_run_id=run_id)

    def ci_runs_json(self, *, full_name: str | None = None) -> list[dict[str, Any]]:
        """Every scripted CI run, oldest first: {"check_run_id", "full_name", "name",
        "sha", "tree_sha", "branch", "status" (in_progress/completed), "conclusion" (decided
        at the start; "cancelled" once cancelled), "reason", "details_url",
        "workflow_run_id" (None unless its app is github-actions), "run_number",
        "created_at"}."""
        return [
            vars(run).copy()
            for run in self.ci_runs
            if full_name is None or run.full_name == full_name
        ]

    def permission_of(self, *, full_name: str, username: str) -> tuple[str, str]:
        """(permission, role_name) as GitHub's collaborator permission endpoint gives them.

        A user who is no collaborator reads a public repository and has no access to a
        private one; an unknown login is 404.
        """
        repo = self._repo(full_name)
        role = repo.roles.get(username)
        if role is None:
            if username not in self.users:
                raise ApiError(404, "Not Found")
            role = "none" if repo.private else "read"
        return ROLE_PERMISSION[role], role

    # -- webhooks -------------------------------------------------------------------------

    def set_webhook_target(
        self,
        *,
        url: str | None,
        secret: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """The App's webhook URL and secret (`transport`, in process only, replaces the
        network, e.g. `httpx.ASGITransport(app)`)."""
        self.webhook_url = url
        self.webhook_secret = secret
        self.webhook_transport = transport

    async def send_webhook(self, *, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Deliver `event` to the webhook target as GitHub does, signed, and record the
        attempt: {"id", "guid", "status_code"} (status_code 0 when the target is down)."""
        body = json.dumps(payload).encode()
        delivery = await self._attempt(str(uuid.uuid4()), event, body, redelivery=False)
        return {"id": delivery.id, "guid": delivery.guid, "status_code": delivery.status_code}

    async def redeliver(self, *, delivery_id: int) -> dict[str, Any]:
        """Deliver a recorded delivery again: same guid and body, `redelivery` true."""
        original = next((d for d in self.deliveries if d.id == int(delivery_id)), None)
        if original is None:
            raise ApiError(404, "Not Found")
        if self.webhook_url is None:
            raise ApiError(422, "The App has no webhook URL")
        delivery = await self._attempt(
            original.guid, original.event, original.payload, redelivery=True
        )
        return {"id": delivery.id, "guid": delivery.guid, "status_code": delivery.status_code}

    def deliveries_json(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in vars(d).items() if k != "payload"} for d in self.deliveries]

    def _signed_headers(self, guid: str, event: str, body: bytes) -> dict[str, str]:
        secret = self.webhook_secret.encode()
        return {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/fake",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid,
            "X-GitHub-Hook-ID": "1",
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-GitHub-Hook-Installation-Target-ID": str(self.app_id or 0),
            "X-Hub-Signature": "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest(),
        }

    async def _attempt(
        self, guid: str, event: str, body: bytes, *, redelivery: bool
    ) -> FakeDelivery:
        if self.webhook_url is None:
            raise ValueError("no webhook target: call set_webhook_target first")
        payload = json.loads(body)
        action = payload.get("action")
        installation = payload.get("installation") or {}
        repository = payload.get("repository") or {}
        delivery = FakeDelivery(
            id=self.next_id(),
            guid=guid,
            event=event,
            action=action if isinstance(action, str) else None,
            installation_id=installation.get("id"),
            repository_id=repository.get("id"),
            payload=body,
            redelivery=redelivery,
            delivered_at=time.time(),
        )
        start = time.perf_counter()
        headers = self._signed_headers(guid, event, body)
        try:
            # GitHub gives a receiver 10 s to answer.
            async with httpx.AsyncClient(transport=self.webhook_transport, timeout=10.0) as http:
                response = await http.post(self.webhook_url, content=body, headers=headers)
        except httpx.TimeoutException:
            delivery.status = "timed out"
        except httpx.HTTPError:
            delivery.status = "failed"
        else:
            delivery.status_code = response.status_code
            ok = 200 <= response.status_code < 300
            delivery.status = "OK" if ok else f"Invalid HTTP Response: {response.status_code}"
        delivery.duration = round(time.perf_counter() - start, 3)
        # Listed once the attempt is over, as GitHub lists it: an attempt still in flight is
        # not yet a failed one that the service would ask to redeliver.
        self.deliveries.append(delivery)
        return delivery

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

    def points(self, identity: str | int | None = None) -> int:
        """REST calls that counted against the rate limit (of one identity, or of all)."""
        return sum(
            1 for c in self.calls if c.counted and (identity is None or c.identity == str(identity))
        )

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
