"""GitHub's JSON shapes, complete enough to satisfy GitHub's published OpenAPI schemas.

Every builder takes the API base URL of the request (`api`), so `url` fields and
pagination links point back at the fake wherever it runs.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakegithub.git import Commit
    from tests.fakegithub.state import (
        FakeCheckRun,
        FakeCIRun,
        FakeComment,
        FakeComparison,
        FakeDelivery,
        FakePull,
        FakeRepo,
        FakeRuleset,
        FakeStatus,
    )

Json = dict[str, Any]

HTML = "https://github.com"
EPOCH_ISO = "2026-01-01T00:00:00Z"
BOT_ID = 41898282
WEBHOOK_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user_id(login: str) -> int:
    return (
        BOT_ID if login.endswith("[bot]") else int(hashlib.sha1(login.encode()).hexdigest()[:7], 16)
    )


def user(api: str, login: str) -> Json:
    return simple_user(api, login, user_id(login), "Bot" if login.endswith("[bot]") else "User")


def node_id(kind: str, ident: int | str) -> str:
    return f"{kind}_" + hashlib.sha1(f"{kind}{ident}".encode()).hexdigest()[:16]


def simple_user(api: str, login: str, ident: int, kind: str = "User") -> Json:
    base = f"{api}/users/{login}"
    return {
        "login": login,
        "id": ident,
        "node_id": node_id("U", ident),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{ident}?v=4",
        "gravatar_id": "",
        "url": base,
        "html_url": f"{HTML}/{login}",
        "followers_url": f"{base}/followers",
        "following_url": f"{base}/following{{/other_user}}",
        "gists_url": f"{base}/gists{{/gist_id}}",
        "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{base}/subscriptions",
        "organizations_url": f"{base}/orgs",
        "repos_url": f"{base}/repos",
        "events_url": f"{base}/events{{/privacy}}",
        "received_events_url": f"{base}/received_events",
        "type": kind,
        "site_admin": False,
        "user_view_type": "public",
    }


def repository(api: str, repo: FakeRepo) -> Json:
    u = f"{api}/repos/{repo.full_name}"
    return {
        "id": repo.id,
        "node_id": node_id("R", repo.id),
        "name": repo.name,
        "full_name": repo.full_name,
        "private": repo.private,
        "owner": simple_user(api, repo.owner, repo.owner_id, "Organization"),
        "html_url": f"{HTML}/{repo.full_name}",
        "description": None,
        "fork": False,
        "url": u,
        "archive_url": f"{u}/{{archive_format}}{{/ref}}",
        "assignees_url": f"{u}/assignees{{/user}}",
        "blobs_url": f"{u}/git/blobs{{/sha}}",
        "branches_url": f"{u}/branches{{/branch}}",
        "collaborators_url": f"{u}/collaborators{{/collaborator}}",
        "comments_url": f"{u}/comments{{/number}}",
        "commits_url": f"{u}/commits{{/sha}}",
        "compare_url": f"{u}/compare/{{base}}...{{head}}",
        "contents_url": f"{u}/contents/{{+path}}",
        "contributors_url": f"{u}/contributors",
        "deployments_url": f"{u}/deployments",
        "downloads_url": f"{u}/downloads",
        "events_url": f"{u}/events",
        "forks_url": f"{u}/forks",
        "git_commits_url": f"{u}/git/commits{{/sha}}",
        "git_refs_url": f"{u}/git/refs{{/sha}}",
        "git_tags_url": f"{u}/git/tags{{/sha}}",
        "git_url": f"git://github.com/{repo.full_name}.git",
        "issue_comment_url": f"{u}/issues/comments{{/number}}",
        "issue_events_url": f"{u}/issues/events{{/number}}",
        "issues_url": f"{u}/issues{{/number}}",
        "keys_url": f"{u}/keys{{/key_id}}",
        "labels_url": f"{u}/labels{{/name}}",
        "languages_url": f"{u}/languages",
        "merges_url": f"{u}/merges",
        "milestones_url": f"{u}/milestones{{/number}}",
        "notifications_url": f"{u}/notifications{{?since,all,participating}}",
        "pulls_url": f"{u}/pulls{{/number}}",
        "releases_url": f"{u}/releases{{/id}}",
        "ssh_url": f"git@github.com:{repo.full_name}.git",
        "stargazers_url": f"{u}/stargazers",
        "statuses_url": f"{u}/statuses/{{sha}}",
        "subscribers_url": f"{u}/subscribers",
        "subscription_url": f"{u}/subscription",
        "tags_url": f"{u}/tags",
        "teams_url": f"{u}/teams",
        "trees_url": f"{u}/git/trees{{/sha}}",
        "clone_url": f"{HTML}/{repo.full_name}.git",
        "mirror_url": None,
        "hooks_url": f"{u}/hooks",
        "svn_url": f"{HTML}/{repo.full_name}",
        "homepage": None,
        "language": "Python",
        "forks_count": 0,
        "forks": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "watchers": 0,
        "size": 108,
        "default_branch": repo.default_branch,
        "open_issues_count": sum(1 for p in repo.pulls.values() if p.state == "open"),
        "open_issues": sum(1 for p in repo.pulls.values() if p.state == "open"),
        "is_template": False,
        "topics": [],
        "has_issues": True,
        "has_projects": True,
        "has_wiki": True,
        "has_pages": False,
        "has_downloads": True,
        "has_discussions": False,
        "archived": repo.archived,
        "disabled": False,
        "visibility": "private" if repo.private else "public",
        "pushed_at": EPOCH_ISO,
        "created_at": EPOCH_ISO,
        "updated_at": EPOCH_ISO,
        "permissions": {
            "admin": False,
            "maintain": False,
            "push": True,
            "triage": True,
            "pull": True,
        },
        "allow_rebase_merge": True,
        "allow_squash_merge": True,
        "allow_merge_commit": True,
        "allow_auto_merge": False,
        "delete_branch_on_merge": False,
        "allow_update_branch": True,
        "license": None,
    }


def label(api: str, repo: FakeRepo, name: str) -> Json:
    ident = repo.label_ids.setdefault(name, 9000 + len(repo.label_ids))
    return {
        "id": ident,
        "node_id": node_id("LA", ident),
        "url": f"{api}/repos/{repo.full_name}/labels/{name}",
        "name": name,
        "description": None,
        "color": "ededed",
        "default": False,
    }


def _link(href: str) -> Json:
    return {"href": href}


def _ref_side(api: str, repo: FakeRepo, ref: str, sha: str) -> Json:
    return {
        "label": f"{repo.owner}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": simple_user(api, repo.owner, repo.owner_id, "Organization"),
        "repo": repository(api, repo),
    }


def pull_request(
    api: str, repo: FakeRepo, pr: FakePull, mergeable: bool | None, mergeable_state: str
) -> Json:
    u = f"{api}/repos/{repo.full_name}"
    html = f"{HTML}/{repo.full_name}/pull/{pr.number}"
    author = simple_user(api, pr.user, pr.user_id)
    merged_by = simple_user(api, "mergequeue[bot]", 41898282, "Bot") if pr.merged else None
    return {
        "url": f"{u}/pulls/{pr.number}",
        "id": pr.id,
        "node_id": node_id("PR", pr.id),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": f"{u}/issues/{pr.number}",
        "commits_url": f"{u}/pulls/{pr.number}/commits",
        "review_comments_url": f"{u}/pulls/{pr.number}/comments",
        "review_comment_url": f"{u}/pulls/comments{{/number}}",
        "comments_url": f"{u}/issues/{pr.number}/comments",
        "statuses_url": f"{u}/statuses/{pr.head_sha}",
        "number": pr.number,
        "state": pr.state,
        "locked": False,
        "title": pr.title,
        "user": author,
        "body": pr.body,
        "labels": [label(api, repo, name) for name in pr.labels],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": EPOCH_ISO,
        "updated_at": EPOCH_ISO,
        "closed_at": EPOCH_ISO if pr.state == "closed" else None,
        "merged_at": EPOCH_ISO if pr.merged else None,
        "merge_commit_sha": pr.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": _ref_side(api, repo, pr.head_ref, pr.head_sha),
        "base": _ref_side(api, repo, pr.base_ref, repo.branches.get(pr.base_ref, pr.base_sha)),
        "_links": {
            "self": _link(f"{u}/pulls/{pr.number}"),
            "html": _link(html),
            "issue": _link(f"{u}/issues/{pr.number}"),
            "comments": _link(f"{u}/issues/{pr.number}/comments"),
            "review_comments": _link(f"{u}/pulls/{pr.number}/comments"),
            "review_comment": _link(f"{u}/pulls/comments{{/number}}"),
            "commits": _link(f"{u}/pulls/{pr.number}/commits"),
            "statuses": _link(f"{u}/statuses/{pr.head_sha}"),
        },
        "author_association": "MEMBER",
        "auto_merge": None,
        "draft": pr.draft,
        "merged": pr.merged,
        "mergeable": mergeable,
        "rebaseable": mergeable,
        "mergeable_state": mergeable_state,
        "merged_by": merged_by,
        "comments": len(pr.comments),
        "review_comments": 0,
        "maintainer_can_modify": pr.maintainer_can_modify,
        "commits": 1,
        "additions": 10,
        "deletions": 2,
        "changed_files": 1,
    }


def integration(api: str, app_id: int, slug: str) -> Json:
    return {
        "id": app_id,
        "slug": slug,
        "node_id": node_id("A", app_id),
        "client_id": f"Iv1.{app_id:016x}",
        "owner": simple_user(api, "github", 9919, "Organization"),
        "name": slug.replace("-", " ").title(),
        "description": "",
        "external_url": f"https://{slug}.example.com",
        "html_url": f"{HTML}/apps/{slug}",
        "created_at": EPOCH_ISO,
        "updated_at": EPOCH_ISO,
        "permissions": {"checks": "write", "metadata": "read"},
        "events": ["check_run", "check_suite"],
    }


def check_run(api: str, repo: FakeRepo, run: FakeCheckRun, pulls: list[FakePull]) -> Json:
    u = f"{api}/repos/{repo.full_name}"
    completed = run.status == "completed"
    return {
        "id": run.id,
        "head_sha": run.head_sha,
        "node_id": node_id("CR", run.id),
        "external_id": str(run.id),
        "url": f"{u}/check-runs/{run.id}",
        "html_url": f"{HTML}/{repo.full_name}/runs/{run.id}",
        "details_url": run.details_url,
        "status": run.status,
        "conclusion": run.conclusion if completed else None,
        "started_at": EPOCH_ISO,
        "completed_at": EPOCH_ISO if completed else None,
        "output": {
            "title": run.title if run.title is not None else run.name,
            "summary": run.summary or f"{run.name}: {run.conclusion or run.status}",
            "text": None,
            "annotations_count": 0,
            "annotations_url": f"{u}/check-runs/{run.id}/annotations",
        },
        "name": run.name,
        "check_suite": {"id": run.suite_id},
        "app": integration(api, run.app_id, run.app_slug),
        "pull_requests": [_pull_minimal(api, repo, p) for p in pulls],
    }


def _pull_minimal(api: str, repo: FakeRepo, pr: FakePull) -> Json:
    u = f"{api}/repos/{repo.full_name}"
    side = {"id": repo.id, "url": u, "name": repo.name}
    return {
        "id": pr.id,
        "number": pr.number,
        "url": f"{u}/pulls/{pr.number}",
        "head": {"ref": pr.head_ref, "sha": pr.head_sha, "repo": side},
        "base": {"ref": pr.base_ref, "sha": repo.branches.get(pr.base_ref, ""), "repo": side},
    }


def commit_status(api: str, repo: FakeRepo, st: FakeStatus) -> Json:
    return {
        "url": f"{api}/repos/{repo.full_name}/statuses/{st.sha}",
        "avatar_url": "https://avatars.githubusercontent.com/u/9919?v=4",
        "id": st.id,
        "node_id": node_id("SC", st.id),
        "state": st.state,
        "description": st.description,
        "target_url": st.target_url,
        "context": st.context,
        "created_at": EPOCH_ISO,
        "updated_at": EPOCH_ISO,
    }


def status(api: str, repo: FakeRepo, st: FakeStatus) -> Json:
    """A commit status as `POST .../statuses/{sha}` answers it (with its creator)."""
    return {**commit_status(api, repo, st), "creator": user(api, st.creator)}


def combined_status(
    api: str, repo: FakeRepo, sha: str, state: str, statuses: list[FakeStatus]
) -> Json:
    return {
        "state": state,
        "statuses": [commit_status(api, repo, st) for st in statuses],
        "sha": sha,
        "total_count": len(statuses),
        "repository": repository(api, repo),
        "commit_url": f"{api}/repos/{repo.full_name}/commits/{sha}",
        "url": f"{api}/repos/{repo.full_name}/commits/{sha}/status",
    }


def _git_user(name: str) -> Json:
    login = name.lower().replace(" ", "-")
    return {"name": name, "email": f"{login}@users.noreply.github.com", "date": EPOCH_ISO}


def _parent(api: str, repo: FakeRepo, sha: str) -> Json:
    u = f"{api}/repos/{repo.full_name}"
    return {
        "sha": sha,
        "url": f"{u}/commits/{sha}",
        "html_url": f"{HTML}/{repo.full_name}/commit/{sha}",
    }


def commit(api: str, repo: FakeRepo, sha: str) -> Json:
    """A commit as the REST commits, compare, branches and merges endpoints give it."""
    u = f"{api}/repos/{repo.full_name}"
    known = repo.git.commits.get(sha)
    if known is not None:
        tree, parents, message = known.tree_sha, list(known.parents), known.message
        author = _git_user(known.author)
    else:
        tree = hashlib.sha1(f"tree{sha}".encode()).hexdigest()
        parents = [hashlib.sha1(f"parent{sha}".encode()).hexdigest()]
        message, author = "Fake commit", _git_user("Monalisa Octocat")
    return {
        "url": f"{u}/commits/{sha}",
        "sha": sha,
        "node_id": node_id("C", sha),
        "html_url": f"{HTML}/{repo.full_name}/commit/{sha}",
        "comments_url": f"{u}/commits/{sha}/comments",
        "commit": {
            "url": f"{u}/git/commits/{sha}",
            "author": author,
            "committer": _git_user("GitHub"),
            "message": message,
            "comment_count": 0,
            "tree": {"sha": tree, "url": f"{u}/git/trees/{tree}"},
        },
        "author": None,
        "committer": None,
        "parents": [_parent(api, repo, p) for p in parents],
    }


def git_commit(api: str, repo: FakeRepo, c: Commit) -> Json:
    """A commit as the git database API (`/git/commits/{sha}`) gives it."""
    u = f"{api}/repos/{repo.full_name}"
    return {
        "sha": c.sha,
        "node_id": node_id("C", c.sha),
        "url": f"{u}/git/commits/{c.sha}",
        "html_url": f"{HTML}/{repo.full_name}/commit/{c.sha}",
        "author": _git_user(c.author),
        "committer": _git_user("GitHub"),
        "message": c.message,
        "tree": {"sha": c.tree_sha, "url": f"{u}/git/trees/{c.tree_sha}"},
        "parents": [_parent(api, repo, p) for p in c.parents],
        "verification": {
            "verified": False,
            "reason": "unsigned",
            "signature": None,
            "payload": None,
            "verified_at": None,
        },
    }


def blob_sha(content: str) -> str:
    """Git's blob sha of a file's content (what the contents API calls `sha`)."""
    data = content.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def content_file(api: str, repo: FakeRepo, path: str, content: str, ref: str) -> Json:
    """A file as `GET /repos/{o}/{r}/contents/{path}` gives it: base64, wrapped at 60."""
    u = f"{api}/repos/{repo.full_name}"
    sha = blob_sha(content)
    encoded = base64.b64encode(content.encode()).decode()
    wrapped = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))
    self_url = f"{u}/contents/{path}?ref={ref}"
    html = f"{HTML}/{repo.full_name}/blob/{ref}/{path}"
    git = f"{u}/git/blobs/{sha}"
    return {
        "type": "file",
        "encoding": "base64",
        "size": len(content.encode()),
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "content": wrapped,
        "sha": sha,
        "url": self_url,
        "git_url": git,
        "html_url": html,
        "download_url": f"https://raw.githubusercontent.com/{repo.full_name}/{ref}/{path}",
        "_links": {"self": self_url, "git": git, "html": html},
    }


# pull-request-simple (lists of pull requests) lacks the single pull request's counts
# and merge state.
_NOT_IN_SIMPLE = (
    "merged",
    "mergeable",
    "rebaseable",
    "mergeable_state",
    "merged_by",
    "comments",
    "review_comments",
    "maintainer_can_modify",
    "commits",
    "additions",
    "deletions",
    "changed_files",
)


def pull_request_simple(api: str, repo: FakeRepo, pr: FakePull) -> Json:
    full = pull_request(api, repo, pr, None, "unknown")
    return {k: v for k, v in full.items() if k not in _NOT_IN_SIMPLE}


def push_event(
    api: str,
    repo: FakeRepo,
    branch: str,
    before: str,
    after: str,
    commits: list[tuple[Commit, list[str], list[str], list[str]]],
) -> Json:
    """The `push` webhook of `branch` moving from `before` to `after`: each pushed commit
    (oldest first) with the paths it added, modified and removed."""
    template = _webhook_fixture("push")
    payload = copy.deepcopy(template)

    def person(name: str) -> Json:
        login = name.lower().replace(" ", "-")
        return {"name": name, "email": f"{login}@users.noreply.github.com", "username": login}

    items = [
        {
            "id": c.sha,
            "tree_id": c.tree_sha,
            "distinct": True,
            "message": c.message,
            "timestamp": EPOCH_ISO,
            "url": f"{HTML}/{repo.full_name}/commit/{c.sha}",
            "author": person(c.author),
            "committer": person("GitHub"),
            "added": added,
            "removed": removed,
            "modified": modified,
        }
        for c, added, modified, removed in commits
    ]
    payload.update(
        {
            "ref": f"refs/heads/{branch}",
            "before": before,
            "after": after,
            "created": False,
            "deleted": False,
            "forced": False,
            "base_ref": None,
            "compare": f"{HTML}/{repo.full_name}/compare/{before[:12]}...{after[:12]}",
            "commits": items,
            "head_commit": items[-1] if items else None,
            "repository": _webhook_repository(api, repo, template["repository"]),
        }
    )
    payload.pop("installation", None)
    return payload


def workflow_run(api: str, repo: FakeRepo, run: FakeCIRun) -> Json:
    """A scripted CI run as GitHub Actions lists it (`/actions/runs`): a push workflow
    named after its check, `.github/workflows/<name>.yml`."""
    assert run.workflow_run_id is not None
    u = f"{api}/repos/{repo.full_name}"
    ident = run.workflow_run_id
    workflow_id = int(hashlib.sha1(f"{repo.full_name}:{run.name}".encode()).hexdigest()[:7], 16)
    commit = repo.git.get(run.sha)
    author = _git_user(commit.author)
    completed = run.status == "completed"
    return {
        "id": ident,
        "name": run.name,
        "node_id": node_id("WFR", ident),
        "check_suite_id": int(hashlib.sha1(f"suite{run.sha}".encode()).hexdigest()[:8], 16),
        "head_branch": run.branch,
        "head_sha": run.sha,
        "path": f".github/workflows/{run.name}.yml",
        "run_number": run.run_number,
        "run_attempt": 1,
        "event": "push",
        "display_title": commit.message.splitlines()[0] if commit.message else run.name,
        "status": run.status,
        "conclusion": run.conclusion if completed else None,
        "workflow_id": workflow_id,
        "url": f"{u}/actions/runs/{ident}",
        "html_url": f"{HTML}/{repo.full_name}/actions/runs/{ident}",
        "pull_requests": [],
        "created_at": iso(run.created_at),
        "updated_at": iso(run.created_at),
        "run_started_at": iso(run.created_at),
        "actor": user(api, "mergequeue[bot]"),
        "triggering_actor": user(api, "mergequeue[bot]"),
        "jobs_url": f"{u}/actions/runs/{ident}/jobs",
        "logs_url": f"{u}/actions/runs/{ident}/logs",
        "check_suite_url": f"{u}/check-suites/{ident}",
        "artifacts_url": f"{u}/actions/runs/{ident}/artifacts",
        "cancel_url": f"{u}/actions/runs/{ident}/cancel",
        "rerun_url": f"{u}/actions/runs/{ident}/rerun",
        "previous_attempt_url": None,
        "workflow_url": f"{u}/actions/workflows/{workflow_id}",
        "head_commit": {
            "id": run.sha,
            "tree_id": commit.tree_sha,
            "message": commit.message,
            "timestamp": EPOCH_ISO,
            "author": {"name": author["name"], "email": author["email"]},
            "committer": {"name": "GitHub", "email": "noreply@github.com"},
        },
        "repository": repository(api, repo),
        "head_repository": repository(api, repo),
        "head_repository_id": repo.id,
    }


def git_ref(api: str, repo: FakeRepo, ref: str, sha: str) -> Json:
    """A reference (`ref` fully qualified, e.g. refs/heads/main)."""
    u = f"{api}/repos/{repo.full_name}"
    return {
        "ref": ref,
        "node_id": node_id("REF", f"{repo.full_name}:{ref}"),
        "url": f"{u}/git/{ref}",
        "object": {"type": "commit", "sha": sha, "url": f"{u}/git/commits/{sha}"},
    }


@cache
def _webhook_fixture(name: str) -> Json:
    loaded: Json = json.loads((WEBHOOK_FIXTURES / f"{name}.json").read_text())
    return loaded


def _webhook_repository(api: str, repo: FakeRepo, template: Json) -> Json:
    out = copy.deepcopy(template)
    out.update(
        {
            "id": repo.id,
            "node_id": node_id("R", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "html_url": f"{HTML}/{repo.full_name}",
            "url": f"{api}/repos/{repo.full_name}",
            "default_branch": repo.default_branch,
            "archived": repo.archived,
            "visibility": "private" if repo.private else "public",
        }
    )
    out["owner"] = {
        **out["owner"],
        "login": repo.owner,
        "id": repo.owner_id,
        "type": "Organization",
    }
    return out


def _webhook_suite(
    api: str, repo: FakeRepo, run: FakeCheckRun, pulls: list[FakePull], branch: str, template: Json
) -> Json:
    u = f"{api}/repos/{repo.full_name}"
    suite = copy.deepcopy(template)
    suite.update(
        {
            "id": run.suite_id,
            "node_id": node_id("CS", run.suite_id),
            "head_branch": branch,
            "head_sha": run.head_sha,
            "status": run.status,
            "conclusion": run.conclusion,
            "url": f"{u}/check-suites/{run.suite_id}",
            "before": None,
            "after": run.head_sha,
            "pull_requests": [_pull_minimal(api, repo, p) for p in pulls],
        }
    )
    suite["app"] = {**suite["app"], "id": run.app_id, "slug": run.app_slug}
    return suite


def check_run_event(
    api: str, repo: FakeRepo, run: FakeCheckRun, pulls: list[FakePull], branch: str
) -> Json:
    """The `check_run` webhook (action completed) for a completed run."""
    template = _webhook_fixture("check_run.completed")
    payload = copy.deepcopy(template)
    body = check_run(api, repo, run, pulls)
    event_run = payload["check_run"]
    for key in ("id", "node_id", "head_sha", "external_id", "url", "html_url", "details_url"):
        event_run[key] = body[key]
    event_run.update(
        {
            "status": "completed",
            "conclusion": run.conclusion,
            "started_at": EPOCH_ISO,
            "completed_at": EPOCH_ISO,
            "name": run.name,
            "pull_requests": body["pull_requests"],
        }
    )
    event_run["output"] = {
        "title": body["output"]["title"],
        "summary": body["output"]["summary"],
        "text": None,
        "annotations_count": 0,
        "annotations_url": body["output"]["annotations_url"],
    }
    event_run["app"] = {**event_run["app"], "id": run.app_id, "slug": run.app_slug}
    event_run["check_suite"] = _webhook_suite(
        api, repo, run, pulls, branch, template["check_run"]["check_suite"]
    )
    payload["repository"] = _webhook_repository(api, repo, template["repository"])
    payload.pop("installation", None)
    return payload


def check_suite_event(
    api: str, repo: FakeRepo, run: FakeCheckRun, pulls: list[FakePull], branch: str, c: Commit
) -> Json:
    """The `check_suite` webhook (action completed) of a run's suite (one run a suite)."""
    template = _webhook_fixture("check_suite.completed")
    payload = copy.deepcopy(template)
    suite = _webhook_suite(api, repo, run, pulls, branch, template["check_suite"])
    suite_url = f"{api}/repos/{repo.full_name}/check-suites/{run.suite_id}"
    suite.update({"latest_check_runs_count": 1, "check_runs_url": f"{suite_url}/check-runs"})
    suite["head_commit"] = {
        **suite["head_commit"],
        "id": c.sha,
        "tree_id": c.tree_sha,
        "message": c.message,
    }
    payload["check_suite"] = suite
    payload["repository"] = _webhook_repository(api, repo, template["repository"])
    payload.pop("installation", None)
    return payload


