"""The fake's scripted CI: it runs where GitHub Actions would (pushes to matching
branches), decides from the commit's tree, and reports like GitHub (check runs, webhooks)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
from jsonschema import Draft7Validator  # type: ignore[import-untyped]

from tests.fakegithub import FakeGitHub
from tests.fakegithub.state import ApiError
from tests.github.test_webhook_fixtures import URI, _registry

REPO = "octo/hello"
STAGING = "mergequeue/main/1"


@pytest.fixture
def gh() -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_repo(full_name=REPO)
    fake.add_installation(installation_id=5, account="octo", repositories=[REPO])
    return fake


def stage(gh: FakeGitHub, *heads: str, branch: str = STAGING) -> str:
    main = gh.repo(REPO).branches["main"]
    gh.create_ref(full_name=REPO, ref=f"refs/heads/{branch}", sha=main)
    for head in heads:
        gh.merge_branches(full_name=REPO, base=branch, head=head)
    return gh.repo(REPO).branches[branch]


def conclusions(gh: FakeGitHub, sha: str) -> list[tuple[str, str, str | None]]:
    runs, _ = gh.latest_checks(full_name=REPO, sha=sha)
    return [(r.name, r.status, r.conclusion) for r in runs]


def test_ci_runs_on_commits_landing_on_matching_branches_and_waits_to_be_completed(
    gh: FakeGitHub,
) -> None:
    gh.set_ci(full_name=REPO)
    one = gh.add_pull(full_name=REPO)  # feature-1: not a watched branch
    tip = stage(gh, one["head_sha"])
    assert [(r["branch"], r["status"]) for r in gh.ci_runs_json()] == [
        (STAGING, "in_progress"),  # the branch created at main's head
        (STAGING, "in_progress"),  # the merge of #1
    ]
    assert conclusions(gh, tip) == [("ci", "in_progress", None)]
    done = gh.complete_ci(full_name=REPO, sha=tip)
    assert [(r["sha"], r["conclusion"]) for r in done] == [(tip, "success")]
    assert conclusions(gh, tip) == [("ci", "completed", "success")]
    assert [r["status"] for r in gh.ci_runs_json(full_name=REPO)] == ["in_progress", "completed"]


def test_a_tree_with_a_bad_path_fails_wherever_it_came_from(gh: FakeGitHub) -> None:
    gh.set_ci(full_name=REPO, bad_paths=["broken/*"], branches=["mergequeue/*", "main"])
    good = gh.add_pull(full_name=REPO)
    bad = gh.add_pull(full_name=REPO, files={"broken/x.py": "1/0\n"})
    clean_tip = stage(gh, good["head_sha"])
    bad_tip = stage(gh, good["head_sha"], bad["head_sha"], branch="mergequeue/main/2")
    gh.complete_ci(full_name=REPO)
    assert conclusions(gh, clean_tip) == [("ci", "completed", "success")]
    assert conclusions(gh, bad_tip) == [("ci", "completed", "failure")]
    [failed] = [r for r in gh.ci_runs_json() if r["sha"] == bad_tip]
    assert failed["reason"] == "bad path broken/x.py"
    assert failed["details_url"].startswith("https://")
    # The same tree landing on main (a push) fails again: CI judges trees, not histories.
    gh.push(full_name=REPO, branch="main", files={"broken/x.py": "1/0\n"})
    [main_run] = gh.complete_ci(full_name=REPO)
    assert (main_run["branch"], main_run["conclusion"]) == ("main", "failure")


def test_flaky_paths_fail_some_runs_reproducibly_from_the_seed(gh: FakeGitHub) -> None:
    def outcomes(seed: int) -> list[str]:
        fake = FakeGitHub()
        fake.add_repo(full_name=REPO)
        fake.set_ci(full_name=REPO, flaky={"changes/1.txt": 0.5}, seed=seed)
        pr = fake.add_pull(full_name=REPO)
        main = fake.repo(REPO).branches["main"]
        for n in range(40):
            fake.create_ref(full_name=REPO, ref=f"refs/heads/mergequeue/main/{n}", sha=main)
            fake.merge_branches(full_name=REPO, base=f"mergequeue/main/{n}", head=pr["head_sha"])
        return [r["conclusion"] for r in fake.complete_ci(full_name=REPO) if r["sha"] != main]

    first = outcomes(seed=7)
    assert first == outcomes(seed=7)
    assert first != outcomes(seed=8)
    assert 5 < first.count("failure") < 35 and set(first) == {"success", "failure"}


def test_forced_outcomes_decide_the_next_runs_on_matching_branches_then_the_tree_does(
    gh: FakeGitHub,
) -> None:
    gh.set_ci(full_name=REPO, bad_paths=["bad/*"], branches=["mergequeue/*", "release/*"])
    assert gh.force_ci(full_name=REPO, outcomes=["failure", "success"], branch="mergequeue/*") == 2
    good = gh.add_pull(full_name=REPO)["head_sha"]
    bad = gh.add_pull(full_name=REPO, files={"bad/x.txt": "fails\n"})["head_sha"]
    # Another branch does not use them.
    gh.create_ref(full_name=REPO, ref="refs/heads/release/1", sha=good)
    for n, sha in enumerate([good, bad, bad], start=1):
        gh.create_ref(full_name=REPO, ref=f"refs/heads/mergequeue/main/{n}", sha=sha)
    done = [(r["branch"], r["conclusion"], r["reason"]) for r in gh.complete_ci(full_name=REPO)]
    assert done == [
        ("release/1", "success", "all good"),
        ("mergequeue/main/1", "failure", "forced failure"),  # a good tree, failed by chance
        ("mergequeue/main/2", "success", "forced success"),  # a bad tree, passed by chance
        ("mergequeue/main/3", "failure", "bad path bad/x.txt"),  # the tree decides again
    ]
    assert gh.ci_forced == []
    with pytest.raises(ValueError, match="outcome must be one of"):
        gh.force_ci(full_name=REPO, outcomes=["maybe"])


def test_a_forced_outcome_waits_for_its_check_name(gh: FakeGitHub) -> None:
    gh.set_ci(full_name=REPO, name="build")
    gh.set_ci(full_name=REPO, name="lint")
    gh.force_ci(full_name=REPO, name="lint")
    tip = stage(gh)
    assert sorted((r["name"], r["conclusion"]) for r in gh.complete_ci(full_name=REPO)) == [
        ("build", "success"),
        ("lint", "failure"),
    ]
    assert conclusions(gh, tip)


def test_ci_can_be_limited_to_a_check_name_and_turned_off(gh: FakeGitHub) -> None:
    gh.set_ci(full_name=REPO, name="build", app_id=77, app_slug="builder")
    gh.set_ci(full_name=REPO, name="lint")
    tip = stage(gh)
    assert {r["name"] for r in gh.complete_ci(full_name=REPO, name="build")} == {"build"}
    runs, _ = gh.latest_checks(full_name=REPO, sha=tip)
    assert {(r.name, r.status, r.app_id) for r in runs} == {
        ("build", "completed", 77),
        ("lint", "in_progress", 15368),
    }
    gh.set_ci(full_name=REPO, name="build", branches=[])
    gh.set_ci(full_name=REPO, name="lint", branches=[])
    gh.push(full_name=REPO, branch=STAGING)
    assert len(gh.ci_runs_json()) == 2


def _validate(event: str, payload: dict[str, Any]) -> list[str]:
    definition = f"{event}${payload['action']}"
    validator = Draft7Validator({"$ref": f"{URI}#/definitions/{definition}"}, registry=_registry())
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(payload)
    ]


class Receiver:
    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert request.headers["x-hub-signature-256"] == expected
        self.got.append((request.headers["x-github-event"], json.loads(body)))
        return httpx.Response(202)


async def test_run_ci_sends_githubs_check_run_and_check_suite_webhooks(gh: FakeGitHub) -> None:
    receiver = Receiver()
    gh.set_webhook_target(
        url="https://hooks.example.com/api/webhook",
        secret="s3cret",
        transport=httpx.MockTransport(receiver),
    )
    gh.set_ci(full_name=REPO, bad_paths=["changes/1.txt"])
    pr = gh.add_pull(full_name=REPO)
    tip = stage(gh, pr["head_sha"])
    await gh.run_ci(full_name=REPO, sha=tip)
    assert [event for event, _ in receiver.got] == ["check_run", "check_suite"]
    for event, payload in receiver.got:
        assert _validate(event, payload) == []
        assert payload["action"] == "completed"
        assert payload["repository"]["full_name"] == REPO
        assert payload["installation"]["id"] == 5
    run, suite = receiver.got[0][1]["check_run"], receiver.got[1][1]["check_suite"]
    assert (run["head_sha"], run["name"], run["conclusion"]) == (tip, "ci", "failure")
    assert run["check_suite"]["head_branch"] == STAGING
    assert (suite["head_sha"], suite["conclusion"], suite["status"]) == (
        tip,
        "failure",
        "completed",
    )
    assert suite["head_commit"]["tree_id"] == gh.commit_json(full_name=REPO, sha=tip)["tree_sha"]


async def test_with_a_delay_ci_completes_by_itself_and_reports(gh: FakeGitHub) -> None:
    receiver = Receiver()
    gh.set_webhook_target(
        url="https://hooks.example.com/api/webhook",
        secret="s3cret",
        transport=httpx.MockTransport(receiver),
    )
    gh.set_ci(full_name=REPO, ci_delay=0.05)
    tip = stage(gh)
    assert conclusions(gh, tip) == [("ci", "in_progress", None)]
    for _ in range(100):
        if len(receiver.got) == 2:
            break
        await asyncio.sleep(0.02)
    assert conclusions(gh, tip) == [("ci", "completed", "success")]
    assert [event for event, _ in receiver.got] == ["check_run", "check_suite"]
    assert [d["status"] for d in gh.deliveries_json()] == ["OK", "OK"]


def test_without_an_event_loop_a_delayed_run_waits_for_complete_ci(gh: FakeGitHub) -> None:
    gh.set_ci(full_name=REPO, ci_delay=0.01)
    tip = stage(gh)
    assert [r["conclusion"] for r in gh.complete_ci(full_name=REPO, sha=tip)] == ["success"]


async def test_reset_cancels_runs_still_waiting(gh: FakeGitHub) -> None:
    gh.set_ci(full_name=REPO, ci_delay=3600)
    stage(gh)
    tasks = set(gh._ci_tasks)
    assert tasks
    gh.reset()
    await asyncio.sleep(0)
    assert all(t.cancelled() or t.done() for t in tasks)
    assert gh.ci_runs_json() == []


def test_every_landed_tree_can_be_checked_against_the_tested_ones(gh: FakeGitHub) -> None:
    """The assertion parallel mode needs: the base's tree after landing was tested."""
    gh.set_ci(full_name=REPO)
    one, two = gh.add_pull(full_name=REPO), gh.add_pull(full_name=REPO)
    tip = stage(gh, one["head_sha"], two["head_sha"])
    gh.complete_ci(full_name=REPO)
    gh.update_ref(full_name=REPO, ref="heads/main", sha=tip)
    tested = {r["tree_sha"] for r in gh.ci_runs_json() if r["conclusion"] == "success"}
    landed = gh.commit_json(full_name=REPO, sha="main")["tree_sha"]
    assert landed in tested
    assert all(gh.pull_json(full_name=REPO, number=n)["merged"] for n in (1, 2))


