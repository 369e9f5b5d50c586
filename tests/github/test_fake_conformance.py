"""The fake GitHub answers with GitHub's real status codes and shapes.

Every scenario's answer is validated against the response schema of that operation in
GitHub's published OpenAPI description: if the fake drifts from the real API (a missing
required field, a wrong type, a status code GitHub never sends), these tests fail.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest

from mergequeue.github import make_app_jwt
from tests.fakegithub import FakeGitHub
from tests.fakegithub.app import ROUTES
from tests.github import openapi
from tests.github.conftest import (
    APP_ID,
    FULL_NAME,
    INSTALLATION_ID,
    INSTALLATION_TOKEN,
    OTHER_REPO,
    STATIC_TOKEN,
    KeyPair,
)

PULL = "/repos/{owner}/{repo}/pulls/{pull_number}"
UPDATE = "/repos/{owner}/{repo}/pulls/{pull_number}/update-branch"
MERGE = "/repos/{owner}/{repo}/pulls/{pull_number}/merge"
CHECK_RUNS = "/repos/{owner}/{repo}/commits/{ref}/check-runs"
STATUS = "/repos/{owner}/{repo}/commits/{ref}/status"
COMMENTS = "/repos/{owner}/{repo}/issues/{issue_number}/comments"
LABELS = "/repos/{owner}/{repo}/issues/{issue_number}/labels"
LABEL = "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}"
REQUIRED = "/repos/{owner}/{repo}/branches/{branch}/protection/required_status_checks"
BRANCH = "/repos/{owner}/{repo}/branches/{branch}"
RULES = "/repos/{owner}/{repo}/rules/branches/{branch}"
COMPARE = "/repos/{owner}/{repo}/compare/{basehead}"
PERMISSION = "/repos/{owner}/{repo}/collaborators/{username}/permission"
ISSUES = "/repos/{owner}/{repo}/issues"
REPO_COMMENTS = "/repos/{owner}/{repo}/issues/comments"
GIT_REF = "/repos/{owner}/{repo}/git/ref/{ref}"
MATCHING_REFS = "/repos/{owner}/{repo}/git/matching-refs/{ref}"
REFS = "/repos/{owner}/{repo}/git/refs"
REF = "/repos/{owner}/{repo}/git/refs/{ref}"
MERGES = "/repos/{owner}/{repo}/merges"
GIT_COMMIT = "/repos/{owner}/{repo}/git/commits/{commit_sha}"
CONTENTS = "/repos/{owner}/{repo}/contents/{path}"
COMMIT_PULLS = "/repos/{owner}/{repo}/commits/{commit_sha}/pulls"
NEW_CHECK_RUN = "/repos/{owner}/{repo}/check-runs"
CHECK_RUN = "/repos/{owner}/{repo}/check-runs/{check_run_id}"
STATUSES = "/repos/{owner}/{repo}/statuses/{sha}"
COMMENT = "/repos/{owner}/{repo}/issues/comments/{comment_id}"
REACTIONS = "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"
INSTALLATIONS = "/app/installations"
DELIVERIES = "/app/hook/deliveries"
ATTEMPTS = "/app/hook/deliveries/{delivery_id}/attempts"
TOKENS = "/app/installations/{installation_id}/access_tokens"
INSTALL_REPOS = "/installation/repositories"
WORKFLOW_RUNS = "/repos/{owner}/{repo}/actions/runs"
CANCEL_RUN = "/repos/{owner}/{repo}/actions/runs/{run_id}/cancel"
RERUN_FAILED = "/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs"
USER = "/user"
REPO = "/repos/{owner}/{repo}"
R = f"/repos/{FULL_NAME}"


@dataclass
class Env:
    fake: FakeGitHub
    http: httpx.AsyncClient
    keys: KeyPair

    async def call(
        self, method: str, path: str, *, token: str = INSTALLATION_TOKEN, json: object = None
    ) -> httpx.Response:
        return await self.http.request(
            method, path, json=json, headers={"Authorization": f"Bearer {token}"}
        )

    def jwt(self) -> str:
        return make_app_jwt(app_id=APP_ID, private_key=self.keys.private_pem)

    def pull(self, **kwargs: object) -> dict[str, str]:
        return self.fake.add_pull(full_name=FULL_NAME, **kwargs)  # type: ignore[arg-type]

    def main(self) -> str:
        return self.fake.repo(FULL_NAME).branches["main"]

    def staging(self, branch: str = "mergequeue/main/1") -> str:
        """A staging branch at main's head."""
        return self.fake.create_ref(
            full_name=FULL_NAME, ref=f"refs/heads/{branch}", sha=self.main()
        )


Scenario = Callable[[Env], Awaitable[httpx.Response]]
SCENARIOS: dict[str, tuple[str, str, int, Scenario]] = {}


def scenario(method: str, template: str, status: int) -> Callable[[Scenario], Scenario]:
    def register(fn: Scenario) -> Scenario:
        SCENARIOS[fn.__name__] = (method, template, status, fn)
        return fn

    return register


# -- App auth -----------------------------------------------------------------------------


@scenario("POST", TOKENS, 201)
async def mint_token(env: Env) -> httpx.Response:
    return await env.call(
        "POST", f"/app/installations/{INSTALLATION_ID}/access_tokens", token=env.jwt()
    )


@scenario("POST", TOKENS, 401)
async def mint_token_with_installation_token(env: Env) -> httpx.Response:
    return await env.call("POST", f"/app/installations/{INSTALLATION_ID}/access_tokens")


@scenario("POST", TOKENS, 404)
async def mint_token_unknown_installation(env: Env) -> httpx.Response:
    return await env.call("POST", "/app/installations/999/access_tokens", token=env.jwt())


@scenario("GET", INSTALL_REPOS, 200)
async def installation_repositories(env: Env) -> httpx.Response:
    return await env.call("GET", INSTALL_REPOS)