def status_check_policy(api: str, repo: FakeRepo, branch: str) -> Json:
    prot = repo.protection[branch]
    url = f"{api}/repos/{repo.full_name}/branches/{branch}/protection/required_status_checks"
    return {
        "url": url,
        "strict": prot.strict,
        "contexts": list(prot.contexts),
        "checks": [{"context": c, "app_id": a} for c, a in prot.all_checks()],
        "contexts_url": f"{url}/contexts",
    }


def branch_with_protection(api: str, repo: FakeRepo, branch: str) -> Json:
    u = f"{api}/repos/{repo.full_name}/branches/{branch}"
    prot = repo.protection.get(branch)
    protection: Json = {"enabled": False}
    if prot is not None:
        protection = {
            "enabled": True,
            "required_status_checks": {
                "enforcement_level": "non_admins",
                "contexts": list(prot.contexts),
                "checks": [{"context": c, "app_id": a} for c, a in prot.all_checks()],
                "strict": prot.strict,
            },
        }
    return {
        "name": branch,
        "commit": commit(api, repo, repo.branches[branch]),
        "_links": {"self": u, "html": f"{HTML}/{repo.full_name}/tree/{branch}"},
        "protected": prot is not None,
        "protection": protection,
        "protection_url": f"{u}/protection",
    }


