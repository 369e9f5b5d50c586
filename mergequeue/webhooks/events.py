"""What a delivery means: pure functions from (event, payload) to state changes.

Only the fields the merge queue needs are read. A payload missing one of them raises
UnusableDelivery, which marks the delivery failed rather than retrying it forever.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mergequeue.models import PullRequestState
from mergequeue.queue.config_file import CONFIG_PATH

# Events GitHub sends to Apps (and repository webhooks). Anything else is labelled
# "other" in metrics, so a forged header cannot create a series.
KNOWN_EVENTS = frozenset(
    {
        "branch_protection_configuration",
        "branch_protection_rule",
        "check_run",
        "check_suite",
        "code_scanning_alert",
        "commit_comment",
        "create",
        "delete",
        "deployment",
        "deployment_protection_rule",
        "deployment_review",
        "deployment_status",
        "discussion",
        "discussion_comment",
        "fork",
        "github_app_authorization",
        "gollum",
        "installation",
        "installation_repositories",
        "installation_target",
        "issue_comment",
        "issues",
        "label",
        "member",
        "membership",
        "merge_group",
        "meta",
        "milestone",
        "organization",
        "package",
        "page_build",
        "ping",
        "project",
        "project_card",
        "project_column",
        "projects_v2",
        "projects_v2_item",
        "projects_v2_status_update",
        "public",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "pull_request_review_thread",
        "push",
        "registry_package",
        "release",
        "repository",
        "repository_dispatch",
        "repository_ruleset",
        "repository_vulnerability_alert",
        "secret_scanning_alert",
        "security_advisory",
        "security_and_analysis",
        "sponsorship",
        "star",
        "status",
        "team",
        "team_add",
        "watch",
        "workflow_dispatch",
        "workflow_job",
        "workflow_run",
    }
)
OTHER_EVENT = "other"

COMMAND_PREFIX = "/mergequeue"
# A push webhook lists at most this many commits: a push of that many may have changed the
# settings file in one it leaves out, so the file is read then too.
PUSH_COMMITS_LISTED = 20
# How many of a push's commits that touched the settings file are asked for their pull
# request (newest first) when the file is invalid.
MAX_BLAME_COMMITS = 3


class UnusableDelivery(ValueError):
    """The payload lacks what its event needs; retrying will not help."""


@dataclass(frozen=True)
class UpsertInstallation:
    id: int
    account_login: str
    suspended: bool
    # Whether it granted `actions: write`; None when the payload does not say.
    actions_write: bool | None = None


@dataclass(frozen=True)
class DeleteInstallation:
    id: int


@dataclass(frozen=True)
class UpsertRepository:
    id: int
    owner: str
    name: str
    default_branch: str | None
    installation_id: int | None


@dataclass(frozen=True)
class DetachRepository:
    id: int


@dataclass(frozen=True)
class UpsertPullRequest:
    repository_id: int
    number: int
    title: str
    author: str
    head_sha: str
    head_ref: str
    base_ref: str
    state: PullRequestState
    labels: tuple[str, ...]
    github_updated_at: datetime | None


@dataclass(frozen=True)
class QueueCommand:
    """A `/mergequeue merge|cancel` comment on a pull request."""

    repository_id: int
    number: int
    command: str
    author: str
    # GitHub's author_association: the cheap first test of who may command the queue.
    association: str = "NONE"
    comment_id: int = 0


@dataclass(frozen=True)
class LabelChanged:
    """A label added to or removed from a pull request (the queue label queues it)."""

    repository_id: int
    number: int
    label: str
    added: bool
    by: str


@dataclass(frozen=True)
class PullRequestClosed:
    repository_id: int
    number: int
    merged: bool


@dataclass(frozen=True)
class SyncInstallation:
    """Re-read an installation's repositories from the API (payloads lack their details)."""

    installation_id: int


@dataclass(frozen=True)
class WakeQueue:
    """Something the queue of this repository depends on changed."""

    repository_id: int
    reason: str


@dataclass(frozen=True)
class ConfigFileChanged:
    """A push to the default branch that changed `.github/mergequeue.yml` (its commits'
    added/modified/removed lists say so): the file is read at `after`."""

    repository_id: int
    after: str
    # The pushed commits that touched the file, newest first: whose pull request hears
    # about an invalid file.
    commits: tuple[str, ...]
    # Its last change removed it: the settings stay as they are.
    removed: bool = False


