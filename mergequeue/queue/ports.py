"""The calls the queue makes to GitHub, as Protocols.

The engine (snapshot reading, the executor, reconciliation) talks to GitHub only through
these, so it runs unchanged against the REST adapter (`mergequeue.github.queue_adapter`)
and against the in-memory fake the tests and the simulation use.

Failures: `Refused` for an answer that says "not like this" (403 that is not a rate
limit, 405, 409, 422); `RateLimited` and `Unavailable` (from `mergequeue.github`) mean
"not now" and propagate so the caller defers the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from mergequeue.queue.decide import Check


class Role(StrEnum):
    """A user's permission on a repository, weakest first (GitHub's role names)."""

    NONE = "none"
    READ = "read"
    TRIAGE = "triage"
    WRITE = "write"
    MAINTAIN = "maintain"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


class Refused(Exception):
    """GitHub refused the request as asked; `message` is GitHub's own words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"GitHub {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class PullInfo:
    """The pull request fields the queue reads."""

    number: int
    state: str  # open / closed
    merged: bool
    draft: bool
    head_sha: str
    base_ref: str
    author: str
    # None while GitHub is still computing it.
    mergeable: bool | None
    # clean / behind / dirty / blocked / unstable / has_hooks / draft / unknown
    mergeable_state: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Budget:
    """The last rate-limit headers GitHub sent for this installation."""

    remaining: int
    limit: int
    reset_at: float  # Unix time


@dataclass(frozen=True)
class CommandComment:
    """A comment on a pull request, as listed for the recovery of missed commands."""

    id: int
    number: int
    author: str
    author_association: str
    body: str
    created_at: float  # Unix time


class RepositoryGitHub(Protocol):
    """GitHub, as one repository's queue uses it."""

    async def pull(self, number: int) -> PullInfo | None:
        """The pull request; None when GitHub does not know it (deleted, no access)."""
        ...

    async def checks(self, sha: str) -> tuple[Check, ...]:
        """Every check on the commit (latest check run per name, and commit statuses),
        all pages."""
        ...

    async def required_checks(self, branch: str) -> tuple[str, ...]:
        """Names of the checks that branch protection and rulesets require on `branch`
        (their union); empty when neither requires any."""
        ...

    async def behind_by(self, base: str, head_sha: str) -> int:
        """How many commits of `base` the head lacks (GitHub's compare)."""
        ...

    async def update_branch(self, number: int, expected_head_sha: str) -> None:
        """Merge the base into the head (asynchronously, on GitHub's side); `Refused` when
        GitHub will not (403: the App may not push there; 422: moved head, conflict)."""
        ...

    async def merge(self, number: int, sha: str, method: str) -> str:
        """Merge naming the head sha; returns the merge commit's sha. `Refused` (405, 409,
        422) when GitHub will not."""
        ...

    async def comment(self, number: int, body: str) -> None: ...

    async def remove_label(self, number: int, label: str) -> None:
        """Remove a label; a label that is not there is not an error."""
        ...

    async def role(self, username: str) -> Role:
        """The user's permission on the repository (GitHub's collaborator permission)."""
        ...

    async def labelled_open_pulls(self, label: str) -> tuple[int, ...]:
        """Numbers of the open pull requests that carry `label`."""
        ...

    async def recent_comments(self, limit: int) -> tuple[CommandComment, ...]:
        """The repository's most recently created issue and pull request comments."""
        ...

    def budget(self) -> Budget | None:
        """The installation's rate-limit budget as last reported (None: not known yet)."""
        ...


class Conflict(Exception):
    """GitHub could not merge a head into a staging branch: the two change the same lines."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StagingGitHub(RepositoryGitHub, Protocol):
    """What parallel mode adds: staging branches the App owns, built with GitHub's merges.

    Branch names are plain (`mergequeue/main/7`), not `refs/heads/...`.
    """

    async def branch_head(self, branch: str) -> str | None:
        """The sha `branch` points at; None when there is no such branch."""
        ...

    async def create_branch(self, branch: str, sha: str) -> None:
        """Create `branch` at `sha`; `Refused` (422) when it exists already."""
        ...

    async def reset_branch(self, branch: str, sha: str) -> None:
        """Point an existing branch at `sha`, forced (a staging branch is rewritten)."""
        ...

    async def fast_forward(self, branch: str, sha: str) -> None:
        """Move `branch` forward to `sha`, never forced: `Refused` (422) when `sha` does not
        contain the branch's head (someone pushed meanwhile)."""
        ...

    async def delete_branch(self, branch: str) -> None:
        """Delete `branch`; a branch that is not there is not an error."""
        ...

    async def merge_into(self, branch: str, head_sha: str, message: str) -> str:
        """Merge the commit `head_sha` into `branch` (GitHub's merges endpoint); returns
        the branch's new head (unchanged when `head_sha` was already in it). `Conflict`
        when the two cannot be merged."""
        ...

    async def tree_of(self, sha: str) -> str:
        """The tree sha of commit `sha`: equal trees are equal contents."""
        ...

    async def branches_with_prefix(self, prefix: str) -> tuple[str, ...]:
        """Names of the branches that start with `prefix` (GitHub's matching refs)."""
        ...

    async def rerun_failed_jobs(self, branch: str) -> int:
        """Re-run the failed jobs of the GitHub Actions runs on `branch` (a new attempt of
        only what failed); returns how many runs. `Refused` (403) when the App may not."""
        ...

    async def cancel_workflow_runs(self, branch: str) -> int:
        """Cancel the GitHub Actions workflow runs not yet completed on `branch`; returns
        how many were asked to cancel. `Refused` (403) when the App may not (no
        `actions: write` permission)."""
        ...


# The queue's own check run (or status) on pull requests: never a check the queue waits on.
QUEUE_CHECK_NAME = "mergequeue"


@dataclass(frozen=True)
class Publication:
    """What the queue shows on a pull request's head: a check run named `mergequeue` in App
    mode, a commit status with that context in token mode."""

    status: str  # queued / in_progress / completed
    conclusion: str | None  # success / failure / neutral / cancelled, once completed
    title: str  # one line (a status's description: its first 140 characters)
    summary: str  # Markdown, shown in the check run's page
    details_url: str | None = None


class ShowingGitHub(RepositoryGitHub, Protocol):
    """What the queue writes to show itself on pull requests."""

    async def publish(
        self, head_sha: str, publication: Publication, check_run_id: int | None
    ) -> int | None:
        """Create (`check_run_id` None) or update the `mergequeue` check run on `head_sha`;
        returns its id. In token mode a commit status (context `mergequeue`) and None."""
        ...

    async def upsert_comment(self, number: int, comment_id: int | None, body: str) -> int:
        """Edit comment `comment_id`, or create one when it is None or was deleted; returns
        the comment's id."""
        ...

    async def react(self, comment_id: int, content: str) -> None:
        """Add a reaction (`+1`, `-1`, `eyes`, `rocket`, `confused`) to an issue comment;
        one that is there already is not an error, nor is a comment deleted meanwhile."""
        ...
