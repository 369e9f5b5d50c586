"""Typed failures of GitHub calls, so callers branch on type rather than status codes."""

from __future__ import annotations

from typing import Literal

__all__ = [
    "Conflict",
    "Forbidden",
    "GitHubError",
    "MergeConflict",
    "NotFound",
    "NotMergeable",
    "RateLimited",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
]


class GitHubError(Exception):
    """GitHub answered with an error (or, for `Unavailable`, did not answer usefully)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"GitHub {status}: {message}" if status else f"GitHub: {message}")
        self.status = status
        self.message = message


class Unauthorized(GitHubError):
    """401: the token or App JWT was refused."""


class Forbidden(GitHubError):
    """403 that is not a rate limit: e.g. the App may not push to a fork's branch."""


class NotFound(GitHubError):
    """404: unknown, or invisible to this installation (GitHub does not tell which)."""


class NotMergeable(GitHubError):
    """405 from the merge endpoint: GitHub refuses to merge the pull request as it is."""


class Conflict(GitHubError):
    """409: e.g. the head sha given to merge no longer matches the pull request."""


class MergeConflict(Conflict):
    """409 from the merges endpoint: the head and the base change the same lines."""


class Unprocessable(GitHubError):
    """422: a validation failure, e.g. update-branch when the branch is not behind."""


class Unavailable(GitHubError):
    """5xx, timeouts or connection errors that outlasted the client's bounded retries.

    `status` is the last HTTP status, or 0 when no answer arrived at all.
    """


class RateLimited(GitHubError):
    """GitHub's primary or secondary rate limit: do not call again before `retry_at`.

    `retry_at` is a Unix timestamp (seconds). Callers defer the work until then instead of
    retrying, which would only extend a secondary limit.
    """

    def __init__(
        self,
        *,
        retry_at: float,
        kind: Literal["primary", "secondary"],
        status: int = 403,
        message: str = "rate limited",
    ) -> None:
        super().__init__(status, message)
        self.retry_at = retry_at
        self.kind = kind