def issue_comment(api: str, repo: FakeRepo, comment: FakeComment) -> Json:
    u = f"{api}/repos/{repo.full_name}"
    number, ident = comment.number, comment.id
    return {
        "id": ident,
        "node_id": node_id("IC", ident),
        "url": f"{u}/issues/comments/{ident}",
        "html_url": f"{HTML}/{repo.full_name}/pull/{number}#issuecomment-{ident}",
        "body": comment.body,
        "user": user(api, comment.author),
        "created_at": iso(comment.created_at),
        "updated_at": iso(comment.updated_at or comment.created_at),
        "issue_url": f"{u}/issues/{number}",
        "author_association": comment.author_association,
    }


def reaction(api: str, reaction: dict[str, Any]) -> Json:
    """A reaction (`{"id", "content", "user"}` as a comment keeps it)."""
    return {
        "id": reaction["id"],
        "node_id": node_id("REA", reaction["id"]),
        "user": user(api, reaction["user"]),
        "content": reaction["content"],
        "created_at": EPOCH_ISO,
    }


def issue(api: str, repo: FakeRepo, pr: FakePull) -> Json:
    """A pull request as the issues API lists it (with its `pull_request` links)."""
    u = f"{api}/repos/{repo.full_name}"
    html = f"{HTML}/{repo.full_name}/pull/{pr.number}"
    return {
        "id": pr.id,
        "node_id": node_id("I", pr.id),
        "url": f"{u}/issues/{pr.number}",
        "repository_url": u,
        "labels_url": f"{u}/issues/{pr.number}/labels{{/name}}",
        "comments_url": f"{u}/issues/{pr.number}/comments",
        "events_url": f"{u}/issues/{pr.number}/events",
        "html_url": html,
        "number": pr.number,
        "state": pr.state,
        "title": pr.title,
        "body": pr.body,
        "user": simple_user(api, pr.user, pr.user_id),
        "labels": [label(api, repo, name) for name in pr.labels],
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "locked": False,
        "active_lock_reason": None,
        "comments": len(pr.comments),
        "pull_request": {
            "url": f"{u}/pulls/{pr.number}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "merged_at": EPOCH_ISO if pr.merged else None,
        },
        "closed_at": EPOCH_ISO if pr.state == "closed" else None,
        "created_at": EPOCH_ISO,
        "updated_at": EPOCH_ISO,
        "draft": pr.draft,
        "author_association": "MEMBER",
    }


