"""The few fields of GitHub's answers that the merge queue uses, parsed defensively.

GitHub's objects carry dozens of fields; these keep what decisions need, so callers never
index raw JSON. Missing optional fields get neutral defaults; a missing essential field
raises `MalformedResponse` naming it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mergequeue.github.auth import parse_github_time
from mergequeue.github.errors import GitHubError

__all__ = [
    "Branch",
    "CheckConclusion",
    "CheckRun",
    "CheckStatus",
    "CollaboratorPermission",
    "CombinedStatus",
    "Comment",
    "CommitPull",
    "CommitStatus",
    "Comparison",
    "FileContents",
    "GitCommit",
    "GitRef",
    "HookDelivery",
    "HookDeliveryPage",
    "Installation",
    "IssueComment",
    "MalformedResponse",
    "MergeMethod",
    "MergeResult",
    "PullRequest",
    "Reaction",
    "ReactionContent",
    "Repository",
    "RequiredCheck",
    "RequiredStatusChecks",
    "StatusState",
    "WorkflowRun",
]

MergeMethod = Literal["merge", "squash", "rebase"]
# What a check run's author may set (GitHub Actions alone sets waiting/requested/pending,
# GitHub alone `stale`).
CheckStatus = Literal["queued", "in_progress", "completed"]
CheckConclusion = Literal[
    "action_required", "cancelled", "failure", "neutral", "success", "skipped", "timed_out"
]
StatusState = Literal["error", "failure", "pending", "success"]
ReactionContent = Literal["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"]

Json = Mapping[str, Any]


class MalformedResponse(GitHubError):
    """GitHub answered 2xx with a body lacking a field the merge queue needs."""


def _obj(value: object, where: str) -> Json:
    if not isinstance(value, Mapping):
        raise MalformedResponse(0, f"expected an object at {where}")
    return value


def _sub(data: Json, key: str) -> Json:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _req_str(data: Json, key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise MalformedResponse(0, f"missing string {where}.{key}")
    return value


def _req_int(data: Json, key: str, where: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedResponse(0, f"missing integer {where}.{key}")
    return value


def _str(data: Json, key: str, default: str = "") -> str:
    value = data.get(key)
    return value if isinstance(value, str) else default


def _opt_str(data: Json, key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _opt_int(data: Json, key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bool(data: Json, key: str, default: bool = False) -> bool:
    value = data.get(key)
    return value if isinstance(value, bool) else default


def _list(data: Json, key: str) -> list[Json]:
    value = data.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def label_names(items: object) -> tuple[str, ...]:
    if not isinstance(items, list):
        return ()
    return tuple(
        item["name"]
        for item in items
        if isinstance(item, Mapping) and isinstance(item.get("name"), str)
    )


@dataclass(frozen=True, slots=True)
class PullRequest:
    number: int
    state: str  # "open" or "closed"
    merged: bool
    draft: bool
    title: str
    author: str
    head_sha: str
    head_ref: str
    head_repo_full_name: str | None  # None when the fork was deleted
    base_ref: str
    base_sha: str
    base_repo_full_name: str
    # None while GitHub is still computing it: read again shortly.
    mergeable: bool | None
    # clean, behind, dirty, blocked, unstable, has_hooks, draft or unknown
    mergeable_state: str
    labels: tuple[str, ...]
    merge_commit_sha: str | None
    html_url: str

    @property
    def is_open(self) -> bool:
        return self.state == "open" and not self.merged

    @property
    def from_fork(self) -> bool:
        return self.head_repo_full_name != self.base_repo_full_name

    @classmethod
    def from_json(cls, value: object) -> PullRequest:
        data = _obj(value, "pull_request")
        head, base = _sub(data, "head"), _sub(data, "base")
        mergeable = data.get("mergeable")
        return cls(
            number=_req_int(data, "number", "pull_request"),
            state=_str(data, "state", "open"),
            merged=_bool(data, "merged") or data.get("merged_at") is not None,
            draft=_bool(data, "draft"),
            title=_str(data, "title"),
            author=_str(_sub(data, "user"), "login"),
            head_sha=_req_str(head, "sha", "pull_request.head"),
            head_ref=_str(head, "ref"),
            head_repo_full_name=_opt_str(_sub(head, "repo"), "full_name"),
            base_ref=_req_str(base, "ref", "pull_request.base"),
            base_sha=_str(base, "sha"),
            base_repo_full_name=_str(_sub(base, "repo"), "full_name"),
            mergeable=mergeable if isinstance(mergeable, bool) else None,
            mergeable_state=_str(data, "mergeable_state", "unknown"),
            labels=label_names(data.get("labels")),
            merge_commit_sha=_opt_str(data, "merge_commit_sha"),
            html_url=_str(data, "html_url"),
        )


@dataclass(frozen=True, slots=True)
class CheckRun:
    id: int
    name: str
    head_sha: str
    status: str  # queued, in_progress, completed, waiting, requested, pending
    conclusion: str | None  # success, failure, neutral, cancelled, skipped, timed_out, ...
    app_id: int | None
    app_slug: str | None
    details_url: str | None
    # The output shown on the check's page.
    title: str | None = None
    summary: str | None = None

    @classmethod
    def from_json(cls, value: object) -> CheckRun:
        data = _obj(value, "check_run")
        app = _sub(data, "app")
        output = _sub(data, "output")
        return cls(
            id=_req_int(data, "id", "check_run"),
            name=_req_str(data, "name", "check_run"),
            head_sha=_str(data, "head_sha"),
            status=_str(data, "status", "queued"),
            conclusion=_opt_str(data, "conclusion"),
            app_id=_opt_int(app, "id"),
            app_slug=_opt_str(app, "slug"),
            details_url=_opt_str(data, "details_url"),
            title=_opt_str(output, "title"),
            summary=_opt_str(output, "summary"),
        )


@dataclass(frozen=True, slots=True)
class CommitStatus:
    context: str
    state: str  # error, failure, pending, success
    description: str | None
    target_url: str | None

    @classmethod
    def from_json(cls, value: object) -> CommitStatus:
        data = _obj(value, "status")
        return cls(
            context=_req_str(data, "context", "status"),
            state=_req_str(data, "state", "status"),
            description=_opt_str(data, "description"),
            target_url=_opt_str(data, "target_url"),
        )


@dataclass(frozen=True, slots=True)
class CombinedStatus:
    sha: str
    state: str  # failure, pending or success (pending also when there are no statuses)
    statuses: tuple[CommitStatus, ...]
    total_count: int

    @classmethod
    def from_json(cls, value: object) -> CombinedStatus:
        data = _obj(value, "combined_status")
        statuses = tuple(CommitStatus.from_json(s) for s in _list(data, "statuses"))
        return cls(
            sha=_str(data, "sha"),
            state=_req_str(data, "state", "combined_status"),
            statuses=statuses,
            total_count=_opt_int(data, "total_count") or len(statuses),
        )


@dataclass(frozen=True, slots=True)
class RequiredCheck:
    context: str
    app_id: int | None  # None: any app (or a commit status) may satisfy it


@dataclass(frozen=True, slots=True)
class RequiredStatusChecks:
    strict: bool  # branch must be up to date with the base before merging
    contexts: tuple[str, ...]
    checks: tuple[RequiredCheck, ...]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.contexts) | {c.context for c in self.checks}

    @classmethod
    def from_json(cls, value: object) -> RequiredStatusChecks:
        data = _obj(value, "required_status_checks")
        contexts = data.get("contexts")
        return cls(
            strict=_bool(data, "strict"),
            contexts=tuple(c for c in contexts if isinstance(c, str))
            if isinstance(contexts, list)
            else (),
            checks=tuple(
                RequiredCheck(
                    context=_req_str(c, "context", "checks[]"), app_id=_opt_int(c, "app_id")
                )
                for c in _list(data, "checks")
            ),
        )


@dataclass(frozen=True, slots=True)
class Branch:
    name: str
    sha: str
    protected: bool

    @classmethod
    def from_json(cls, value: object) -> Branch:
        data = _obj(value, "branch")
        return cls(
            name=_req_str(data, "name", "branch"),
            sha=_req_str(_sub(data, "commit"), "sha", "branch.commit"),
            protected=_bool(data, "protected"),
        )


@dataclass(frozen=True, slots=True)
class Repository:
    id: int
    owner: str
    name: str
    full_name: str
    default_branch: str
    private: bool
    archived: bool

    @classmethod
    def from_json(cls, value: object) -> Repository:
        data = _obj(value, "repository")
        full_name = _req_str(data, "full_name", "repository")
        owner, _, name = full_name.partition("/")
        return cls(
            id=_req_int(data, "id", "repository"),
            owner=_str(_sub(data, "owner"), "login", owner),
            name=_str(data, "name", name),
            full_name=full_name,
            default_branch=_str(data, "default_branch", "main"),
            private=_bool(data, "private"),
            archived=_bool(data, "archived"),
        )


@dataclass(frozen=True, slots=True)
class MergeResult:
    sha: str
    merged: bool
    message: str

    @classmethod
    def from_json(cls, value: object) -> MergeResult:
        data = _obj(value, "merge_result")
        return cls(
            sha=_req_str(data, "sha", "merge_result"),
            merged=_bool(data, "merged"),
            message=_str(data, "message"),
        )


@dataclass(frozen=True, slots=True)
class Comment:
    id: int
    html_url: str

    @classmethod
    def from_json(cls, value: object) -> Comment:
        data = _obj(value, "comment")
        return cls(id=_req_int(data, "id", "comment"), html_url=_str(data, "html_url"))


@dataclass(frozen=True, slots=True)
class Reaction:
    """A reaction on an issue or pull request comment."""

    id: int
    content: str  # +1, -1, laugh, confused, heart, hooray, rocket, eyes
    user: str

    @classmethod
    def from_json(cls, value: object) -> Reaction:
        data = _obj(value, "reaction")
        return cls(
            id=_req_int(data, "id", "reaction"),
            content=_req_str(data, "content", "reaction"),
            user=_str(_sub(data, "user"), "login"),
        )


def _time(data: Json, key: str, where: str) -> float:
    value = _req_str(data, key, where)
    try:
        return parse_github_time(value)
    except ValueError as exc:
        raise MalformedResponse(0, f"bad time {where}.{key}: {value!r}") from exc


@dataclass(frozen=True, slots=True)
class Comparison:
    """GitHub's compare of base...head."""

    status: str  # identical, ahead, behind or diverged
    ahead_by: int
    behind_by: int

    @classmethod
    def from_json(cls, value: object) -> Comparison:
        data = _obj(value, "comparison")
        return cls(
            status=_req_str(data, "status", "comparison"),
            ahead_by=_req_int(data, "ahead_by", "comparison"),
            behind_by=_req_int(data, "behind_by", "comparison"),
        )


