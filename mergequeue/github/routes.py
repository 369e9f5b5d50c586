"""GitHub REST route templates, to label metrics by route instead of raw URL.

A raw URL carries owner, repository and numbers: as a metric label it would create a new
series per pull request. Paths that match no template share `OTHER_ENDPOINT`.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["KNOWN_ROUTES", "OTHER_ENDPOINT", "endpoint_template"]

OTHER_ENDPOINT = "other"

KNOWN_ROUTES: tuple[str, ...] = (
    # Used by mergequeue.
    "/app/installations/{installation_id}/access_tokens",
    "/installation/repositories",
    "/repos/{owner}/{repo}/pulls/{pull_number}",
    "/repos/{owner}/{repo}/pulls/{pull_number}/update-branch",
    "/repos/{owner}/{repo}/pulls/{pull_number}/merge",
    "/repos/{owner}/{repo}/commits/{ref}/check-runs",
    "/repos/{owner}/{repo}/commits/{ref}/status",
    "/repos/{owner}/{repo}/issues/{issue_number}/comments",
    "/repos/{owner}/{repo}/issues/{issue_number}/labels",
    "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}",
    "/repos/{owner}/{repo}/branches/{branch}",
    "/repos/{owner}/{repo}/branches/{branch}/protection/required_status_checks",
    "/repos/{owner}/{repo}/rules/branches/{branch}",
    "/repos/{owner}/{repo}/compare/{basehead}",
    "/repos/{owner}/{repo}/collaborators/{username}/permission",
    "/repos/{owner}/{repo}/issues",
    "/repos/{owner}/{repo}/issues/comments",
    "/app/installations",
    "/app/hook/deliveries",
    "/app/hook/deliveries/{delivery_id}/attempts",
    "/user",
    "/repos/{owner}/{repo}/git/ref/{ref}",
    "/repos/{owner}/{repo}/git/matching-refs/{ref}",
    "/repos/{owner}/{repo}/git/refs",
    "/repos/{owner}/{repo}/git/refs/{ref}",
    "/repos/{owner}/{repo}/merges",
    "/repos/{owner}/{repo}/git/commits/{commit_sha}",
    "/repos/{owner}/{repo}/contents/{path}",
    "/repos/{owner}/{repo}/commits/{commit_sha}/pulls",
    "/repos/{owner}/{repo}/actions/runs",
    "/repos/{owner}/{repo}/actions/runs/{run_id}/cancel",
    "/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs",
    "/repos/{owner}/{repo}/check-runs",
    "/repos/{owner}/{repo}/check-runs/{check_run_id}",
    "/repos/{owner}/{repo}/statuses/{sha}",
    "/repos/{owner}/{repo}/issues/comments/{comment_id}",
    "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
    # Close relatives, so that a later caller does not land in "other".
    "/app",
    "/app/installations/{installation_id}",
    "/app/hook/deliveries/{delivery_id}",
    "/rate_limit",
    "/repos/{owner}/{repo}",
    "/repos/{owner}/{repo}/pulls",
    "/repos/{owner}/{repo}/pulls/{pull_number}/commits",
    "/repos/{owner}/{repo}/pulls/{pull_number}/files",
    "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
    "/repos/{owner}/{repo}/commits/{ref}",
    "/repos/{owner}/{repo}/commits/{ref}/check-suites",
    "/repos/{owner}/{repo}/commits/{ref}/statuses",
    "/repos/{owner}/{repo}/issues/{issue_number}",
    "/repos/{owner}/{repo}/labels",
    "/repos/{owner}/{repo}/branches",
    "/repos/{owner}/{repo}/branches/{branch}/protection",
)

# A git reference (heads/mergequeue/main/1) is sent with its slashes: the trailing {ref}
# of these templates spans several path segments.
_MULTI_SEGMENT_SUFFIXES: tuple[str, ...] = (
    "/git/ref/{ref}",
    "/git/matching-refs/{ref}",
    "/git/refs/{ref}",
    # A file's path: .github/mergequeue.yml
    "/contents/{path}",
)

_PARAM = re.compile(r"\{[a-z_]+\}")


def _compile(template: str) -> re.Pattern[str]:
    parts = _PARAM.split(template)
    segments = ["[^/]+"] * (len(parts) - 1)
    if template.endswith(_MULTI_SEGMENT_SUFFIXES):
        segments[-1] = ".+"
    pattern = re.escape(parts[0]) + "".join(
        seg + re.escape(part) for seg, part in zip(segments, parts[1:], strict=True)
    )
    return re.compile(pattern + r"\Z")


def _literal_segments(template: str) -> int:
    return sum(1 for seg in template.split("/") if seg and not _PARAM.fullmatch(seg))


# Most literal segments first, so /issues/comments/{comment_id} wins over a
# same-length template with a parameter in that place.
_TABLE: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (t, _compile(t)) for t in sorted(KNOWN_ROUTES, key=_literal_segments, reverse=True)
)


@lru_cache(maxsize=4096)
def endpoint_template(path: str, base_path: str = "") -> str:
    """The route template for a raw (still percent-encoded) request path.

    `base_path` is the API prefix to strip, e.g. `/api/v3` on GitHub Enterprise Server.
    """
    path = path.split("?", 1)[0]
    base = base_path.rstrip("/")
    if base:
        if not path.startswith(base + "/"):
            return OTHER_ENDPOINT
        path = path[len(base) :]
    if len(path) > 1:
        path = path.rstrip("/")
    for template, pattern in _TABLE:
        if pattern.match(path):
            return template
    return OTHER_ENDPOINT