@scenario("GET", INSTALL_REPOS, 401)
async def installation_repositories_bad_token(env: Env) -> httpx.Response:
    return await env.call("GET", INSTALL_REPOS, token="ghs_nonsense")


@scenario("GET", INSTALL_REPOS, 403)
async def installation_repositories_static_token(env: Env) -> httpx.Response:
    return await env.call("GET", INSTALL_REPOS, token=STATIC_TOKEN)


# -- users and repositories as a signed-in user sees them (the dashboard) -----------------


@scenario("GET", USER, 200)
async def authenticated_user(env: Env) -> httpx.Response:
    token = env.fake.user_token(login="mona")
    response = await env.call("GET", USER, token=token)
    assert response.json()["login"] == "mona"
    return response


@scenario("GET", USER, 403)
async def authenticated_user_with_installation_token(env: Env) -> httpx.Response:
    return await env.call("GET", USER)


@scenario("GET", USER, 401)
async def authenticated_user_bad_token(env: Env) -> httpx.Response:
    return await env.call("GET", USER, token="ghu_nonsense")


@scenario("GET", REPO, 200)
async def repository_as_collaborator(env: Env) -> httpx.Response:
    env.fake.set_permission(full_name=FULL_NAME, username="mona", role_name="maintain")
    response = await env.call("GET", R, token=env.fake.user_token(login="mona"))
    assert response.json()["permissions"]["maintain"] is True
    assert response.json()["permissions"]["admin"] is False
    return response


@scenario("GET", REPO, 200)
async def repository_public_to_a_stranger(env: Env) -> httpx.Response:
    response = await env.call("GET", R, token=env.fake.user_token(login="stranger"))
    assert response.json()["permissions"] == {
        "admin": False,
        "maintain": False,
        "push": False,
        "triage": False,
        "pull": True,
    }
    return response


@scenario("GET", REPO, 404)
async def repository_private_to_a_stranger(env: Env) -> httpx.Response:
    env.fake.add_repo(full_name="octo/private", private=True)
    return await env.call("GET", "/repos/octo/private", token=env.fake.user_token(login="stranger"))


@scenario("GET", REPO, 200)
async def repository_with_installation_token(env: Env) -> httpx.Response:
    return await env.call("GET", R)


# -- pull requests ------------------------------------------------------------------------


@scenario("GET", PULL, 200)
async def pull_clean(env: Env) -> httpx.Response:
    pr = env.pull(labels=["mergequeue"])
    response = await env.call("GET", f"{R}/pulls/{pr['number']}")
    assert response.json()["mergeable_state"] == "clean"
    return response


@scenario("GET", PULL, 200)
async def pull_behind(env: Env) -> httpx.Response:
    pr = env.pull()
    env.fake.protect(full_name=FULL_NAME, branch="main", strict=True)
    env.fake.push(full_name=FULL_NAME, branch="main")
    response = await env.call("GET", f"{R}/pulls/{pr['number']}")
    assert response.json()["mergeable_state"] == "behind"
    return response


@scenario("GET", PULL, 200)
async def pull_dirty(env: Env) -> httpx.Response:
    pr = env.pull(conflict=True)
    response = await env.call("GET", f"{R}/pulls/{pr['number']}")
    assert (response.json()["mergeable"], response.json()["mergeable_state"]) == (False, "dirty")
    return response


@scenario("GET", PULL, 200)
async def pull_blocked(env: Env) -> httpx.Response:
    pr = env.pull()
    env.fake.protect(full_name=FULL_NAME, branch="main", contexts=["ci"])
    response = await env.call("GET", f"{R}/pulls/{pr['number']}")
    assert response.json()["mergeable_state"] == "blocked"
    return response


@scenario("GET", PULL, 200)
async def pull_mergeability_unknown(env: Env) -> httpx.Response:
    pr = env.pull()
    env.fake.set_pull(full_name=FULL_NAME, number=int(pr["number"]), mergeable=None)
    response = await env.call("GET", f"{R}/pulls/{pr['number']}")
    assert response.json()["mergeable"] is None
    return response


@scenario("GET", PULL, 200)
async def pull_merged(env: Env) -> httpx.Response:
    pr = env.pull()
    await env.call("PUT", f"{R}/pulls/{pr['number']}/merge", json={"merge_method": "squash"})
    response = await env.call("GET", f"{R}/pulls/{pr['number']}")
    assert response.json()["merged"] is True
    return response


@scenario("GET", PULL, 404)
async def pull_unknown(env: Env) -> httpx.Response:
    return await env.call("GET", f"{R}/pulls/404")


@scenario("GET", PULL, 404)
async def pull_in_repository_outside_installation(env: Env) -> httpx.Response:
    env.fake.add_pull(full_name=OTHER_REPO)
    return await env.call("GET", f"/repos/{OTHER_REPO}/pulls/1")


@scenario("GET", PULL, 401)
async def pull_bad_token(env: Env) -> httpx.Response:
    env.pull()
    return await env.call("GET", f"{R}/pulls/1", token="ghs_expired")


@scenario("PUT", UPDATE, 202)
async def update_branch(env: Env) -> httpx.Response:
    pr = env.pull()
    env.fake.push(full_name=FULL_NAME, branch="main")
    body = {"expected_head_sha": pr["head_sha"]}
    response = await env.call("PUT", f"{R}/pulls/{pr['number']}/update-branch", json=body)
    assert env.fake.repo(FULL_NAME).pulls[1].head_sha != pr["head_sha"]
    return response


@scenario("PUT", UPDATE, 422)
async def update_branch_not_behind(env: Env) -> httpx.Response:
    pr = env.pull()
    return await env.call("PUT", f"{R}/pulls/{pr['number']}/update-branch", json={})


@scenario("PUT", UPDATE, 422)
async def update_branch_conflict(env: Env) -> httpx.Response:
    pr = env.pull(conflict=True)
    env.fake.push(full_name=FULL_NAME, branch="main")
    return await env.call("PUT", f"{R}/pulls/{pr['number']}/update-branch")