def branch_rules(repo: FakeRepo, rulesets: list[FakeRuleset]) -> list[Json]:
    return [
        {
            "type": "required_status_checks",
            "parameters": {
                "required_status_checks": [{"context": c} for c in ruleset.required_checks],
                "strict_required_status_checks_policy": False,
            },
            "ruleset_source_type": "Repository",
            "ruleset_source": repo.full_name,
            "ruleset_id": ruleset.id,
        }
        for ruleset in rulesets
        if ruleset.required_checks
    ]


def comparison(api: str, repo: FakeRepo, basehead: str, cmp: FakeComparison) -> Json:
    u = f"{api}/repos/{repo.full_name}"
    html = f"{HTML}/{repo.full_name}/compare/{basehead}"
    return {
        "url": f"{u}/compare/{basehead}",
        "html_url": html,
        "permalink_url": f"{HTML}/{repo.full_name}/compare/{cmp.base_sha}...{basehead}",
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "base_commit": commit(api, repo, cmp.base_sha),
        "merge_base_commit": commit(api, repo, cmp.merge_base_sha),
        "status": cmp.status,
        "ahead_by": cmp.ahead_by,
        "behind_by": cmp.behind_by,
        "total_commits": cmp.ahead_by,
        "commits": [commit(api, repo, sha) for sha in cmp.commits],
        "files": [],
    }