Change = (
    UpsertInstallation
    | DeleteInstallation
    | UpsertRepository
    | DetachRepository
    | UpsertPullRequest
    | QueueCommand
    | LabelChanged
    | PullRequestClosed
    | SyncInstallation
    | WakeQueue
    | ConfigFileChanged
)


def metric_event(event: str) -> str:
    return event if event in KNOWN_EVENTS else OTHER_EVENT


def interpret(event: str, payload: Mapping[str, Any]) -> list[Change]:
    try:
        handler = _HANDLERS.get(event)
        return handler(payload) if handler else []
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UnusableDelivery(f"{event}: {type(exc).__name__}: {exc}") from None


def _installation_id(payload: Mapping[str, Any]) -> int | None:
    installation = payload.get("installation")
    return int(installation["id"]) if isinstance(installation, Mapping) else None


def _repository(payload: Mapping[str, Any], installation_id: int | None) -> UpsertRepository:
    repo = payload["repository"]
    owner, _, name = str(repo["full_name"]).partition("/")
    return UpsertRepository(
        id=int(repo["id"]),
        owner=owner,
        name=name,
        default_branch=repo.get("default_branch"),
        installation_id=installation_id,
    )


def _listed_repository(repo: Mapping[str, Any], installation_id: int | None) -> UpsertRepository:
    owner, _, name = str(repo["full_name"]).partition("/")
    return UpsertRepository(
        id=int(repo["id"]),
        owner=owner,
        name=name,
        default_branch=None,
        installation_id=installation_id,
    )


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _actions_write(installation: Mapping[str, Any]) -> bool | None:
    """Whether the installation object grants `actions: write` (None: no permissions in
    it). `new_permissions_accepted` carries the permissions just accepted."""
    permissions = installation.get("permissions")
    if not isinstance(permissions, Mapping):
        return None
    return permissions.get("actions") == "write"


def _on_installation(payload: Mapping[str, Any]) -> list[Change]:
    installation = payload["installation"]
    installation_id = int(installation["id"])
    action = payload["action"]
    if action == "deleted":
        return [DeleteInstallation(installation_id)]
    changes: list[Change] = [
        UpsertInstallation(
            id=installation_id,
            account_login=str(installation["account"]["login"]),
            suspended=action == "suspend" or bool(installation.get("suspended_at")),
            actions_write=_actions_write(installation),
        )
    ]
    if action == "created":
        changes += [
            _listed_repository(r, installation_id) for r in payload.get("repositories") or []
        ]
    if action in {"created", "unsuspend", "new_permissions_accepted"}:
        changes.append(SyncInstallation(installation_id))
    return changes


def _on_installation_repositories(payload: Mapping[str, Any]) -> list[Change]:
    installation = payload["installation"]
    installation_id = int(installation["id"])
    changes: list[Change] = [
        UpsertInstallation(
            id=installation_id,
            account_login=str(installation["account"]["login"]),
            suspended=bool(installation.get("suspended_at")),
            actions_write=_actions_write(installation),
        )
    ]
    changes += [
        _listed_repository(r, installation_id) for r in payload.get("repositories_added") or []
    ]
    changes += [DetachRepository(int(r["id"])) for r in payload.get("repositories_removed") or []]
    if payload.get("repositories_added"):
        changes.append(SyncInstallation(installation_id))
    return changes


def _on_pull_request(payload: Mapping[str, Any]) -> list[Change]:
    repository = _repository(payload, _installation_id(payload))
    pr = payload["pull_request"]
    if pr.get("merged"):
        state = PullRequestState.MERGED
    elif pr["state"] == "closed":
        state = PullRequestState.CLOSED
    else:
        state = PullRequestState.OPEN
    number = int(pr["number"])
    action = payload.get("action")
    queue_changes: list[Change] = []
    if action in {"labeled", "unlabeled"} and isinstance(payload.get("label"), Mapping):
        queue_changes.append(
            LabelChanged(
                repository_id=repository.id,
                number=number,
                label=str(payload["label"]["name"]),
                added=action == "labeled",
                by=str((payload.get("sender") or {}).get("login") or ""),
            )
        )
    if action == "closed":
        queue_changes.append(
            PullRequestClosed(repository.id, number, state is PullRequestState.MERGED)
        )
    return [
        repository,
        UpsertPullRequest(
            repository_id=repository.id,
            number=number,
            title=str(pr.get("title") or ""),
            author=str((pr.get("user") or {}).get("login") or ""),
            head_sha=str(pr["head"]["sha"]),
            head_ref=str(pr["head"]["ref"]),
            base_ref=str(pr["base"]["ref"]),
            state=state,
            labels=tuple(str(label["name"]) for label in pr.get("labels") or []),
            github_updated_at=_timestamp(pr.get("updated_at")),
        ),
        *queue_changes,
        WakeQueue(repository.id, f"pull_request.{action}"),
    ]