@scenario("PUT", UPDATE, 403)
async def update_branch_of_a_fork_closed_to_maintainers(env: Env) -> httpx.Response:
    pr = env.pull()
    env.fake.set_pull(full_name=FULL_NAME, number=int(pr["number"]), from_fork=True)
    env.fake.push(full_name=FULL_NAME, branch="main")
    return await env.call("PUT", f"{R}/pulls/{pr['number']}/update-branch", json={})


@scenario("PUT", MERGE, 200)
async def merge(env: Env) -> httpx.Response:
    pr = env.pull()
    body = {"merge_method": "squash", "sha": pr["head_sha"], "commit_title": "A change (#1)"}
    return await env.call("PUT", f"{R}/pulls/{pr['number']}/merge", json=body)


@scenario("PUT", MERGE, 405)
async def merge_blocked(env: Env) -> httpx.Response:
    pr = env.pull()
    env.fake.protect(full_name=FULL_NAME, branch="main", contexts=["ci"])
    return await env.call("PUT", f"{R}/pulls/{pr['number']}/merge", json={"merge_method": "merge"})


@scenario("PUT", MERGE, 409)
async def merge_head_moved(env: Env) -> httpx.Response:
    pr = env.pull()
    body = {"merge_method": "merge", "sha": "0" * 40}
    return await env.call("PUT", f"{R}/pulls/{pr['number']}/merge", json=body)


@scenario("PUT", MERGE, 422)
async def merge_bad_method(env: Env) -> httpx.Response:
    pr = env.pull()
    body = {"merge_method": "octopus"}
    return await env.call("PUT", f"{R}/pulls/{pr['number']}/merge", json=body)


# -- checks and statuses ------------------------------------------------------------------


@scenario("GET", CHECK_RUNS, 200)
async def check_runs(env: Env) -> httpx.Response:
    pr = env.pull()
    env.fake.add_check_run(full_name=FULL_NAME, head_sha=pr["head_sha"], name="ci")
    env.fake.add_check_run(
        full_name=FULL_NAME, head_sha=pr["head_sha"], name="lint", status="in_progress"
    )
    response = await env.call("GET", f"{R}/commits/{pr['head_sha']}/check-runs")
    assert response.json()["total_count"] == 2
    return response


@scenario("GET", CHECK_RUNS, 422)
async def check_runs_unknown_ref(env: Env) -> httpx.Response:
    return await env.call("GET", f"{R}/commits/no-such-branch/check-runs")


@scenario("GET", STATUS, 200)
async def combined_status(env: Env) -> httpx.Response:
    pr = env.pull()
    env.fake.add_status(
        full_name=FULL_NAME, sha=pr["head_sha"], context="ci/legacy", state="success"
    )
    env.fake.add_status(
        full_name=FULL_NAME,
        sha=pr["head_sha"],
        context="deploy",
        state="pending",
        description="waiting",
        target_url="https://ci.example.com/1",
    )
    response = await env.call("GET", f"{R}/commits/{pr['head_sha']}/status")
    assert response.json()["state"] == "pending"
    return response


@scenario("GET", STATUS, 404)
async def combined_status_unknown_ref(env: Env) -> httpx.Response:
    return await env.call("GET", f"{R}/commits/no-such-branch/status")


# -- comments and labels ------------------------------------------------------------------


@scenario("POST", COMMENTS, 201)
async def comment(env: Env) -> httpx.Response:
    pr = env.pull()
    return await env.call("POST", f"{R}/issues/{pr['number']}/comments", json={"body": "Queued."})


@scenario("POST", COMMENTS, 404)
async def comment_unknown_issue(env: Env) -> httpx.Response:
    return await env.call("POST", f"{R}/issues/77/comments", json={"body": "Queued."})


@scenario("POST", COMMENTS, 422)
async def comment_without_body(env: Env) -> httpx.Response:
    pr = env.pull()
    return await env.call("POST", f"{R}/issues/{pr['number']}/comments", json={})


@scenario("POST", LABELS, 200)
async def add_labels(env: Env) -> httpx.Response:
    pr = env.pull(labels=["bug"])
    body = {"labels": ["mergequeue", "bug"]}
    return await env.call("POST", f"{R}/issues/{pr['number']}/labels", json=body)


@scenario("POST", LABELS, 404)
async def add_labels_unknown_issue(env: Env) -> httpx.Response:
    return await env.call("POST", f"{R}/issues/77/labels", json={"labels": ["x"]})


@scenario("POST", LABELS, 422)
async def add_no_labels(env: Env) -> httpx.Response:
    pr = env.pull()
    return await env.call("POST", f"{R}/issues/{pr['number']}/labels", json={"labels": []})


@scenario("DELETE", LABEL, 200)
async def remove_label(env: Env) -> httpx.Response:
    pr = env.pull(labels=["mergequeue", "bug"])
    return await env.call("DELETE", f"{R}/issues/{pr['number']}/labels/mergequeue")


@scenario("DELETE", LABEL, 404)
async def remove_absent_label(env: Env) -> httpx.Response:
    pr = env.pull()
    return await env.call("DELETE", f"{R}/issues/{pr['number']}/labels/mergequeue")


# -- branches -----------------------------------------------------------------------------


@scenario("GET", REQUIRED, 200)
async def required_checks(env: Env) -> httpx.Response:
    env.fake.protect(
        full_name=FULL_NAME, branch="main", contexts=["ci/legacy"], checks=[("build", 15368)]
    )
    return await env.call("GET", f"{R}/branches/main/protection/required_status_checks")


@scenario("GET", REQUIRED, 404)
async def required_checks_unprotected(env: Env) -> httpx.Response:
    return await env.call("GET", f"{R}/branches/main/protection/required_status_checks")


@scenario("GET", BRANCH, 200)
async def branch(env: Env) -> httpx.Response:
    return await env.call("GET", f"{R}/branches/main")