@dataclass(frozen=True, slots=True)
class GitRef:
    """A git reference: `ref` fully qualified (refs/heads/main) and the commit it names."""

    ref: str
    sha: str

    @property
    def branch(self) -> str | None:
        """The branch name of a refs/heads/ reference (None for tags and others)."""
        prefix = "refs/heads/"
        return self.ref[len(prefix) :] if self.ref.startswith(prefix) else None

    @classmethod
    def from_json(cls, value: object) -> GitRef:
        data = _obj(value, "git_ref")
        return cls(
            ref=_req_str(data, "ref", "git_ref"),
            sha=_req_str(_sub(data, "object"), "sha", "git_ref.object"),
        )


@dataclass(frozen=True, slots=True)
class GitCommit:
    """A commit's identity and content: equal `tree_sha` means equal files."""

    sha: str
    tree_sha: str
    parents: tuple[str, ...]
    message: str

    @classmethod
    def from_json(cls, value: object) -> GitCommit:
        """From the git database's commit (`GET /git/commits/{sha}`)."""
        data = _obj(value, "git_commit")
        return cls(
            sha=_req_str(data, "sha", "git_commit"),
            tree_sha=_req_str(_sub(data, "tree"), "sha", "git_commit.tree"),
            parents=_parent_shas(data),
            message=_str(data, "message"),
        )

    @classmethod
    def from_commit_json(cls, value: object) -> GitCommit:
        """From a REST commit (the merges endpoint, compare, branches): the git commit's
        fields sit under `commit`."""
        data = _obj(value, "commit")
        inner = _sub(data, "commit")
        return cls(
            sha=_req_str(data, "sha", "commit"),
            tree_sha=_req_str(_sub(inner, "tree"), "sha", "commit.commit.tree"),
            parents=_parent_shas(data),
            message=_str(inner, "message"),
        )


