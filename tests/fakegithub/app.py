"""The fake's HTTP surface: GitHub's REST routes plus the `/_fake/...` control API."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlencode

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakegithub import shapes
from tests.fakegithub.state import (
    NOT_ACCESSIBLE,
    ApiError,
    Call,
    FakePull,
    FakeRepo,
    fake_sha,
    role_permissions,
)

if TYPE_CHECKING:
    from tests.fakegithub.state import FakeGitHub

__all__ = ["ROUTES", "ApiError", "build_app"]

DOCS = "https://docs.github.com/rest"
JSON_TYPE = "application/json"
AuthKind = Literal["app", "token", "installation"]


@dataclass
class Ctx:
    fake: FakeGitHub
    api: str  # base URL as the caller reached the fake
    identity: str  # rate-limit identity: installation id, "app" or "token"
    installation_id: int | None
    params: dict[str, str]
    body: Any
    query: dict[str, str]
    # The user of a user access token (the OAuth web flow); None for other credentials.
    user: str | None = None

    def repo(self) -> FakeRepo:
        full_name = f"{self.params['owner']}/{self.params['repo']}"
        repo = self.fake.repos.get(full_name)
        if repo is None:
            raise ApiError(404, "Not Found")
        # As on GitHub: a repository the user cannot read does not exist for them.
        user = self.user
        if user is not None and self.fake.user_role(full_name=full_name, login=user) == "none":
            raise ApiError(404, "Not Found")
        if self.installation_id is not None:
            inst = self.fake.installations.get(self.installation_id, {})
            if full_name not in inst.get("repositories", []):
                raise ApiError(404, "Not Found")
        return repo

    def pull(self, key: str = "pull_number") -> tuple[FakeRepo, FakePull]:
        repo = self.repo()
        try:
            pr = repo.pulls[int(self.params[key])]
        except (KeyError, ValueError):
            raise ApiError(404, "Not Found") from None
        return repo, pr


Answer = tuple[int, Any, dict[str, str]]
# Handlers that reach out (a webhook redelivery) are async; the rest answer at once.
Handler = Callable[[Ctx], Answer | Awaitable[Answer]]


def _page(ctx: Ctx, path: str, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
    try:
        per_page = max(1, min(100, int(ctx.query.get("per_page", "30"))))
        page = max(1, int(ctx.query.get("page", "1")))
    except ValueError:
        raise ApiError(422, "Invalid per_page or page") from None
    last = max(1, -(-len(items) // per_page))
    links = []

    def link(n: int, rel: str) -> str:
        q = {**ctx.query, "per_page": str(per_page), "page": str(n)}
        return f'<{ctx.api}{path}?{urlencode(q)}>; rel="{rel}"'

    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    if page > 1:
        links += [link(1, "first"), link(page - 1, "prev")]
    headers = {"Link": ", ".join(links)} if links else {}
    return items[(page - 1) * per_page : page * per_page], headers


# -- GitHub routes ------------------------------------------------------------------------


def create_access_token(ctx: Ctx) -> Answer:
    installation_id = int(ctx.params["installation_id"])
    inst = ctx.fake.installations.get(installation_id)
    if inst is None:
        raise ApiError(404, "Not Found")
    if inst.get("suspended_at") is not None:
        raise ApiError(403, "This installation has been suspended")
    token = "ghs_" + secrets.token_hex(18)
    expires_at = time.time() + ctx.fake.token_lifetime
    ctx.fake.add_token(
        token=token, installation_id=installation_id, expires_in=ctx.fake.token_lifetime
    )
    ctx.fake.minted += 1
    body = {
        "token": token,
        "expires_at": shapes.iso(expires_at),
        "permissions": dict(inst["permissions"]),
        "repository_selection": "selected",
    }
    return 201, body, {}


def list_installation_repositories(ctx: Ctx) -> Answer:
    if ctx.installation_id is None:
        raise ApiError(403, "You must authenticate with an installation access token.")
    names = ctx.fake.installations[ctx.installation_id]["repositories"]
    repos = [shapes.repository(ctx.api, ctx.fake.repos[n]) for n in names]
    page, headers = _page(ctx, "/installation/repositories", repos)
    body = {"total_count": len(repos), "repositories": page, "repository_selection": "selected"}
    return 200, body, headers


def get_pull(ctx: Ctx) -> Answer:
    repo, pr = ctx.pull()
    mergeable, state, _ = ctx.fake.merge_state(full_name=repo.full_name, number=pr.number)
    return 200, shapes.pull_request(ctx.api, repo, pr, mergeable, state), {}


def _resolve_ref(repo: FakeRepo, ref: str) -> str | None:
    for prefix in ("refs/heads/", "heads/"):
        if ref.startswith(prefix) and ref[len(prefix) :] in repo.branches:
            return repo.branches[ref[len(prefix) :]]
    if ref in repo.branches:
        return repo.branches[ref]
    if 7 <= len(ref) <= 40 and all(c in "0123456789abcdef" for c in ref):
        return ref
    return None


def list_check_runs(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    sha = _resolve_ref(repo, ctx.params["ref"])
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {ctx.params['ref']}")
    if ctx.query.get("filter", "latest") == "latest":
        runs, _ = ctx.fake.latest_checks(full_name=repo.full_name, sha=sha)
    else:
        runs = [r for r in repo.check_runs if r.head_sha == sha]
    if "check_name" in ctx.query:
        runs = [r for r in runs if r.name == ctx.query["check_name"]]
    if "status" in ctx.query:
        runs = [r for r in runs if r.status == ctx.query["status"]]
    runs.sort(key=lambda r: -r.id)
    pulls = [p for p in repo.pulls.values() if p.head_sha == sha and p.state == "open"]
    items = [shapes.check_run(ctx.api, repo, r, pulls) for r in runs]
    page, headers = _page(
        ctx, f"/repos/{repo.full_name}/commits/{ctx.params['ref']}/check-runs", items
    )
    return 200, {"total_count": len(items), "check_runs": page}, headers


def combined_status(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    sha = _resolve_ref(repo, ctx.params["ref"])
    if sha is None:
        raise ApiError(404, f"No commit found for SHA: {ctx.params['ref']}")
    _, statuses = ctx.fake.latest_checks(full_name=repo.full_name, sha=sha)
    states = {s.state for s in statuses}
    if states & {"failure", "error"}:
        state = "failure"
    elif not statuses or "pending" in states:
        state = "pending"
    else:
        state = "success"
    page, headers = _page(
        ctx, f"/repos/{repo.full_name}/commits/{ctx.params['ref']}/status", statuses
    )
    body = shapes.combined_status(ctx.api, repo, sha, state, page)
    body["total_count"] = len(statuses)
    return 200, body, headers


def update_branch(ctx: Ctx) -> Answer:
    repo, pr = ctx.pull()
    body = ctx.body if isinstance(ctx.body, dict) else {}
    ctx.fake.update_branch(
        full_name=repo.full_name,
        number=pr.number,
        expected_head_sha=body.get("expected_head_sha"),
    )
    url = f"{shapes.HTML}/repos/{repo.full_name}/pulls/{pr.number}"
    return 202, {"message": "Updating pull request branch.", "url": url}, {}


def merge_pull(ctx: Ctx) -> Answer:
    repo, pr = ctx.pull()
    body = ctx.body if isinstance(ctx.body, dict) else {}
    sha = ctx.fake.merge_pull(
        full_name=repo.full_name,
        number=pr.number,
        sha=body.get("sha"),
        method=body.get("merge_method", "merge"),
        commit_title=body.get("commit_title"),
        commit_message=body.get("commit_message"),
    )
    return 200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}, {}


def create_comment(ctx: Ctx) -> Answer:
    repo, pr = ctx.pull("issue_number")
    body = ctx.body.get("body") if isinstance(ctx.body, dict) else None
    if not isinstance(body, str):
        raise ApiError(422, 'Invalid request.\n\n"body" wasn\'t supplied.')
    ident = ctx.fake.create_comment(
        full_name=repo.full_name, number=pr.number, body=body, author=_bot(ctx)
    )
    comment = next(c for c in reversed(ctx.fake.comments) if c.id == ident)
    data = shapes.issue_comment(ctx.api, repo, comment)
    return 201, data, {"Location": data["url"]}


def _bot(ctx: Ctx) -> str:
    """Whom a call acts as: the App's bot for an installation, else the token's user."""
    return f"{ctx.fake.app_slug}[bot]" if ctx.installation_id is not None else "octocat"


def _app_only(ctx: Ctx) -> None:
    # A token cannot write checks: only an App (its installation) can.
    if ctx.installation_id is None:
        raise ApiError(403, "You must authenticate via a GitHub App.")


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError(422, f"Invalid request.\n\nFor 'properties/{name}', it is not a string.")
    return value


def _output(body: dict[str, Any]) -> tuple[str | None, str | None]:
    output = body.get("output")
    if output is None:
        return None, None
    if not isinstance(output, dict):
        raise ApiError(422, "Invalid request.\n\nFor 'properties/output', it is not an object.")
    return _optional_str(output, "title"), _optional_str(output, "summary")


def create_check_run(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    _app_only(ctx)
    body = _fields(ctx, "name", "head_sha")
    title, summary = _output(body)
    ident = ctx.fake.create_check_run(
        full_name=repo.full_name,
        head_sha=body["head_sha"],
        name=body["name"],
        status=_optional_str(body, "status"),
        conclusion=_optional_str(body, "conclusion"),
        title=title,
        summary=summary,
        details_url=_optional_str(body, "details_url"),
    )
    return 201, _check_run_answer(ctx, repo, ident), {}


def update_check_run(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    _app_only(ctx)
    try:
        ident = int(ctx.params["check_run_id"])
    except ValueError:
        raise ApiError(404, "Not Found") from None
    body = _fields(ctx)
    title, summary = _output(body)
    ctx.fake.update_check_run(
        full_name=repo.full_name,
        check_run_id=ident,
        name=_optional_str(body, "name"),
        status=_optional_str(body, "status"),
        conclusion=_optional_str(body, "conclusion"),
        title=title,
        summary=summary,
        details_url=_optional_str(body, "details_url"),
    )
    return 200, _check_run_answer(ctx, repo, ident), {}


def _check_run_answer(ctx: Ctx, repo: FakeRepo, ident: int) -> Any:
    run = next(r for r in repo.check_runs if r.id == ident)
    pulls = [p for p in repo.pulls.values() if p.head_sha == run.head_sha and p.state == "open"]
    return shapes.check_run(ctx.api, repo, run, pulls)


def create_status(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    body = _fields(ctx, "state")
    context = _optional_str(body, "context")
    ident = ctx.fake.create_status(
        full_name=repo.full_name,
        sha=ctx.params["sha"],
        state=body["state"],
        context=context if context is not None else "default",
        description=_optional_str(body, "description"),
        target_url=_optional_str(body, "target_url"),
        creator=_bot(ctx),
    )
    st = next(st for st in repo.statuses if st.id == ident)
    data = shapes.status(ctx.api, repo, st)
    return 201, data, {"Location": data["url"]}


def _comment_id(ctx: Ctx) -> int:
    try:
        return int(ctx.params["comment_id"])
    except ValueError:
        raise ApiError(404, "Not Found") from None


def update_comment(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    body = _fields(ctx, "body")
    ident = _comment_id(ctx)
    ctx.fake.update_comment(full_name=repo.full_name, comment_id=ident, body=body["body"])
    comment = ctx.fake.comment(full_name=repo.full_name, comment_id=ident)
    return 200, shapes.issue_comment(ctx.api, repo, comment), {}


def delete_comment(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    ctx.fake.delete_comment(full_name=repo.full_name, comment_id=_comment_id(ctx))
    return 204, None, {}


def add_reaction(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    body = _fields(ctx, "content")
    ident = _comment_id(ctx)
    user = _bot(ctx)
    reaction_id, created = ctx.fake.add_reaction(
        full_name=repo.full_name, comment_id=ident, content=body["content"], user=user
    )
    reaction = {"id": reaction_id, "content": body["content"], "user": user}
    return (201 if created else 200), shapes.reaction(ctx.api, reaction), {}


def _label_names(body: Any) -> list[str]:
    items = body.get("labels") if isinstance(body, dict) else body
    names = []
    if isinstance(items, list):
        for item in items:
            if isinstance(item, str):
                names.append(item)
            elif isinstance(item, dict) and isinstance(item.get("name"), str):
                names.append(item["name"])
    return names


def add_labels(ctx: Ctx) -> Answer:
    repo, pr = ctx.pull("issue_number")
    names = _label_names(ctx.body)
    if not names:
        raise ApiError(422, "Invalid request.\n\nNo labels given.")
    for name in names:
        if name not in pr.labels:
            pr.labels.append(name)
    return 200, [shapes.label(ctx.api, repo, n) for n in pr.labels], {}


def remove_label(ctx: Ctx) -> Answer:
    repo, pr = ctx.pull("issue_number")
    ctx.fake.remove_label(full_name=repo.full_name, number=pr.number, label=ctx.params["name"])
    return 200, [shapes.label(ctx.api, repo, n) for n in pr.labels], {}


def required_status_checks(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    branch = ctx.params["branch"]
    if branch not in repo.branches:
        raise ApiError(404, "Branch not found")
    if branch not in repo.protection:
        raise ApiError(404, "Branch not protected")
    return 200, shapes.status_check_policy(ctx.api, repo, branch), {}


def get_branch(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    branch = ctx.params["branch"]
    if branch not in repo.branches:
        raise ApiError(404, "Branch not found")
    return 200, shapes.branch_with_protection(ctx.api, repo, branch), {}


def branch_rules(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    rulesets = ctx.fake.active_rulesets(full_name=repo.full_name, branch=ctx.params["branch"])
    rules = shapes.branch_rules(repo, rulesets)
    path = f"/repos/{repo.full_name}/rules/branches/{ctx.params['branch']}"
    page, headers = _page(ctx, path, rules)
    return 200, page, headers


def compare(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    basehead = ctx.params["basehead"]
    base, sep, head = basehead.partition("...")
    if not sep or not base or not head:
        raise ApiError(404, "Not Found")
    # "owner:branch" names a fork's branch; the fake has no forks.
    base, head = base.rpartition(":")[2], head.rpartition(":")[2]
    cmp = ctx.fake.comparison(full_name=repo.full_name, base=base, head=head)
    return 200, shapes.comparison(ctx.api, repo, basehead, cmp), {}


def _fields(ctx: Ctx, *required: str) -> dict[str, Any]:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    for name in required:
        if not isinstance(body.get(name), str):
            raise ApiError(422, f'Invalid request.\n\n"{name}" wasn\'t supplied.')
    return body


def get_ref(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    ref = ctx.params["ref"]
    sha = ctx.fake.get_ref(full_name=repo.full_name, ref=ref)
    return 200, shapes.git_ref(ctx.api, repo, f"refs/{ref}", sha), {}


def matching_refs(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    ref = ctx.params["ref"]
    refs = ctx.fake.matching_refs(full_name=repo.full_name, ref=ref)
    items = [shapes.git_ref(ctx.api, repo, name, sha) for name, sha in refs]
    page, headers = _page(ctx, f"/repos/{repo.full_name}/git/matching-refs/{ref}", items)
    return 200, page, headers


def create_ref(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    body = _fields(ctx, "ref", "sha")
    sha = ctx.fake.create_ref(full_name=repo.full_name, ref=body["ref"], sha=body["sha"])
    data = shapes.git_ref(ctx.api, repo, body["ref"], sha)
    return 201, data, {"Location": data["url"]}


def update_ref(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    body = _fields(ctx, "sha")
    ref = ctx.params["ref"]
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise ApiError(422, "Invalid request.\n\nFor 'properties/force', it is not a boolean.")
    sha = ctx.fake.update_ref(full_name=repo.full_name, ref=ref, sha=body["sha"], force=force)
    return 200, shapes.git_ref(ctx.api, repo, f"refs/{ref}", sha), {}


def delete_ref(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    ctx.fake.delete_ref(full_name=repo.full_name, ref=ctx.params["ref"])
    return 204, None, {}


def merge_branches(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    body = _fields(ctx, "base", "head")
    message = body.get("commit_message")
    sha = ctx.fake.merge_branches(
        full_name=repo.full_name,
        base=body["base"],
        head=body["head"],
        commit_message=message if isinstance(message, str) else None,
    )
    if sha is None:
        return 204, None, {}
    return 201, shapes.commit(ctx.api, repo, sha), {}


def get_git_commit(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    commit = ctx.fake.git_commit(full_name=repo.full_name, sha=ctx.params["commit_sha"])
    return 200, shapes.git_commit(ctx.api, repo, commit), {}


def get_contents(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    path, ref = ctx.params["path"], ctx.query.get("ref") or repo.default_branch
    content = ctx.fake.file_content(full_name=repo.full_name, path=path, ref=ref)
    return 200, shapes.content_file(ctx.api, repo, path, content, ref), {}


def commit_pulls(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    sha = ctx.params["commit_sha"]
    pulls = ctx.fake.commit_pulls(full_name=repo.full_name, sha=sha)
    items = [shapes.pull_request_simple(ctx.api, repo, p) for p in pulls]
    page, headers = _page(ctx, f"/repos/{repo.full_name}/commits/{sha}/pulls", items)
    return 200, page, headers


def collaborator_permission(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    login = ctx.params["username"]
    permission, role = ctx.fake.permission_of(full_name=repo.full_name, username=login)
    return 200, shapes.collaborator_permission(ctx.api, login, permission, role), {}


def get_authenticated_user(ctx: Ctx) -> Answer:
    if ctx.user is None:
        raise ApiError(403, "Resource not accessible by integration")
    return 200, shapes.private_user(ctx.api, ctx.user, user_id(ctx.user)), {}


def get_repository(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    body = shapes.full_repository(ctx.api, repo)
    if ctx.user is not None:
        role = ctx.fake.user_role(full_name=repo.full_name, login=ctx.user)
        body["permissions"] = role_permissions(role)
    return 200, body, {}


def user_id(login: str) -> int:
    return int(fake_sha("user", login)[:7], 16)


def list_issues(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    state = ctx.query.get("state", "open")
    if state not in ("open", "closed", "all"):
        raise ApiError(422, "Validation Failed")
    wanted = {n.strip() for n in ctx.query.get("labels", "").split(",") if n.strip()}
    pulls = [
        p
        for p in sorted(repo.pulls.values(), key=lambda p: -p.number)
        if (state == "all" or p.state == state) and wanted <= set(p.labels)
    ]
    items = [shapes.issue(ctx.api, repo, p) for p in pulls]
    page, headers = _page(ctx, f"/repos/{repo.full_name}/issues", items)
    return 200, page, headers


def list_repo_comments(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    sort = ctx.query.get("sort", "created")
    direction = ctx.query.get("direction", "desc" if "sort" in ctx.query else "asc")
    if sort not in ("created", "updated") or direction not in ("asc", "desc"):
        raise ApiError(422, "Validation Failed")
    comments = sorted(
        (c for c in ctx.fake.comments if c.repo == repo.full_name),
        key=lambda c: (c.created_at, c.id),
        reverse=direction == "desc",
    )
    items = [shapes.issue_comment(ctx.api, repo, c) for c in comments]
    page, headers = _page(ctx, f"/repos/{repo.full_name}/issues/comments", items)
    return 200, page, headers


def list_workflow_runs(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    granted = ctx.fake.permissions_of(ctx.installation_id)
    if repo.private and granted is not None and "actions" not in granted:
        raise ApiError(403, NOT_ACCESSIBLE)
    runs = ctx.fake.workflow_runs(
        full_name=repo.full_name, branch=ctx.query.get("branch"), status=ctx.query.get("status")
    )
    if "head_sha" in ctx.query:
        runs = [r for r in runs if r.sha == ctx.query["head_sha"]]
    if ctx.query.get("event", "push") != "push":
        runs = []
    items = [shapes.workflow_run(ctx.api, repo, r) for r in runs]
    page, headers = _page(ctx, f"/repos/{repo.full_name}/actions/runs", items)
    return 200, {"total_count": len(items), "workflow_runs": page}, headers


def cancel_workflow_run(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    try:
        run_id = int(ctx.params["run_id"])
    except ValueError:
        raise ApiError(404, "Not Found") from None
    ctx.fake.cancel_workflow_run(
        full_name=repo.full_name, run_id=run_id, installation_id=ctx.installation_id
    )
    return 202, {}, {}


def rerun_failed_jobs(ctx: Ctx) -> Answer:
    repo = ctx.repo()
    try:
        run_id = int(ctx.params["run_id"])
    except ValueError:
        raise ApiError(404, "Not Found") from None
    ctx.fake.rerun_failed_jobs(
        full_name=repo.full_name, run_id=run_id, installation_id=ctx.installation_id
    )
    return 201, {}, {}


def list_app_installations(ctx: Ctx) -> Answer:
    app_id = ctx.fake.app_id or 0
    items = [
        shapes.installation(
            ctx.api, ident, inst["account"], app_id, inst.get("suspended_at"), inst["permissions"]
        )
        for ident, inst in sorted(ctx.fake.installations.items())
    ]
    page, headers = _page(ctx, "/app/installations", items)
    return 200, page, headers


def list_hook_deliveries(ctx: Ctx) -> Answer:
    try:
        per_page = max(1, min(100, int(ctx.query.get("per_page", "30"))))
    except ValueError:
        raise ApiError(422, "Invalid per_page") from None
    deliveries = sorted(ctx.fake.deliveries, key=lambda d: -d.id)
    status = ctx.query.get("status")
    if status == "success":
        deliveries = [d for d in deliveries if 200 <= d.status_code < 400]
    elif status == "failure":
        deliveries = [d for d in deliveries if not 200 <= d.status_code < 400]
    cursor = ctx.query.get("cursor")
    if cursor:
        # The cursor is where the next page starts: GitHub's is opaque too.
        start = _cursor_id(cursor)
        deliveries = [d for d in deliveries if d.id <= start]
    page, rest = deliveries[:per_page], deliveries[per_page:]
    headers = {}
    if rest:
        query = urlencode({"per_page": str(per_page), "cursor": f"v1_{rest[0].id}"})
        headers["Link"] = f'<{ctx.api}/app/hook/deliveries?{query}>; rel="next"'
    return 200, [shapes.hook_delivery(d) for d in page], headers


def _cursor_id(cursor: str) -> int:
    try:
        return int(cursor.removeprefix("v1_"))
    except ValueError:
        raise ApiError(400, "Invalid cursor") from None


async def redeliver(ctx: Ctx) -> Answer:
    try:
        delivery_id = int(ctx.params["delivery_id"])
    except ValueError:
        raise ApiError(404, "Not Found") from None
    await ctx.fake.redeliver(delivery_id=delivery_id)
    return 202, {}, {}


# (GitHub's template, Starlette path, method, handler, who may call it)
ROUTES: list[tuple[str, str, str, Handler, AuthKind]] = [
    (
        "/app/installations/{installation_id}/access_tokens",
        "/app/installations/{installation_id:int}/access_tokens",
        "POST",
        create_access_token,
        "app",
    ),
    ("/installation/repositories", "", "GET", list_installation_repositories, "installation"),
    ("/repos/{owner}/{repo}/pulls/{pull_number}", "", "GET", get_pull, "token"),
    ("/repos/{owner}/{repo}/pulls/{pull_number}/update-branch", "", "PUT", update_branch, "token"),
    ("/repos/{owner}/{repo}/pulls/{pull_number}/merge", "", "PUT", merge_pull, "token"),
    (
        "/repos/{owner}/{repo}/commits/{ref}/check-runs",
        "/repos/{owner}/{repo}/commits/{ref:path}/check-runs",
        "GET",
        list_check_runs,
        "token",
    ),
    (
        "/repos/{owner}/{repo}/commits/{ref}/status",
        "/repos/{owner}/{repo}/commits/{ref:path}/status",
        "GET",
        combined_status,
        "token",
    ),
    ("/repos/{owner}/{repo}/issues/{issue_number}/comments", "", "POST", create_comment, "token"),
    ("/repos/{owner}/{repo}/issues/{issue_number}/labels", "", "POST", add_labels, "token"),
    (
        "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}",
        "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name:path}",
        "DELETE",
        remove_label,
        "token",
    ),
    (
        "/repos/{owner}/{repo}/branches/{branch}/protection/required_status_checks",
        "/repos/{owner}/{repo}/branches/{branch:path}/protection/required_status_checks",
        "GET",
        required_status_checks,
        "token",
    ),
    (
        "/repos/{owner}/{repo}/branches/{branch}",
        "/repos/{owner}/{repo}/branches/{branch:path}",
        "GET",
        get_branch,
        "token",
    ),
    (
        "/repos/{owner}/{repo}/rules/branches/{branch}",
        "/repos/{owner}/{repo}/rules/branches/{branch:path}",
        "GET",
        branch_rules,
        "token",
    ),
    (
        "/repos/{owner}/{repo}/compare/{basehead}",
        "/repos/{owner}/{repo}/compare/{basehead:path}",
        "GET",
        compare,
        "token",
    ),
    (
        "/repos/{owner}/{repo}/collaborators/{username}/permission",
        "",
        "GET",
        collaborator_permission,
        "token",
    ),
    (
        "/repos/{owner}/{repo}/git/ref/{ref}",
        "/repos/{owner}/{repo}/git/ref/{ref:path}",
        "GET",
        get_ref,
        "token",
    ),
    (
        "/repos/{owner}/{repo}/git/matching-refs/{ref}",
        "/repos/{owner}/{repo}/git/matching-refs/{ref:path}",
        "GET",
        matching_refs,
        "token",
    ),
    ("/repos/{owner}/{repo}/git/refs", "", "POST", create_ref, "token"),
    (
        "/repos/{owner}/{repo}/git/refs/{ref}",
        "/repos/{owner}/{repo}/git/refs/{ref:path}",
        "PATCH",
        update_ref,
        "token",
    ),
    (
        "/repos/{owner}/{repo}/git/refs/{ref}",
        "/repos/{owner}/{repo}/git/refs/{ref:path}",
        "DELETE",
        delete_ref,
        "token",
    ),
    ("/repos/{owner}/{repo}/merges", "", "POST", merge_branches, "token"),
    ("/repos/{owner}/{repo}/git/commits/{commit_sha}", "", "GET", get_git_commit, "token"),
    (
        "/repos/{owner}/{repo}/contents/{path}",
        "/repos/{owner}/{repo}/contents/{path:path}",
        "GET",
        get_contents,
        "token",
    ),
    ("/repos/{owner}/{repo}/commits/{commit_sha}/pulls", "", "GET", commit_pulls, "token"),
    ("/repos/{owner}/{repo}/issues", "", "GET", list_issues, "token"),
    ("/repos/{owner}/{repo}/issues/comments", "", "GET", list_repo_comments, "token"),
    ("/repos/{owner}/{repo}/actions/runs", "", "GET", list_workflow_runs, "token"),
    (
        "/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs",
        "",
        "POST",
        rerun_failed_jobs,
        "token",
    ),
    (
        "/repos/{owner}/{repo}/actions/runs/{run_id}/cancel",
        "",
        "POST",
        cancel_workflow_run,
        "token",
    ),
    ("/repos/{owner}/{repo}/check-runs", "", "POST", create_check_run, "token"),
    ("/repos/{owner}/{repo}/check-runs/{check_run_id}", "", "PATCH", update_check_run, "token"),
    ("/repos/{owner}/{repo}/statuses/{sha}", "", "POST", create_status, "token"),
    ("/repos/{owner}/{repo}/issues/comments/{comment_id}", "", "PATCH", update_comment, "token"),
    ("/repos/{owner}/{repo}/issues/comments/{comment_id}", "", "DELETE", delete_comment, "token"),
    (
        "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
        "",
        "POST",
        add_reaction,
        "token",
    ),
    ("/app/installations", "", "GET", list_app_installations, "app"),
    ("/user", "", "GET", get_authenticated_user, "token"),
    ("/repos/{owner}/{repo}", "", "GET", get_repository, "token"),
    ("/app/hook/deliveries", "", "GET", list_hook_deliveries, "app"),
    (
        "/app/hook/deliveries/{delivery_id}/attempts",
        "",
        "POST",
        redeliver,
        "app",
    ),
]


# -- request plumbing ---------------------------------------------------------------------


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() in ("bearer", "token") and value.strip() else None


def _authenticate(
    fake: FakeGitHub, request: Request, kind: AuthKind, call: Call
) -> tuple[str, int | None, str | None]:
    credential = _bearer(request)
    if credential is None:
        raise ApiError(401, "Requires authentication")
    if kind == "app":
        if fake.public_key is None or fake.app_id is None:
            raise ApiError(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(
                credential,
                fake.public_key,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"]},
                leeway=30,
            )
        except jwt.PyJWTError:
            raise ApiError(401, "A JSON web token could not be decoded") from None
        call.jwt_claims = claims
        now = time.time()
        if str(claims["iss"]) != str(fake.app_id):
            raise ApiError(401, "Integration not found")
        if claims["exp"] - now > 600 + 30:
            raise ApiError(
                401,
                "'Expiration time' claim ('exp') is too far in the future",
            )
        if claims["iat"] > now + 30:
            raise ApiError(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that the "
                "assertion was issued",
            )
        return "app", None, None
    token = fake.tokens.get(credential)
    if token is None or token.expires_at <= time.time():
        raise ApiError(401, "Bad credentials")
    if token.user is not None:
        return f"user:{token.user}", None, token.user
    if token.installation_id is None:
        return "token", None, None
    return str(token.installation_id), token.installation_id, None


def _request_id() -> str:
    return ":".join(
        [
            secrets.token_hex(2),
            secrets.token_hex(2),
            secrets.token_hex(4),
            secrets.token_hex(4),
            secrets.token_hex(4),
        ]
    ).upper()


def _endpoint(
    fake: FakeGitHub, template: str, method: str, handler: Handler, kind: AuthKind
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        body: Any = None
        call = Call(
            method=method,
            path=request.url.path,
            route=template,
            query=dict(request.query_params),
            body=None,
            authorization=request.headers.get("authorization"),
            if_none_match=request.headers.get("if-none-match"),
        )
        fake.calls.append(call)
        fake.api_url = str(request.base_url).rstrip("/")
        request_id = _request_id()
        headers = {
            "X-GitHub-Request-Id": request_id,
            "X-GitHub-Media-Type": "github.v3; format=json",
        }
        # Unauthenticated callers spend a shared (small) quota, as on GitHub.
        window = fake.window("anonymous", limit=60)
        try:
            if raw:
                try:
                    body = call.body = json.loads(raw)
                except ValueError:
                    raise ApiError(400, "Problems parsing JSON") from None
            identity, installation_id, user = _authenticate(fake, request, kind, call)
            call.identity = identity
            window = fake.window(identity)
            for fault in fake.take_fault(template, method):
                await _apply(fake, fault, request_id)
            until = fake.exhausted_until(identity)
            if until is not None or window.used >= window.limit:
                who = "installation ID " + identity if installation_id is not None else "user ID 1"
                raise ApiError(
                    403,
                    f"API rate limit exceeded for {who}.",
                    {
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(until if until is not None else window.reset),
                        "X-RateLimit-Used": str(window.limit),
                    },
                )
            window.used += 1
            call.counted = True
            ctx = Ctx(
                fake=fake,
                api=str(request.base_url).rstrip("/"),
                identity=identity,
                installation_id=installation_id,
                params={k: str(v) for k, v in request.path_params.items()},
                body=body,
                query=dict(request.query_params),
                user=user,
            )
            answer = handler(ctx)
            if inspect.isawaitable(answer):
                answer = await answer
            status, data, extra = answer
        except ApiError as exc:
            status = exc.status
            data = {"message": exc.message, "documentation_url": DOCS, "status": str(exc.status)}
            extra = exc.headers
        content = _render(data)
        if method == "GET" and status == 200:
            etag = _etag(content)
            extra = {**extra, "ETag": etag}
            if _matches(request.headers.get("if-none-match"), etag):
                # As on GitHub: "not modified" costs nothing from the primary rate limit.
                status, content = 304, b""
                window.used -= 1
                call.counted = False
        headers.update(
            {
                "X-RateLimit-Limit": str(window.limit),
                "X-RateLimit-Remaining": str(max(0, window.limit - window.used)),
                "X-RateLimit-Reset": str(window.reset),
                "X-RateLimit-Used": str(window.used),
                "X-RateLimit-Resource": "core",
            }
        )
        headers.update(extra)
        call.status = status
        if status in (204, 304):
            return Response(status_code=status, headers=headers)
        return Response(content, status_code=status, headers=headers, media_type=JSON_TYPE)

    return endpoint


def _render(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _etag(content: bytes) -> str:
    return '"' + hashlib.sha256(content).hexdigest()[:40] + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


async def _apply(fake: FakeGitHub, fault: Any, request_id: str) -> None:
    if fault.kind == "delay":
        await asyncio.sleep(fault.seconds)
    elif fault.kind == "fail":
        raise ApiError(
            fault.status, "Server Error" if fault.status != 503 else "Service Unavailable"
        )
    elif fault.kind == "hang":
        await fake.wait_released(fault.seconds)
        raise ApiError(504, "We couldn't respond to your request in time.")
    elif fault.kind == "secondary_rate_limit":
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        raise ApiError(
            fault.status,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you "
            "try again. If you reach out to GitHub Support for help, please include the "
            f"request ID {request_id}.",
            headers,
        )


def _control(fake: FakeGitHub) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "health":
            return JSONResponse({"ok": True})
        if name == "calls" and request.method == "GET":
            return JSONResponse(fake.calls_json())
        if name not in fake.CONTROL_METHODS:
            return JSONResponse({"error": f"unknown control {name!r}"}, status_code=404)
        raw = await request.body()
        try:
            kwargs = json.loads(raw) if raw else {}
            result = getattr(fake, name)(**kwargs)
            if inspect.isawaitable(result):
                result = await result
        except ApiError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=400)
        return JSONResponse({"result": result})

    return endpoint


def _oauth_authorize(fake: FakeGitHub) -> Callable[[Request], Awaitable[Response]]:
    """GitHub's `/login/oauth/authorize` page, approved at once for the user `sign_in_as`
    chose: a 302 back to the App's callback URL with `code` and `state`."""

    async def endpoint(request: Request) -> Response:
        query = request.query_params
        try:
            target = fake.authorize(
                client_id=query.get("client_id", ""),
                state=query.get("state"),
                redirect_uri=query.get("redirect_uri"),
            )
        except ApiError as exc:
            return Response(exc.message, status_code=exc.status, media_type="text/plain")
        return Response(status_code=302, headers={"Location": target})

    return endpoint