@scenario("GET", BRANCH, 200)
async def protected_branch(env: Env) -> httpx.Response:
    env.fake.protect(full_name=FULL_NAME, branch="main", contexts=["ci"])
    return await env.call("GET", f"{R}/branches/main")


@scenario("GET", BRANCH, 404)
async def branch_unknown(env: Env) -> httpx.Response:
    return await env.call("GET", f"{R}/branches/nope")


@scenario("GET", RULES, 200)
async def branch_rules(env: Env) -> httpx.Response:
    env.fake.add_ruleset(full_name=FULL_NAME, branches=["~DEFAULT_BRANCH"], required_checks=["ci"])
    response = await env.call("GET", f"{R}/rules/branches/main")
    assert response.json()[0]["parameters"]["required_status_checks"] == [{"context": "ci"}]
    return response


@scenario("GET", RULES, 200)
async def branch_rules_none(env: Env) -> httpx.Response:
    response = await env.call("GET", f"{R}/rules/branches/main")
    assert response.json() == []
    return response


# -- compare ------------------------------------------------------------------------------


@scenario("GET", COMPARE, 200)
async def compare_behind(env: Env) -> httpx.Response:
    pr = env.pull()
    env.fake.push(full_name=FULL_NAME, branch="main")
    response = await env.call("GET", f"{R}/compare/main...{pr['head_sha']}")
    body = response.json()
    assert (body["status"], body["ahead_by"], body["behind_by"]) == ("diverged", 1, 1)
    return response


@scenario("GET", COMPARE, 200)
async def compare_identical(env: Env) -> httpx.Response:
    response = await env.call("GET", f"{R}/compare/main...main")
    assert response.json()["status"] == "identical"
    return response


@scenario("GET", COMPARE, 404)
async def compare_unknown_ref(env: Env) -> httpx.Response:
    return await env.call("GET", f"{R}/compare/main...{'e' * 40}")


@scenario("GET", COMPARE, 200)
async def compare_staging_ahead_of_main(env: Env) -> httpx.Response:
    pr = env.pull()
    env.staging()
    env.fake.merge_branches(full_name=FULL_NAME, base="mergequeue/main/1", head=pr["head_sha"])
    response = await env.call("GET", f"{R}/compare/main...mergequeue/main/1")
    body = response.json()
    assert (body["status"], body["ahead_by"], body["behind_by"]) == ("ahead", 2, 0)
    assert body["merge_base_commit"]["sha"] == env.main()
    assert len(body["commits"][-1]["parents"]) == 2
    return response


# -- git references, merges and commits ---------------------------------------------------


@scenario("GET", GIT_REF, 200)
async def git_ref(env: Env) -> httpx.Response:
    env.staging()
    response = await env.call("GET", f"{R}/git/ref/heads/mergequeue/main/1")
    body = response.json()
    assert (body["ref"], body["object"]["sha"]) == ("refs/heads/mergequeue/main/1", env.main())
    return response


@scenario("GET", GIT_REF, 404)
async def git_ref_unknown(env: Env) -> httpx.Response:
    return await env.call("GET", f"{R}/git/ref/heads/no-such-branch")


@scenario("GET", MATCHING_REFS, 200)
async def matching_refs(env: Env) -> httpx.Response:
    env.staging("mergequeue/main/1")
    env.staging("mergequeue/main/2")
    env.staging("mergequeue/release/1")
    response = await env.call("GET", f"{R}/git/matching-refs/heads/mergequeue/main/")
    assert [r["ref"] for r in response.json()] == [
        "refs/heads/mergequeue/main/1",
        "refs/heads/mergequeue/main/2",
    ]
    return response


@scenario("GET", MATCHING_REFS, 200)
async def matching_refs_none(env: Env) -> httpx.Response:
    response = await env.call("GET", f"{R}/git/matching-refs/heads/mergequeue/")
    assert response.json() == []
    return response


@scenario("POST", REFS, 201)
async def create_ref(env: Env) -> httpx.Response:
    body = {"ref": "refs/heads/mergequeue/main/1", "sha": env.main()}
    response = await env.call("POST", f"{R}/git/refs", json=body)
    assert env.fake.repo(FULL_NAME).branches["mergequeue/main/1"] == env.main()
    return response


@scenario("POST", REFS, 422)
async def create_ref_that_exists(env: Env) -> httpx.Response:
    env.staging()
    body = {"ref": "refs/heads/mergequeue/main/1", "sha": env.main()}
    response = await env.call("POST", f"{R}/git/refs", json=body)
    assert response.json()["message"] == "Reference already exists"
    return response


@scenario("POST", REFS, 422)
async def create_ref_at_unknown_sha(env: Env) -> httpx.Response:
    body = {"ref": "refs/heads/mergequeue/main/1", "sha": "0" * 40}
    response = await env.call("POST", f"{R}/git/refs", json=body)
    assert response.json()["message"] == "Object does not exist"
    return response


@scenario("PATCH", REF, 200)
async def fast_forward_ref(env: Env) -> httpx.Response:
    env.staging()
    ahead = env.fake.push(full_name=FULL_NAME, branch="elsewhere")
    response = await env.call("PATCH", f"{R}/git/refs/heads/mergequeue/main/1", json={"sha": ahead})
    assert response.json()["object"]["sha"] == ahead
    return response


@scenario("PATCH", REF, 200)
async def force_ref(env: Env) -> httpx.Response:
    env.staging()
    env.fake.push(full_name=FULL_NAME, branch="mergequeue/main/1")
    body = {"sha": env.main(), "force": True}
    response = await env.call("PATCH", f"{R}/git/refs/heads/mergequeue/main/1", json=body)
    assert env.fake.repo(FULL_NAME).branches["mergequeue/main/1"] == env.main()
    return response


@scenario("PATCH", REF, 422)
async def ref_update_not_a_fast_forward(env: Env) -> httpx.Response:
    env.staging()
    env.fake.push(full_name=FULL_NAME, branch="mergequeue/main/1")
    body = {"sha": env.main(), "force": False}
    response = await env.call("PATCH", f"{R}/git/refs/heads/mergequeue/main/1", json=body)
    assert response.json()["message"] == "Update is not a fast forward"
    return response