def _parent_shas(data: Json) -> tuple[str, ...]:
    return tuple(_req_str(p, "sha", "parents[]") for p in _list(data, "parents"))


@dataclass(frozen=True, slots=True)
class IssueComment:
    """A comment on an issue or pull request, as the repository's comment list gives it."""

    id: int
    number: int  # of the issue or pull request
    author: str
    author_association: str  # OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE, ...
    body: str
    created_at: float  # Unix time

    @classmethod
    def from_json(cls, value: object) -> IssueComment:
        data = _obj(value, "issue_comment")
        issue_url = _req_str(data, "issue_url", "issue_comment")
        number = issue_url.rstrip("/").rsplit("/", 1)[-1]
        if not number.isdigit():
            raise MalformedResponse(0, f"issue_comment.issue_url has no number: {issue_url!r}")
        return cls(
            id=_req_int(data, "id", "issue_comment"),
            number=int(number),
            author=_str(_sub(data, "user"), "login"),
            author_association=_str(data, "author_association", "NONE"),
            body=_str(data, "body"),
            created_at=_time(data, "created_at", "issue_comment"),
        )


def may_write_actions(permissions: object) -> bool:
    """Whether GitHub's `permissions` object (an installation's, or an installation
    token's) grants `actions: write`: what cancelling a workflow run needs."""
    return isinstance(permissions, Mapping) and permissions.get("actions") == "write"


