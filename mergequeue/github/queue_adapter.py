"""The queue engine's view of GitHub (`mergequeue.queue.ports.RepositoryGitHub`, parallel
mode's `StagingGitHub` and `ShowingGitHub`, what the queue shows on pull requests) over
REST.

One instance serves one repository through a `GitHubClient` bound to its installation.
GitHub's "not like this" answers become `Refused`; `RateLimited` and `Unavailable` pass
through untouched so the engine defers the work rather than giving up on it. For staging
branches, a merge conflict is the port's `Conflict`, and a missing branch or commit where
one must exist (merging into it, reading a commit's tree) is `Refused(404)`.

Showing the queue: an App publishes a check run named `mergequeue`; a single token cannot
create check runs (GitHub refuses them to anything but an App), so in token mode the same
publication becomes a commit status with that context (see `status_state` for how a
conclusion maps to a status's state, and `STATUS_DESCRIPTION_LIMIT`).
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
from mergequeue.github.models import (
    CheckConclusion,
    CheckRun,
    CheckStatus,
    CommitStatus,
    MergeMethod,
    PullRequest,
    ReactionContent,
    StatusState,
)
from mergequeue.queue.decide import Check
from mergequeue.queue.ports import (
    Budget,
    CommandComment,
    Publication,
    PullInfo,
    Refused,
    Role,
)
from mergequeue.queue.ports import Conflict as StagingConflict

__all__ = [
    "CHECK_NAME",
    "CHECK_SUMMARY_LIMIT",
    "REACTIONS",
    "STATUS_DESCRIPTION_LIMIT",
    "RestRepositoryGitHub",
    "check_run_state",
    "cut",
    "status_state",
]

# The check run's name in App mode, the commit status's context in token mode.
CHECK_NAME: Final = "mergequeue"
# GitHub's limits: a status's description, a check run's output summary.
STATUS_DESCRIPTION_LIMIT: Final = 140
CHECK_SUMMARY_LIMIT: Final = 65535

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
_CHECK_STATUSES: Final[dict[str, CheckStatus]] = {s: s for s in get_args(CheckStatus)}
_CONCLUSIONS: Final[dict[str, CheckConclusion]] = {c: c for c in get_args(CheckConclusion)}
_REACTIONS: Final[dict[str, ReactionContent]] = {r: r for r in get_args(ReactionContent)}
# The reactions GitHub takes.
REACTIONS: Final = frozenset(_REACTIONS)

# A finished publication as a commit status (token mode), which knows only error, failure,
# pending and success. What passes a required check stays a pass (neutral and skipped are
# grey ticks for check runs, counted as passing); `cancelled` and `timed_out` mean the queue
# stopped without judging the code, which is a status's `error` (not a pass, and not the
# code's `failure`).
_CONCLUSION_STATES: Final[dict[str, StatusState]] = {
    "success": "success",
    "neutral": "success",
    "skipped": "success",
    "failure": "failure",
    "action_required": "failure",
    "cancelled": "error",
    "timed_out": "error",
}


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


def cut(text: str, limit: int) -> str:
    """`text` in at most `limit` characters: cut ones end with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def status_state(publication: Publication) -> StatusState:
    """The commit status state showing `publication` in token mode: queued and in_progress
    are pending; a conclusion maps as `_CONCLUSION_STATES` explains."""
    if publication.status in ("queued", "in_progress"):
        return "pending"
    if publication.status != "completed":
        raise ValueError(f"unknown publication status {publication.status!r}")
    state = _CONCLUSION_STATES.get(publication.conclusion or "")
    if state is None:
        raise ValueError(
            f"a completed publication needs a conclusion, not {publication.conclusion!r}"
        )
    return state


def check_run_state(publication: Publication) -> tuple[CheckStatus, CheckConclusion | None]:
    """The check run's (status, conclusion) for `publication`."""
    status = _CHECK_STATUSES.get(publication.status)
    if status is None:
        raise ValueError(f"unknown publication status {publication.status!r}")
    if status != "completed":
        return status, None
    conclusion = _CONCLUSIONS.get(publication.conclusion or "")
    if conclusion is None:
        raise ValueError(
            f"a completed publication needs a conclusion, not {publication.conclusion!r}"
        )
    return status, conclusion


def _role(permission: str, role_name: str) -> Role:
    # A custom role's name means nothing here: its base permission does.
    return _ROLES.get(role_name) or _ROLES.get(permission) or Role.NONE


class RestRepositoryGitHub:
    """`RepositoryGitHub`, `StagingGitHub` and `ShowingGitHub` for `owner/repo` through
    `client` (an installation's view in App mode, the token client in token mode)."""

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

    async def rerun_failed_jobs(self, branch: str) -> int:
        repo = {"owner": self._owner, "repo": self._repo}
        runs = await _refusable(self._client.list_failed_workflow_runs(**repo, branch=branch))
        for run in runs:
            await _refusable(self._client.rerun_failed_jobs(**repo, run_id=run.id))
        return len(runs)

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

    # -- showing the queue on pull requests -------------------------------------------

    async def publish(
        self, head_sha: str, publication: Publication, check_run_id: int | None
    ) -> int | None:
        if not self._client.authenticates_as_app:
            await self._publish_status(head_sha, publication)
            return None
        status, conclusion = check_run_state(publication)
        summary = cut(publication.summary, CHECK_SUMMARY_LIMIT)
        if check_run_id is not None:
            try:
                run = await _refusable(
                    self._client.update_check_run(
                        owner=self._owner,
                        repo=self._repo,
                        check_run_id=check_run_id,
                        status=status,
                        conclusion=conclusion,
                        title=publication.title,
                        summary=summary,
                        details_url=publication.details_url,
                    )
                )
            except NotFound:
                pass  # GitHub no longer knows the run: show it on a new one.
            else:
                if run.head_sha == head_sha:
                    return run.id
                # The run of an earlier head: the head it is about gets its own.
        run = await _refusable(
            self._client.create_check_run(
                owner=self._owner,
                repo=self._repo,
                name=CHECK_NAME,
                head_sha=head_sha,
                status=status,
                conclusion=conclusion,
                title=publication.title,
                summary=summary,
                details_url=publication.details_url,
            )
        )
        return run.id

    async def _publish_status(self, head_sha: str, publication: Publication) -> None:
        # A token cannot create check runs: a commit status shows the title, linked to the
        # details (its description is capped; the summary has nowhere to go).
        await _refusable(
            self._client.create_status(
                owner=self._owner,
                repo=self._repo,
                sha=head_sha,
                state=status_state(publication),
                context=CHECK_NAME,
                description=cut(publication.title, STATUS_DESCRIPTION_LIMIT),
                target_url=publication.details_url,
            )
        )

    async def upsert_comment(self, number: int, comment_id: int | None, body: str) -> int:
        if comment_id is not None:
            try:
                edited = await _refusable(
                    self._client.update_comment(
                        owner=self._owner, repo=self._repo, comment_id=comment_id, body=body
                    )
                )
            except NotFound:
                pass  # Deleted: post it again.
            else:
                return edited.id
        created = await _refusable(
            self._client.create_comment(
                owner=self._owner, repo=self._repo, number=number, body=body
            )
        )
        return created.id

    async def react(self, comment_id: int, content: str) -> None:
        reaction = _REACTIONS.get(content)
        if reaction is None:
            raise ValueError(f"unknown reaction {content!r}")
        try:
            await _refusable(
                self._client.add_reaction(
                    owner=self._owner, repo=self._repo, comment_id=comment_id, content=reaction
                )
            )
        except NotFound:
            return  # The comment was deleted meanwhile: nothing to show it on.