def test_github_actions_runs_are_workflow_runs_that_can_be_cancelled(gh: FakeGitHub) -> None:
    gh.set_ci(full_name=REPO)  # app github-actions
    gh.set_ci(full_name=REPO, name="build", app_id=77, app_slug="builder")
    gh.set_installation_permissions(installation_id=5, permissions={"actions": "write"})
    tip = stage(gh)
    [run] = gh.workflow_runs(full_name=REPO, branch=STAGING)
    assert (run.name, run.sha, run.status, run.run_number) == ("ci", tip, "in_progress", 1)
    assert run.workflow_run_id is not None
    gh.cancel_workflow_run(full_name=REPO, run_id=run.workflow_run_id, installation_id=5)
    assert sorted(conclusions(gh, tip)) == [
        ("build", "in_progress", None),
        ("ci", "completed", "cancelled"),
    ]
    [record] = [r for r in gh.ci_runs_json() if r["name"] == "ci"]
    assert (record["status"], record["conclusion"], record["reason"]) == (
        "completed",
        "cancelled",
        "cancelled",
    )
    # Cancelled runs are not completed again with the outcome decided at their start.
    assert [r["name"] for r in gh.complete_ci(full_name=REPO)] == ["build"]
    with pytest.raises(ApiError) as finished:
        gh.cancel_workflow_run(full_name=REPO, run_id=run.workflow_run_id, installation_id=5)
    assert finished.value.status == 409


def test_cancelling_a_workflow_run_needs_actions_write(gh: FakeGitHub) -> None:
    gh.set_ci(full_name=REPO)
    stage(gh)
    [run] = gh.workflow_runs(full_name=REPO)
    assert run.workflow_run_id is not None
    for granted in (None, "read"):
        gh.set_installation_permissions(installation_id=5, permissions={"actions": granted})
        with pytest.raises(ApiError) as refused:
            gh.cancel_workflow_run(full_name=REPO, run_id=run.workflow_run_id, installation_id=5)
        assert (refused.value.status, refused.value.message) == (
            403,
            "Resource not accessible by integration",
        )
    assert gh.ci_runs_json()[0]["status"] == "in_progress"
    # A static token (no installation) may.
    gh.cancel_workflow_run(full_name=REPO, run_id=run.workflow_run_id)
    assert gh.ci_runs_json()[0]["conclusion"] == "cancelled"