def collaborator_permission(api: str, login: str, permission: str, role_name: str) -> Json:
    levels = ["read", "triage", "write", "maintain", "admin"]
    rank = levels.index(role_name) if role_name in levels else -1
    return {
        "permission": permission,
        "role_name": role_name,
        "user": {
            **user(api, login),
            "role_name": role_name,
            "permissions": {
                "pull": rank >= 0,
                "triage": rank >= 1,
                "push": rank >= 2,
                "maintain": rank >= 3,
                "admin": rank >= 4,
            },
        },
    }


def installation(
    api: str,
    ident: int,
    account: str,
    app_id: int,
    suspended_at: float | None,
    permissions: dict[str, str],
) -> Json:
    return {
        "id": ident,
        # GitHub's description says allOf(simple user, enterprise) where it means either:
        # an account carrying both shapes' required fields satisfies it, as GitHub's do.
        "account": {
            **simple_user(api, account, user_id(account), "Organization"),
            "name": account,
            "slug": account,
            "created_at": EPOCH_ISO,
            "updated_at": EPOCH_ISO,
        },
        "repository_selection": "selected",
        "access_tokens_url": f"{api}/app/installations/{ident}/access_tokens",
        "repositories_url": f"{api}/installation/repositories",
        "html_url": f"{HTML}/organizations/{account}/settings/installations/{ident}",
        "app_id": app_id,
        "app_slug": "mergequeue",
        "target_id": user_id(account),
        "target_type": "Organization",
        "permissions": dict(permissions),
        "events": ["check_run", "check_suite", "issue_comment", "pull_request", "push", "status"],
        "created_at": EPOCH_ISO,
        "updated_at": EPOCH_ISO,
        "single_file_name": None,
        "suspended_by": None if suspended_at is None else user(api, account),
        "suspended_at": None if suspended_at is None else iso(suspended_at),
    }


