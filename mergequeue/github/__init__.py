"""mergequeue's GitHub REST client: App auth, typed errors, an instrumented transport."""

from mergequeue.github.auth import (
    AppAuth,
    Auth,
    InstallationToken,
    InstallationTokenCache,
    StaticTokenAuth,
    make_app_jwt,
)
from mergequeue.github.client import DEFAULT_BASE_URL, GitHubClient
from mergequeue.github.errors import (
    Conflict,
    GitHubError,
    NotFound,
    NotMergeable,
    RateLimited,
    Unauthorized,
    Unavailable,
    Unprocessable,
)
from mergequeue.github.models import (
    Branch,
    CheckRun,
    CombinedStatus,
    Comment,
    CommitStatus,
    MalformedResponse,
    MergeMethod,
    MergeResult,
    PullRequest,
    Repository,
    RequiredCheck,
    RequiredStatusChecks,
)
from mergequeue.github.routes import KNOWN_ROUTES, OTHER_ENDPOINT, endpoint_template
from mergequeue.github.transport import CallObserver, InstrumentedTransport, RateLimitObserver

__all__ = [
    "DEFAULT_BASE_URL",
    "KNOWN_ROUTES",
    "OTHER_ENDPOINT",
    "AppAuth",
    "Auth",
    "Branch",
    "CallObserver",
    "CheckRun",
    "CombinedStatus",
    "Comment",
    "CommitStatus",
    "Conflict",
    "GitHubClient",
    "GitHubError",
    "InstallationToken",
    "InstallationTokenCache",
    "InstrumentedTransport",
    "MalformedResponse",
    "MergeMethod",
    "MergeResult",
    "NotFound",
    "NotMergeable",
    "PullRequest",
    "RateLimitObserver",
    "RateLimited",
    "Repository",
    "RequiredCheck",
    "RequiredStatusChecks",
    "StaticTokenAuth",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
    "endpoint_template",
    "make_app_jwt",
]
