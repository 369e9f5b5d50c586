"""The queue engine's view of GitHub (`mergequeue.queue.ports.RepositoryGitHub`, and
parallel mode's `StagingGitHub`) over REST.

One instance serves one repository through a `GitHubClient` bound to its installation.
GitHub's "not like this" answers become `Refused`; `RateLimited` and `Unavailable` pass
through untouched so the engine defers the work rather than giving up on it. For staging
branches, a merge conflict is the port's `Conflict`, and a missing branch or commit where
one must exist (merging into it, reading a commit's tree) is `Refused(404)`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Final, TypeVar, get_args

from mergequeue.github.client import GitHubClient
from mergequeue.github.errors import (
    Conflict,
    Forbidden,
    MergeConflict,
    NotFound,
    NotMergeable,
    Unprocessable,
)
from mergequeue.github.models import CheckRun, CommitStatus, MergeMethod, PullRequest
from mergequeue.queue.decide import Check
from mergequeue.queue.ports import Budget, CommandComment, PullInfo, Refused, Role
from mergequeue.queue.ports import Conflict as StagingConflict

__all__ = ["RestRepositoryGitHub"]

T = TypeVar("T")

# The answers that mean "GitHub will not do this as asked" (a rate-limit 403 is raised as
# `RateLimited` before it could be mistaken for one of these).
_REFUSALS: Final = (Forbidden, NotMergeable, Conflict, Unprocessable)

# A commit status as a check: (status, conclusion).
_STATUS_AS_CHECK: Final[dict[str, tuple[str, str | None]]] = {
    "success": ("completed", "success"),
    "failure": ("completed", "failure"),
    "error": ("completed", "failure"),
    "pending": ("in_progress", None),
}

_ROLES: Final = {role.value: role for role in Role}
_MERGE_METHODS: Final[dict[str, MergeMethod]] = {m: m for m in get_args(MergeMethod)}


async def _refusable(call: Awaitable[T]) -> T:
    try:
        return await call
    except _REFUSALS as exc:
        raise Refused(exc.status, exc.message) from exc


def _pull_info(pr: PullRequest) -> PullInfo:
    return PullInfo(
        number=pr.number,
        state=pr.state,
        merged=pr.merged,
        draft=pr.draft,
        head_sha=pr.head_sha,
        base_ref=pr.base_ref,
        author=pr.author,
        mergeable=pr.mergeable,
        mergeable_state=pr.mergeable_state,
        labels=pr.labels,
    )


def _run_check(run: CheckRun) -> Check:
    return Check(name=run.name, status=run.status, conclusion=run.conclusion, url=run.details_url)


def _status_check(status: CommitStatus) -> Check:
    # An unknown state is treated as not finished: never as a pass.
    state, conclusion = _STATUS_AS_CHECK.get(status.state, ("in_progress", None))
    return Check(name=status.context, status=state, conclusion=conclusion, url=status.target_url)


def _role(permission: str, role_name: str) -> Role:
    # A custom role's name means nothing here: its base permission does.
    return _ROLES.get(role_name) or _ROLES.get(permission) or Role.NONE


class RestRepositoryGitHub:
    """`RepositoryGitHub` and `StagingGitHub` for `owner/repo` through `client` (an
    installation's view)."""

    def __init__(self, client: GitHubClient, *, owner: str, repo: str) -> None:
        self._client = client
        self._owner = owner
        self._repo = repo

    @property
    def full_name(self) -> str:
        return f"{self._owner}/{self._repo}"

    async def pull(self, number: int) -> PullInfo | None:
        try:
            pr = await self._client.get_pull_request(
                owner=self._owner, repo=self._repo, number=number
            )
        except NotFound:
            return None
        return _pull_info(pr)

    async def checks(self, sha: str) -> tuple[Check, ...]:
        repo = {"owner": self._owner, "repo": self._repo, "ref": sha}
        runs = await self._client.list_check_runs(**repo)
        combined = await self._client.get_combined_status(**repo)
        return tuple(_run_check(r) for r in runs) + tuple(
            _status_check(s) for s in combined.statuses
        )

    async def required_checks(self, branch: str) -> tuple[str, ...]:
        repo = {"owner": self._owner, "repo": self._repo, "branch": branch}
        protection = await self._client.get_required_status_checks(**repo)
        rulesets = await self._client.get_branch_rules_required_checks(**repo)
        classic = protection.names if protection is not None else frozenset()
        return tuple(sorted(classic | set(rulesets)))

    async def behind_by(self, base: str, head_sha: str) -> int:
        comparison = await self._client.compare(
            owner=self._owner, repo=self._repo, base=base, head=head_sha
        )
        return comparison.behind_by

    async def update_branch(self, number: int, expected_head_sha: str) -> None:
        await _refusable(
            self._client.update_branch(
                owner=self._owner,
                repo=self._repo,
                number=number,
                expected_head_sha=expected_head_sha,
            )
        )

    async def merge(self, number: int, sha: str, method: str) -> str:
        merge_method = _MERGE_METHODS.get(method)
        if merge_method is None:
            raise ValueError(f"unknown merge method {method!r}")
        result = await _refusable(
            self._client.merge(
                owner=self._owner, repo=self._repo, number=number, method=merge_method, sha=sha
            )
        )
        return result.sha

    async def comment(self, number: int, body: str) -> None:
        # A locked conversation is a 403: refused like any other "not like this".
        await _refusable(
            self._client.create_comment(
                owner=self._owner, repo=self._repo, number=number, body=body
            )
        )

    async def remove_label(self, number: int, label: str) -> None:
        # The client already answers False, not an error, for a label that is not there.
        await self._client.remove_label(
            owner=self._owner, repo=self._repo, number=number, label=label
        )

    async def role(self, username: str) -> Role:
        try:
            found = await self._client.get_collaborator_permission(
                owner=self._owner, repo=self._repo, username=username
            )
        except NotFound:
            # No such user (renamed, deleted): nobody to grant anything to.
            return Role.NONE
        return _role(found.permission, found.role_name)

    async def labelled_open_pulls(self, label: str) -> tuple[int, ...]:
        return await self._client.list_open_pulls_with_label(
            owner=self._owner, repo=self._repo, label=label
        )

    async def recent_comments(self, limit: int) -> tuple[CommandComment, ...]:
        comments = await self._client.list_recent_comments(
            owner=self._owner, repo=self._repo, limit=limit
        )
        return tuple(
            CommandComment(
                id=c.id,
                number=c.number,
                author=c.author,
                author_association=c.author_association,
                body=c.body,
                created_at=c.created_at,
            )
            for c in comments
        )

    def budget(self) -> Budget | None:
        return self._client.budget()

    # -- staging branches (parallel mode) ---------------------------------------------

    async def branch_head(self, branch: str) -> str | None:
        try:
            ref = await self._client.get_ref(
                owner=self._owner, repo=self._repo, ref=f"heads/{branch}"
            )
        except NotFound:
            return None
        return ref.sha

    async def create_branch(self, branch: str, sha: str) -> None:
        await _refusable(
            self._client.create_ref(
                owner=self._owner, repo=self._repo, ref=f"refs/heads/{branch}", sha=sha
            )
        )

    async def reset_branch(self, branch: str, sha: str) -> None:
        await _refusable(
            self._client.update_ref(
                owner=self._owner, repo=self._repo, ref=f"heads/{branch}", sha=sha, force=True
            )
        )

    async def fast_forward(self, branch: str, sha: str) -> None:
        await _refusable(
            self._client.update_ref(
                owner=self._owner, repo=self._repo, ref=f"heads/{branch}", sha=sha, force=False
            )
        )

    async def delete_branch(self, branch: str) -> None:
        # The client answers False, not an error, for a branch that is not there.
        await _refusable(
            self._client.delete_ref(owner=self._owner, repo=self._repo, ref=f"heads/{branch}")
        )

    async def merge_into(self, branch: str, head_sha: str, message: str) -> str:
        try:
            commit = await self._client.merge_branches(
                owner=self._owner,
                repo=self._repo,
                base=branch,
                head=head_sha,
                commit_message=message,
            )
        except MergeConflict as exc:
            raise StagingConflict(exc.message) from exc
        except (NotFound, *_REFUSALS) as exc:
            raise Refused(exc.status, exc.message) from exc
        if commit is not None:
            return commit.sha
        # 204: the branch has the head already and did not move.
        head = await self.branch_head(branch)
        if head is None:
            raise Refused(404, "Base does not exist")
        return head

    async def tree_of(self, sha: str) -> str:
        try:
            commit = await self._client.get_git_commit(owner=self._owner, repo=self._repo, sha=sha)
        except NotFound as exc:
            raise Refused(exc.status, exc.message) from exc
        return commit.tree_sha

    async def branches_with_prefix(self, prefix: str) -> tuple[str, ...]:
        refs = await self._client.list_matching_refs(
            owner=self._owner, repo=self._repo, prefix=f"heads/{prefix}"
        )
        return tuple(sorted(r.branch for r in refs if r.branch is not None))

    async def cancel_workflow_runs(self, branch: str) -> int:
        repo = {"owner": self._owner, "repo": self._repo}
        # Listing needs `actions: read` (on a private repository), cancelling `actions:
        # write`: either may be the call GitHub refuses with 403.
        runs = await _refusable(self._client.list_workflow_runs(**repo, branch=branch))
        asked = 0
        for run in runs:
            # A run that finished meanwhile answers 409: not counted, not an error.
            asked += await _refusable(self._client.cancel_workflow_run(**repo, run_id=run.id))
        return asked