@scenario("DELETE", REF, 204)
async def delete_ref(env: Env) -> httpx.Response:
    env.staging()
    response = await env.call("DELETE", f"{R}/git/refs/heads/mergequeue/main/1")
    assert "mergequeue/main/1" not in env.fake.repo(FULL_NAME).branches
    return response


@scenario("DELETE", REF, 422)
async def delete_missing_ref(env: Env) -> httpx.Response:
    response = await env.call("DELETE", f"{R}/git/refs/heads/mergequeue/main/1")
    assert response.json()["message"] == "Reference does not exist"
    return response


@scenario("POST", MERGES, 201)
async def merge_into_staging(env: Env) -> httpx.Response:
    pr = env.pull()
    env.staging()
    body = {"base": "mergequeue/main/1", "head": pr["head_sha"], "commit_message": "Stage #1"}
    response = await env.call("POST", f"{R}/merges", json=body)
    commit = response.json()
    assert [p["sha"] for p in commit["parents"]] == [env.main(), pr["head_sha"]]
    assert commit["commit"]["message"] == "Stage #1"
    assert env.fake.repo(FULL_NAME).branches["mergequeue/main/1"] == commit["sha"]
    return response


@scenario("POST", MERGES, 204)
async def merge_already_merged(env: Env) -> httpx.Response:
    env.staging()
    body = {"base": "mergequeue/main/1", "head": "main"}
    response = await env.call("POST", f"{R}/merges", json=body)
    assert response.content == b""
    return response


@scenario("POST", MERGES, 409)
async def merge_conflict(env: Env) -> httpx.Response:
    one = env.pull(files={"app.py": "one\n"})
    two = env.pull(files={"app.py": "two\n"})
    env.staging()
    env.fake.merge_branches(full_name=FULL_NAME, base="mergequeue/main/1", head=one["head_sha"])
    body = {"base": "mergequeue/main/1", "head": two["head_sha"]}
    response = await env.call("POST", f"{R}/merges", json=body)
    assert response.json()["message"] == "Merge conflict"
    return response


@scenario("POST", MERGES, 404)
async def merge_into_missing_base(env: Env) -> httpx.Response:
    body = {"base": "mergequeue/main/1", "head": "main"}
    response = await env.call("POST", f"{R}/merges", json=body)
    assert response.json()["message"] == "Base does not exist"
    return response


@scenario("POST", MERGES, 404)
async def merge_missing_head(env: Env) -> httpx.Response:
    env.staging()
    body = {"base": "mergequeue/main/1", "head": "f" * 40}
    response = await env.call("POST", f"{R}/merges", json=body)
    assert response.json()["message"] == "Head does not exist"
    return response


@scenario("GET", GIT_COMMIT, 200)
async def git_commit(env: Env) -> httpx.Response:
    pr = env.pull()
    response = await env.call("GET", f"{R}/git/commits/{pr['head_sha']}")
    body = response.json()
    expected = env.fake.commit_json(full_name=FULL_NAME, sha=pr["head_sha"])
    assert body["tree"]["sha"] == expected["tree_sha"]
    assert [p["sha"] for p in body["parents"]] == [env.main()]
    return response


@scenario("GET", GIT_COMMIT, 404)
async def git_commit_unknown(env: Env) -> httpx.Response:
    return await env.call("GET", f"{R}/git/commits/{'0' * 40}")


# -- permissions --------------------------------------------------------------------------


@scenario("GET", PERMISSION, 200)
async def collaborator_maintainer(env: Env) -> httpx.Response:
    env.fake.set_permission(full_name=FULL_NAME, username="alice", role_name="maintain")
    response = await env.call("GET", f"{R}/collaborators/alice/permission")
    assert (response.json()["permission"], response.json()["role_name"]) == ("write", "maintain")
    return response


@scenario("GET", PERMISSION, 200)
async def non_collaborator_reads_public_repository(env: Env) -> httpx.Response:
    env.fake.add_user(login="bob")
    response = await env.call("GET", f"{R}/collaborators/bob/permission")
    assert response.json()["permission"] == "read"
    return response


@scenario("GET", PERMISSION, 404)
async def permission_of_unknown_user(env: Env) -> httpx.Response:
    return await env.call("GET", f"{R}/collaborators/no-such-user/permission")


# -- issues and comments of the repository ------------------------------------------------


@scenario("GET", ISSUES, 200)
async def open_issues_with_label(env: Env) -> httpx.Response:
    env.pull(labels=["mergequeue"])
    env.pull(labels=["bug"])
    response = await env.call("GET", f"{R}/issues?state=open&labels=mergequeue")
    assert [i["number"] for i in response.json()] == [1]
    return response


@scenario("GET", REPO_COMMENTS, 200)
async def recent_comments(env: Env) -> httpx.Response:
    env.pull()
    env.fake.add_comment(
        full_name=FULL_NAME,
        number=1,
        body="/mergequeue merge",
        user="alice",
        author_association="COLLABORATOR",
    )
    await env.call("POST", f"{R}/issues/1/comments", json={"body": "Queued."})
    response = await env.call("GET", f"{R}/issues/comments?sort=created&direction=desc")
    assert [c["body"] for c in response.json()] == ["Queued.", "/mergequeue merge"]
    return response


# -- files and the pull requests of a commit (the settings file) --------------------------


@scenario("GET", CONTENTS, 200)
async def file_contents(env: Env) -> httpx.Response:
    sha = env.fake.push(
        full_name=FULL_NAME, branch="main", files={".github/mergequeue.yml": "batch_size: 2\n"}
    )
    response = await env.call("GET", f"{R}/contents/.github/mergequeue.yml?ref={sha}")
    assert base64.b64decode(response.json()["content"]) == b"batch_size: 2\n"
    return response