def _oauth_access_token(fake: FakeGitHub) -> Callable[[Request], Awaitable[Response]]:
    """`POST /login/oauth/access_token`: the code for a user access token. Parameters come
    as a form, JSON or a query; the answer is JSON when `Accept` asks for it (else
    form-encoded, as on GitHub), 200 with `error` when the code or client is wrong."""

    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        params: dict[str, str] = dict(request.query_params)
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                params.update({k: str(v) for k, v in json.loads(raw).items()})
            except (ValueError, AttributeError):
                return JSONResponse({"error": "invalid_request"}, status_code=400)
        else:
            params.update({k: v[-1] for k, v in parse_qs(raw.decode("latin-1")).items()})
        answer = fake.exchange_code(
            client_id=params.get("client_id", ""),
            client_secret=params.get("client_secret", ""),
            code=params.get("code", ""),
        )
        fake.calls.append(
            Call(
                method="POST",
                path=request.url.path,
                route="/login/oauth/access_token",
                query={},
                body={k: v for k, v in params.items() if k != "client_secret"},
                authorization=None,
                status=200,
            )
        )
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(answer)
        return Response(urlencode(answer), media_type="application/x-www-form-urlencoded")

    return endpoint


def _github_error(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handler(request: Request, exc: Exception) -> Response:
        message = "Not Found" if status == 404 else "Method Not Allowed"
        body = {"message": message, "documentation_url": DOCS, "status": str(status)}
        return JSONResponse(body, status_code=status)

    return handler


def build_app(fake: FakeGitHub) -> Starlette:
    routes = [
        Route(path or template, _endpoint(fake, template, method, handler, kind), methods=[method])
        for template, path, method, handler, kind in ROUTES
    ]
    routes.append(Route("/_fake/{name}", _control(fake), methods=["GET", "POST"]))
    # The web flow lives on github.com, not the API: no rate limit, no API shapes.
    routes.append(Route("/login/oauth/authorize", _oauth_authorize(fake), methods=["GET"]))
    routes.append(Route("/login/oauth/access_token", _oauth_access_token(fake), methods=["POST"]))
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        404: _github_error(404),
        405: _github_error(405),
    }
    return Starlette(routes=routes, exception_handlers=handlers)