@dataclass(frozen=True, slots=True)
class Installation:
    id: int
    account_login: str
    suspended: bool
    # The installation granted `actions: write` (cancelling workflow runs).
    actions_write: bool = False

    @classmethod
    def from_json(cls, value: object) -> Installation:
        data = _obj(value, "installation")
        return cls(
            id=_req_int(data, "id", "installation"),
            account_login=_str(_sub(data, "account"), "login"),
            suspended=data.get("suspended_at") is not None,
            actions_write=may_write_actions(data.get("permissions")),
        )


@dataclass(frozen=True, slots=True)
class WorkflowRun:
    """A GitHub Actions workflow run: enough to know whether to cancel it."""

    id: int
    status: str  # queued / in_progress / waiting / requested / pending / completed
    conclusion: str | None
    head_branch: str | None
    head_sha: str

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @classmethod
    def from_json(cls, value: object) -> WorkflowRun:
        data = _obj(value, "workflow_run")
        return cls(
            id=_req_int(data, "id", "workflow_run"),
            status=_str(data, "status", "queued"),
            conclusion=_opt_str(data, "conclusion"),
            head_branch=_opt_str(data, "head_branch"),
            head_sha=_str(data, "head_sha"),
        )


@dataclass(frozen=True, slots=True)
class HookDelivery:
    """One attempt to deliver one of the App's webhooks."""

    id: int
    guid: str  # X-GitHub-Delivery: the same for every redelivery of an event
    delivered_at: float  # Unix time
    redelivery: bool
    duration: float
    status: str
    status_code: int  # 0: no answer (connection failed, timed out)
    event: str
    action: str | None
    installation_id: int | None
    repository_id: int | None

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300

    @classmethod
    def from_json(cls, value: object) -> HookDelivery:
        data = _obj(value, "hook_delivery")
        duration = data.get("duration")
        return cls(
            id=_req_int(data, "id", "hook_delivery"),
            guid=_req_str(data, "guid", "hook_delivery"),
            delivered_at=_time(data, "delivered_at", "hook_delivery"),
            redelivery=_bool(data, "redelivery"),
            duration=float(duration) if isinstance(duration, int | float) else 0.0,
            status=_str(data, "status"),
            status_code=_opt_int(data, "status_code") or 0,
            event=_str(data, "event"),
            action=_opt_str(data, "action"),
            installation_id=_opt_int(data, "installation_id"),
            repository_id=_opt_int(data, "repository_id"),
        )


@dataclass(frozen=True, slots=True)
class HookDeliveryPage:
    deliveries: tuple[HookDelivery, ...]
    # Pass to the next call for the following (older) page; None on the last page.
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class CollaboratorPermission:
    permission: str  # admin, write, read or none
    role_name: str  # none, read, triage, write, maintain, admin or a custom role ("" if absent)

    @property
    def role(self) -> str:
        """The finer role name, or the permission when GitHub gives no role."""
        return self.role_name or self.permission

    @classmethod
    def from_json(cls, value: object) -> CollaboratorPermission:
        data = _obj(value, "collaborator_permission")
        permission = _str(data, "permission")
        role_name = _str(data, "role_name")
        if not permission and not role_name:
            raise MalformedResponse(0, "collaborator permission lacks permission and role_name")
        return cls(permission=permission, role_name=role_name)


@dataclass(frozen=True, slots=True)
class FileContents:
    """A file of a repository at a ref (`GET /repos/{o}/{r}/contents/{path}`).

    `content` is None when GitHub did not send it (a file over 1 MB comes with encoding
    `none`) or when the path is not a file (`type`: `dir`, `symlink`, `submodule`)."""

    path: str
    sha: str
    size: int
    type: str
    content: bytes | None

    @classmethod
    def from_json(cls, value: object) -> FileContents:
        if isinstance(value, list):
            # A directory is answered with the list of its entries.
            return cls(path="", sha="", size=0, type="dir", content=None)
        data = _obj(value, "content")
        kind = _str(data, "type", "file")
        content: bytes | None = None
        if kind == "file" and _str(data, "encoding") == "base64":
            raw = _str(data, "content")
            try:
                # GitHub wraps its base64 at 60 characters.
                content = base64.b64decode("".join(raw.split()), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise MalformedResponse(200, "content is not base64") from exc
        return cls(
            path=_str(data, "path"),
            sha=_str(data, "sha"),
            size=_opt_int(data, "size") or 0,
            type=kind,
            content=content,
        )


@dataclass(frozen=True, slots=True)
class CommitPull:
    """A pull request associated with a commit (`GET .../commits/{sha}/pulls`)."""

    number: int
    state: str
    merged: bool
    base_ref: str

    @classmethod
    def from_json(cls, value: object) -> CommitPull:
        data = _obj(value, "pull_request")
        return cls(
            number=_req_int(data, "number", "pull_request"),
            state=_str(data, "state"),
            merged=data.get("merged_at") is not None,
            base_ref=_str(_sub(data, "base"), "ref"),
        )