@scenario("GET", CONTENTS, 404)
async def file_contents_missing(env: Env) -> httpx.Response:
    return await env.call("GET", f"{R}/contents/.github/mergequeue.yml?ref=main")


@scenario("GET", COMMIT_PULLS, 200)
async def pulls_of_a_merged_commit(env: Env) -> httpx.Response:
    pr = env.pull(files={".github/mergequeue.yml": "queue_mode: parallel\n"})
    env.fake.push(full_name=FULL_NAME, branch="main", sha=pr["head_sha"])
    response = await env.call("GET", f"{R}/commits/{pr['head_sha']}/pulls")
    assert [p["number"] for p in response.json()] == [pr["number"]]
    return response


@scenario("GET", COMMIT_PULLS, 422)
async def pulls_of_an_unknown_commit(env: Env) -> httpx.Response:
    return await env.call("GET", f"{R}/commits/{'e' * 40}/pulls")


# -- GitHub Actions workflow runs (the scripted CI's, when its app is github-actions) ------


def actions_run(env: Env, *, actions: str | None = "write") -> int:
    """A pending workflow run on a staging branch; the installation granted `actions`."""
    env.fake.set_installation_permissions(
        installation_id=INSTALLATION_ID, permissions={"actions": actions}
    )
    env.fake.set_ci(full_name=FULL_NAME)
    env.staging()
    [run] = env.fake.workflow_runs(full_name=FULL_NAME, branch="mergequeue/main/1")
    assert run.workflow_run_id is not None
    return run.workflow_run_id


@scenario("GET", WORKFLOW_RUNS, 200)
async def workflow_runs_of_a_branch(env: Env) -> httpx.Response:
    actions_run(env, actions="read")
    env.fake.push(full_name=FULL_NAME, branch="main")  # not a watched branch: no run
    response = await env.call("GET", f"{R}/actions/runs?branch=mergequeue/main/1&per_page=100")
    assert [r["status"] for r in response.json()["workflow_runs"]] == ["in_progress"]
    return response


@scenario("GET", WORKFLOW_RUNS, 200)
async def workflow_runs_completed_and_cancelled(env: Env) -> httpx.Response:
    run_id = actions_run(env)
    env.fake.cancel_workflow_run(full_name=FULL_NAME, run_id=run_id)
    response = await env.call("GET", f"{R}/actions/runs?status=cancelled")
    [run] = response.json()["workflow_runs"]
    assert (run["id"], run["status"], run["conclusion"]) == (run_id, "completed", "cancelled")
    return response


@scenario("GET", WORKFLOW_RUNS, 403)
async def workflow_runs_of_a_private_repository_without_actions(env: Env) -> httpx.Response:
    actions_run(env, actions=None)
    env.fake.repo(FULL_NAME).private = True
    response = await env.call("GET", f"{R}/actions/runs")
    assert response.json()["message"] == "Resource not accessible by integration"
    return response


@scenario("POST", CANCEL_RUN, 202)
async def cancel_workflow_run(env: Env) -> httpx.Response:
    run_id = actions_run(env)
    response = await env.call("POST", f"{R}/actions/runs/{run_id}/cancel")
    [ci] = env.fake.ci_runs_json(full_name=FULL_NAME)
    assert (ci["status"], ci["conclusion"]) == ("completed", "cancelled")
    return response


@scenario("POST", RERUN_FAILED, 201)
async def rerun_failed_jobs(env: Env) -> httpx.Response:
    run_id = actions_run(env)
    env.fake.ci_runs[-1].conclusion = "failure"  # this attempt fails (a flake)
    env.fake.complete_ci(full_name=FULL_NAME)
    response = await env.call("POST", f"{R}/actions/runs/{run_id}/rerun-failed-jobs")
    runs = env.fake.ci_runs_json(full_name=FULL_NAME)
    assert [r["status"] for r in runs] == ["completed", "in_progress"]
    assert runs[0]["workflow_run_id"] == runs[1]["workflow_run_id"] == run_id
    return response


@scenario("POST", RERUN_FAILED, 403)
async def rerun_failed_jobs_of_a_run_that_did_not_fail(env: Env) -> httpx.Response:
    run_id = actions_run(env)
    env.fake.complete_ci(full_name=FULL_NAME)
    return await env.call("POST", f"{R}/actions/runs/{run_id}/rerun-failed-jobs")


@scenario("POST", CANCEL_RUN, 409)
async def cancel_completed_workflow_run(env: Env) -> httpx.Response:
    run_id = actions_run(env)
    env.fake.complete_ci(full_name=FULL_NAME)
    return await env.call("POST", f"{R}/actions/runs/{run_id}/cancel")


@scenario("POST", CANCEL_RUN, 403)
async def cancel_workflow_run_without_actions_write(env: Env) -> httpx.Response:
    run_id = actions_run(env, actions="read")
    response = await env.call("POST", f"{R}/actions/runs/{run_id}/cancel")
    assert response.json()["message"] == "Resource not accessible by integration"
    return response


@scenario("POST", CANCEL_RUN, 404)
async def cancel_unknown_workflow_run(env: Env) -> httpx.Response:
    actions_run(env)
    return await env.call("POST", f"{R}/actions/runs/404/cancel")


# -- showing the queue: check runs, statuses, comment edits, reactions ---------------------


def _check_run_body(sha: str, **fields: object) -> dict[str, object]:
    return {
        "name": "mergequeue",
        "head_sha": sha,
        "status": "queued",
        "output": {"title": "Queued: 2nd of 3", "summary": "**Position**: 2"},
        "details_url": "https://mergequeue.example.com/octo/hello",
        **fields,
    }


@scenario("POST", NEW_CHECK_RUN, 201)
async def create_check_run(env: Env) -> httpx.Response:
    pr = env.pull()
    response = await env.call("POST", f"{R}/check-runs", json=_check_run_body(pr["head_sha"]))
    run = response.json()
    assert (run["name"], run["status"], run["conclusion"]) == ("mergequeue", "queued", None)
    assert run["app"]["id"] == APP_ID and run["app"]["slug"] == "mergequeue"
    assert run["output"]["title"] == "Queued: 2nd of 3"
    assert run["details_url"] == "https://mergequeue.example.com/octo/hello"
    assert [p["number"] for p in run["pull_requests"]] == [1]
    return response