def hook_delivery(d: FakeDelivery) -> Json:
    return {
        "id": d.id,
        "guid": d.guid,
        "delivered_at": iso(d.delivered_at),
        "redelivery": d.redelivery,
        "duration": d.duration,
        "status": d.status,
        "status_code": d.status_code,
        "event": d.event,
        "action": d.action,
        "installation_id": d.installation_id,
        "repository_id": d.repository_id,
        "throttled_at": None,
    }


def private_user(api: str, login: str, ident: int) -> Json:
    """`GET /user` for the user of a user access token: their private view."""
    return {
        **simple_user(api, login, ident),
        "user_view_type": "private",
        "name": login.capitalize(),
        "company": None,
        "blog": "",
        "location": None,
        "email": None,
        "hireable": None,
        "bio": None,
        "twitter_username": None,
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": EPOCH_ISO,
        "updated_at": EPOCH_ISO,
        "private_gists": 0,
        "total_private_repos": 0,
        "owned_private_repos": 0,
        "disk_usage": 0,
        "collaborators": 0,
        "two_factor_authentication": True,
    }


def full_repository(api: str, repo: FakeRepo) -> Json:
    """`GET /repos/{owner}/{repo}`: the repository with what only the full view has."""
    return {
        **repository(api, repo),
        "network_count": 0,
        "subscribers_count": 0,
        "open_issues_count": sum(1 for p in repo.pulls.values() if p.state == "open"),
    }