def _on_wake_when(reason: str, settles: Callable[[Mapping[str, Any]], bool]) -> Any:
    def handler(payload: Mapping[str, Any]) -> list[Change]:
        repository = _repository(payload, _installation_id(payload))
        return [repository, WakeQueue(repository.id, reason)] if settles(payload) else [repository]

    return handler


def _on_issue_comment(payload: Mapping[str, Any]) -> list[Change]:
    if payload.get("action") != "created" or "pull_request" not in payload["issue"]:
        return []
    repository = _repository(payload, _installation_id(payload))
    command = parse_command(str(payload["comment"].get("body") or ""))
    if command is None:
        return [repository]
    return [
        repository,
        QueueCommand(
            repository_id=repository.id,
            number=int(payload["issue"]["number"]),
            command=command,
            author=str(payload["comment"]["user"]["login"]),
            association=str(payload["comment"].get("author_association") or "NONE"),
            comment_id=int(payload["comment"]["id"]),
        ),
        WakeQueue(repository.id, f"command.{command}"),
    ]


def _on_push(payload: Mapping[str, Any]) -> list[Change]:
    repository = _repository(payload, _installation_id(payload))
    changes: list[Change] = [repository, WakeQueue(repository.id, "push")]
    config = _config_file_change(payload, repository)
    if config is not None:
        changes.append(config)
    return changes


def _config_file_change(
    payload: Mapping[str, Any], repository: UpsertRepository
) -> ConfigFileChanged | None:
    """Whether the push changed the settings file on the default branch: read from the
    payload alone, no call to GitHub."""
    branch = repository.default_branch
    after = payload.get("after")
    commits = payload.get("commits")
    if (
        not isinstance(branch, str)
        or not branch
        or payload.get("ref") != f"refs/heads/{branch}"
        or payload.get("deleted") is True
        or not isinstance(after, str)
        or not after.strip("0")
        or not isinstance(commits, list)
    ):
        return None
    touched: list[str] = []
    last = None
    for commit in commits:
        if not isinstance(commit, Mapping):
            continue
        for kind in ("added", "modified", "removed"):
            paths = commit.get(kind)
            if isinstance(paths, list) and CONFIG_PATH in paths:
                last = kind
                sha = commit.get("id")
                if isinstance(sha, str) and sha not in touched:
                    touched.append(sha)
    if last is None and len(commits) < PUSH_COMMITS_LISTED:
        return None
    newest = tuple(reversed(touched))[:MAX_BLAME_COMMITS]
    return ConfigFileChanged(repository.id, after, newest, removed=last == "removed")


def parse_command(body: str) -> str | None:
    """`/mergequeue merge` or `/mergequeue cancel` on a line of its own."""
    for line in body.splitlines():
        words = line.strip().split()
        if (
            len(words) == 2
            and words[0].lower() == COMMAND_PREFIX
            and words[1].lower()
            in {
                "merge",
                "cancel",
            }
        ):
            return words[1].lower()
    return None


_HANDLERS = {
    "installation": _on_installation,
    "installation_repositories": _on_installation_repositories,
    "pull_request": _on_pull_request,
    # The queue reads checks fresh from GitHub; these events only say "look again", and
    # only when a result arrived: a check created or started changes no decision.
    "check_run": _on_wake_when("check_run", lambda p: p.get("action") == "completed"),
    "status": _on_wake_when("status", lambda p: p.get("state") != "pending"),
    "check_suite": _on_wake_when("check_suite", lambda p: p.get("action") == "completed"),
    # A push wakes the queue; one to the default branch that changed the settings file
    # also has it read.
    "push": _on_push,
    "issue_comment": _on_issue_comment,
}