@scenario("POST", NEW_CHECK_RUN, 403)
async def create_check_run_with_a_token(env: Env) -> httpx.Response:
    pr = env.pull()
    body = _check_run_body(pr["head_sha"])
    response = await env.call("POST", f"{R}/check-runs", json=body, token=STATIC_TOKEN)
    assert response.json()["message"] == "You must authenticate via a GitHub App."
    return response


@scenario("POST", NEW_CHECK_RUN, 422)
async def create_check_run_on_an_unknown_commit(env: Env) -> httpx.Response:
    return await env.call("POST", f"{R}/check-runs", json=_check_run_body("0" * 40))


@scenario("POST", NEW_CHECK_RUN, 422)
async def create_completed_check_run_without_conclusion(env: Env) -> httpx.Response:
    pr = env.pull()
    body = _check_run_body(pr["head_sha"], status="completed")
    return await env.call("POST", f"{R}/check-runs", json=body)


@scenario("PATCH", CHECK_RUN, 200)
async def complete_check_run(env: Env) -> httpx.Response:
    pr = env.pull()
    created = await env.call("POST", f"{R}/check-runs", json=_check_run_body(pr["head_sha"]))
    ident = created.json()["id"]
    body = {"conclusion": "success", "output": {"title": "Merged", "summary": "Landed."}}
    response = await env.call("PATCH", f"{R}/check-runs/{ident}", json=body)
    run = response.json()
    assert (run["id"], run["status"], run["conclusion"]) == (ident, "completed", "success")
    assert run["output"]["summary"] == "Landed."
    return response


@scenario("PATCH", CHECK_RUN, 404)
async def update_unknown_check_run(env: Env) -> httpx.Response:
    return await env.call("PATCH", f"{R}/check-runs/424242", json={"status": "in_progress"})


@scenario("PATCH", CHECK_RUN, 403)
async def update_another_apps_check_run(env: Env) -> httpx.Response:
    pr = env.pull()
    ident = env.fake.add_check_run(full_name=FULL_NAME, head_sha=pr["head_sha"], name="ci")
    return await env.call("PATCH", f"{R}/check-runs/{ident}", json={"conclusion": "failure"})


@scenario("POST", STATUSES, 201)
async def create_status(env: Env) -> httpx.Response:
    pr = env.pull()
    body = {
        "state": "pending",
        "context": "mergequeue",
        "description": "Queued: 2nd of 3",
        "target_url": "https://mergequeue.example.com/octo/hello",
    }
    response = await env.call(
        "POST", f"{R}/statuses/{pr['head_sha']}", json=body, token=STATIC_TOKEN
    )
    assert response.json()["creator"]["login"] == "octocat"
    return response


@scenario("POST", STATUSES, 422)
async def create_status_on_an_unknown_commit(env: Env) -> httpx.Response:
    return await env.call("POST", f"{R}/statuses/{'0' * 40}", json={"state": "success"})


@scenario("POST", STATUSES, 422)
async def create_status_with_a_bad_state(env: Env) -> httpx.Response:
    pr = env.pull()
    return await env.call("POST", f"{R}/statuses/{pr['head_sha']}", json={"state": "green"})


@scenario("POST", STATUSES, 422)
async def create_status_with_a_long_description(env: Env) -> httpx.Response:
    pr = env.pull()
    body = {"state": "success", "description": "x" * 141}
    return await env.call("POST", f"{R}/statuses/{pr['head_sha']}", json=body)


@scenario("PATCH", COMMENT, 200)
async def edit_comment(env: Env) -> httpx.Response:
    env.pull()
    created = await env.call("POST", f"{R}/issues/1/comments", json={"body": "Queued."})
    ident = created.json()["id"]
    response = await env.call("PATCH", f"{R}/issues/comments/{ident}", json={"body": "Merged."})
    assert response.json()["body"] == "Merged."
    assert env.fake.comments_json()[-1]["updated_at"] is not None
    return response


@scenario("PATCH", COMMENT, 404)
async def edit_deleted_comment(env: Env) -> httpx.Response:
    env.pull()
    ident = env.fake.add_comment(full_name=FULL_NAME, number=1, body="x", user="alice")
    env.fake.delete_comment(full_name=FULL_NAME, comment_id=ident)
    return await env.call("PATCH", f"{R}/issues/comments/{ident}", json={"body": "y"})


@scenario("DELETE", COMMENT, 204)
async def delete_comment(env: Env) -> httpx.Response:
    env.pull()
    ident = env.fake.add_comment(full_name=FULL_NAME, number=1, body="x", user="alice")
    response = await env.call("DELETE", f"{R}/issues/comments/{ident}")
    assert env.fake.comments_json() == []
    return response


@scenario("POST", REACTIONS, 201)
async def react_to_comment(env: Env) -> httpx.Response:
    env.pull()
    ident = env.fake.add_comment(full_name=FULL_NAME, number=1, body="/merge", user="alice")
    response = await env.call(
        "POST", f"{R}/issues/comments/{ident}/reactions", json={"content": "eyes"}
    )
    assert response.json()["user"]["login"] == "mergequeue[bot]"
    return response


@scenario("POST", REACTIONS, 200)
async def react_again(env: Env) -> httpx.Response:
    env.pull()
    ident = env.fake.add_comment(full_name=FULL_NAME, number=1, body="/merge", user="alice")
    first = await env.call("POST", f"{R}/issues/comments/{ident}/reactions", json={"content": "+1"})
    again = await env.call("POST", f"{R}/issues/comments/{ident}/reactions", json={"content": "+1"})
    assert again.json()["id"] == first.json()["id"]
    assert len(env.fake.comments_json()[-1]["reactions"]) == 1
    return again


@scenario("POST", REACTIONS, 422)
async def react_with_an_unknown_reaction(env: Env) -> httpx.Response:
    env.pull()
    ident = env.fake.add_comment(full_name=FULL_NAME, number=1, body="/merge", user="alice")
    return await env.call(
        "POST", f"{R}/issues/comments/{ident}/reactions", json={"content": "thumbsup"}
    )


@scenario("POST", REACTIONS, 404)
async def react_to_a_deleted_comment(env: Env) -> httpx.Response:
    return await env.call("POST", f"{R}/issues/comments/999/reactions", json={"content": "+1"})


# -- the App ------------------------------------------------------------------------------


@scenario("GET", INSTALLATIONS, 200)
async def app_installations(env: Env) -> httpx.Response:
    env.fake.add_installation(installation_id=77, account="gone", repositories=[])
    env.fake.suspend_installation(installation_id=77)
    response = await env.call("GET", INSTALLATIONS, token=env.jwt())
    assert [i["suspended_at"] is not None for i in response.json()] == [False, True]
    return response


@scenario("GET", INSTALLATIONS, 401)
async def app_installations_with_installation_token(env: Env) -> httpx.Response:
    return await env.call("GET", INSTALLATIONS)


async def _receiver(request: httpx.Request) -> httpx.Response:
    return httpx.Response(202 if request.headers["x-github-event"] != "push" else 503)


@scenario("GET", DELIVERIES, 200)
async def hook_deliveries(env: Env) -> httpx.Response:
    env.fake.set_webhook_target(
        url="https://hooks.example.com/api/webhook",
        secret="s",
        transport=httpx.MockTransport(_receiver),
    )
    await env.fake.send_webhook(
        event="pull_request",
        payload={"action": "labeled", "installation": {"id": 5}, "repository": {"id": 7}},
    )
    await env.fake.send_webhook(event="push", payload={})
    response = await env.call("GET", DELIVERIES, token=env.jwt())
    assert [d["status_code"] for d in response.json()] == [503, 202]
    return response


@scenario("POST", ATTEMPTS, 202)
async def redeliver(env: Env) -> httpx.Response:
    env.fake.set_webhook_target(
        url="https://hooks.example.com/api/webhook",
        secret="s",
        transport=httpx.MockTransport(_receiver),
    )
    sent = await env.fake.send_webhook(event="ping", payload={"zen": "Keep it logically awesome."})
    response = await env.call("POST", f"{DELIVERIES}/{sent['id']}/attempts", token=env.jwt())
    assert env.fake.deliveries[-1].redelivery is True
    return response


# -- failures any endpoint can give -------------------------------------------------------


@scenario("GET", PULL, 403)
async def primary_rate_limit(env: Env) -> httpx.Response:
    env.pull()
    env.fake.rate_limit_primary(until=int(time.time()) + 600)
    response = await env.call("GET", f"{R}/pulls/1")
    assert response.headers["x-ratelimit-remaining"] == "0"
    return response


@scenario("PUT", MERGE, 403)
async def secondary_rate_limit(env: Env) -> httpx.Response:
    env.pull()
    env.fake.rate_limit_secondary(retry_after=30, route=MERGE)
    response = await env.call("PUT", f"{R}/pulls/1/merge", json={"merge_method": "merge"})
    assert response.headers["retry-after"] == "30"
    return response


@scenario("POST", COMMENTS, 429)
async def secondary_rate_limit_429(env: Env) -> httpx.Response:
    env.pull()
    env.fake.rate_limit_secondary(retry_after=None, status=429)
    return await env.call("POST", f"{R}/issues/1/comments", json={"body": "x"})


@scenario("GET", STATUS, 502)
async def server_error(env: Env) -> httpx.Response:
    env.fake.fail(status=502)
    return await env.call("GET", f"{R}/commits/main/status")


@scenario("GET", PULL, 503)
async def unavailable(env: Env) -> httpx.Response:
    env.fake.fail(status=503, route=PULL)
    return await env.call("GET", f"{R}/pulls/1")


@pytest.fixture
async def env(fake: FakeGitHub, app_keys: KeyPair) -> AsyncIterator[Env]:
    transport = httpx.ASGITransport(app=fake.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.github.com") as http:
        yield Env(fake, http, app_keys)


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_fake_answer_matches_github_openapi(env: Env, name: str) -> None:
    method, template, status, run = SCENARIOS[name]
    response = await run(env)
    assert response.status_code == status, response.text
    assert env.fake.calls[-1].route == template
    body = response.json() if response.content else None
    assert openapi.response_errors(method, template, status, body) == []
    if status != 204:
        assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-github-request-id"]
    for header in ("limit", "remaining", "reset", "used", "resource"):
        assert response.headers[f"x-ratelimit-{header}"], header
    if status >= 400:
        assert isinstance(body, dict)
        assert set(body) >= {"message", "documentation_url"}


@pytest.mark.parametrize(("template", "method"), [(r[0], r[2]) for r in ROUTES])
def test_every_fake_route_is_a_github_operation(template: str, method: str) -> None:
    assert openapi.operation(method, template) is not None


def test_every_fake_route_has_a_successful_scenario() -> None:
    covered = {(m, t) for m, t, s, _ in SCENARIOS.values() if 200 <= s < 300}
    assert covered == {(r[2], r[0]) for r in ROUTES}


def test_unknown_paths_answer_githubs_404_shape(fake: FakeGitHub) -> None:
    errors = openapi.response_errors(
        "GET", PULL, 404, {"message": "Not Found", "documentation_url": "x"}
    )
    assert errors == []


def test_validator_catches_drift() -> None:
    """The validators are not vacuous: a pull request without `head` is rejected."""
    errors = openapi.response_errors("GET", PULL, 200, {"number": 1})
    assert any("head" in e for e in errors)
    assert openapi.response_errors("GET", PULL, 418, {}) != []
