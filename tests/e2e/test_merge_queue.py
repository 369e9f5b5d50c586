"""The merge queue, end to end: real web and worker against the fake GitHub."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from mergequeue.models import QueueEntry, QueueEntryState, Repository
from tests.e2e.conftest import StartWeb, StartWorker, Worker
from tests.support import webhooks
from tests.support.db import execute, rows
from tests.support.fake_github import FakeGitHubServer, fake_github  # noqa: F401 (fixture)
from tests.support.metrics import value
from tests.support.processes import QUICK_RECONCILIATION
from tests.support.scenario import Scenario, wait_for


@pytest.fixture
def world(
    start_web: StartWeb,
    start_worker: StartWorker,
    sqlite_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,  # noqa: F811
) -> Iterator[tuple[Scenario, Worker, str]]:
    env = {
        "DATABASE_URL": sqlite_url,
        "REDIS_URL": redis_url,
        **fake_github.app_env(),
        **QUICK_RECONCILIATION,
    }
    web = start_web(GITHUB_WEBHOOK_SECRET=webhooks.SECRET, **env)
    worker = start_worker(**env)
    scenario = Scenario(fake_github, web.url)
    scenario.setup()
    yield scenario, worker, sqlite_url


def _entries(url: str) -> list[QueueEntry]:
    return [r[0] for r in rows(url, select(QueueEntry).order_by(QueueEntry.id))]


def test_a_labelled_pull_request_that_is_behind_is_updated_checked_and_merged(
    world: tuple[Scenario, Worker, str],
) -> None:
    s, worker, url = world
    number = s.open_pull()
    s.move_base()  # main moves on: the pull request is now behind
    old_head = s.head(number)
    s.add_label(number)

    # The queue updates the branch; GitHub gives it a new head.
    wait_for(lambda: s.head(number) != old_head, what="branch updated")
    assert not s.merged(number)
    new_head = s.head(number)
    s.report(new_head, "ci", "success")
    wait_for(lambda: s.merged(number), what="merged")
    wait_for(lambda: _entries(url)[0].state == QueueEntryState.MERGED, what="recorded")
    text = httpx.get(worker.metrics_url).text
    assert value(text, "mergequeue_merges_total", repository=s.full_name) == 1
    assert value(text, "mergequeue_time_to_merge_seconds_count", repository=s.full_name) == 1


def test_three_pull_requests_queued_together_merge_in_order(
    world: tuple[Scenario, Worker, str],
) -> None:
    s, _, url = world
    numbers = [s.open_pull() for _ in range(3)]
    for number in numbers:
        s.add_label(number)
    merged_order: list[int] = []

    def ci_robot() -> bool:
        # Plays CI: every head gets a green status; notes merges as they happen.
        for number in numbers:
            pull = s.pull(number)
            if pull["merged"]:
                if number not in merged_order:
                    merged_order.append(number)
                continue
            statuses = s.api(f"/repos/{s.full_name}/commits/{pull['head']['sha']}/status")
            if not statuses["statuses"]:
                s.report(pull["head"]["sha"], "ci", "success")
        return len(merged_order) == 3

    wait_for(ci_robot, timeout=60, what="all three merged")
    assert merged_order == numbers
    wait_for(lambda: [e.state for e in _entries(url)] == [QueueEntryState.MERGED] * 3)


def test_a_failing_check_dequeues_with_a_comment_and_removes_the_label(
    world: tuple[Scenario, Worker, str],
) -> None:
    s, worker, url = world
    number = s.open_pull()
    s.add_label(number)
    s.report(s.head(number), "ci", "failure")
    wait_for(lambda: _entries(url) and _entries(url)[0].state == QueueEntryState.DEQUEUED)
    [entry] = _entries(url)
    assert entry.dequeue_reason == "check_failed"
    assert not s.merged(number)
    assert any("required check failed: ci" in c for c in s.comments(number))
    assert s.label not in [label["name"] for label in s.pull(number)["labels"]]
    text = httpx.get(worker.metrics_url).text
    assert (
        value(text, "mergequeue_dequeues_total", repository=s.full_name, reason="check_failed") == 1
    )


def test_checks_that_never_finish_dequeue_after_the_ci_timeout(
    world: tuple[Scenario, Worker, str],
) -> None:
    s, _, url = world
    number = s.open_pull()
    s.add_label(number)
    wait_for(lambda: bool(_entries(url)))
    execute(url, "UPDATE repositories SET ci_timeout_seconds = 2")
    wait_for(
        lambda: _entries(url)[0].state == QueueEntryState.DEQUEUED, timeout=45, what="timed out"
    )
    assert _entries(url)[0].dequeue_reason == "ci_timeout"
    assert any("did not finish within" in c for c in s.comments(number))


def test_a_missed_check_webhook_is_recovered_by_reconciliation(
    world: tuple[Scenario, Worker, str],
) -> None:
    s, _, _ = world
    number = s.open_pull()
    s.add_label(number)
    # CI passes, but GitHub's status webhook never arrives.
    s.report(s.head(number), "ci", "success", deliver=False)
    wait_for(lambda: s.merged(number), timeout=40, what="merged by reconciliation")


def test_pause_stops_merging_not_queueing_and_resume_merges(
    world: tuple[Scenario, Worker, str],
) -> None:
    s, worker, url = world
    first = s.open_pull()
    wait_for(lambda: bool(rows(url, select(Repository))), what="repository known")
    execute(url, "UPDATE repositories SET paused = true")
    s.add_label(first)
    s.report(s.head(first), "ci", "success")
    wait_for(lambda: bool(_entries(url)) and _entries(url)[0].status == "paused")
    assert not s.merged(first)

    def paused_gauge() -> float | None:
        text = httpx.get(worker.metrics_url).text
        return value(text, "mergequeue_queue_paused", repository=s.full_name)

    # The gauge says so, and the "queue not moving" alert leaves a paused queue alone.
    wait_for(lambda: paused_gauge() == 1, what="paused gauge")
    execute(url, "UPDATE repositories SET paused = false")
    wait_for(lambda: s.merged(first), timeout=40, what="merged after resume")
    wait_for(lambda: paused_gauge() == 0, what="gauge back to 0")


def test_unlabelling_dequeues(world: tuple[Scenario, Worker, str]) -> None:
    s, _, url = world
    number = s.open_pull()
    s.add_label(number)
    wait_for(lambda: bool(_entries(url)))
    s.remove_label(number)
    wait_for(lambda: _entries(url)[0].state == QueueEntryState.DEQUEUED)
    assert _entries(url)[0].dequeue_reason == "unlabeled"


def test_merge_and_cancel_comments_queue_and_dequeue(world: tuple[Scenario, Worker, str]) -> None:
    s, _, url = world
    cancelled, merged = s.open_pull(), s.open_pull()
    s.comment(cancelled, "Looks good.\n/mergequeue merge")
    wait_for(lambda: len(_entries(url)) == 1, what="queued by comment")
    s.comment(cancelled, "/mergequeue cancel")
    wait_for(lambda: _entries(url)[0].state == QueueEntryState.DEQUEUED, what="cancelled")
    assert _entries(url)[0].dequeue_reason == "cancelled"
    s.fake.control("set_permission", full_name=s.full_name, username="reviewer", role_name="write")
    s.comment(merged, "/mergequeue merge", author="reviewer", association="COLLABORATOR")
    s.report(s.head(merged), "ci", "success")
    wait_for(lambda: s.merged(merged), what="merged after a comment")
    assert [e.enqueued_by for e in _entries(url)] == ["octocat", "reviewer"]


def test_a_command_without_write_permission_is_refused_with_one_reply(
    world: tuple[Scenario, Worker, str],
) -> None:
    s, _, url = world
    number = s.open_pull()
    s.fake.control("set_permission", full_name=s.full_name, username="visitor", role_name="read")
    s.comment(number, "/mergequeue merge", author="visitor", association="COLLABORATOR")
    s.comment(number, "/mergequeue merge", author="drive-by", association="NONE")
    wait_for(lambda: len(s.comments(number)) == 2, what="two refusals")
    assert sorted(c.split()[0] for c in s.comments(number)) == ["@drive-by", "@visitor"]
    assert _entries(url) == []
    # Asked GitHub about the collaborator only; the stranger was refused unasked.
    permission = "/repos/{owner}/{repo}/collaborators/{username}/permission"
    assert [c["path"].rsplit("/", 2)[-2] for c in s.fake.calls(permission, "GET")] == ["visitor"]


def test_a_suspended_installation_does_not_act_until_unsuspended(
    world: tuple[Scenario, Worker, str],
) -> None:
    s, _, url = world
    number = s.open_pull()
    s.set_suspended(True)
    s.add_label(number)
    s.report(s.head(number), "ci", "success")
    wait_for(lambda: bool(_entries(url)), what="queued")
    # Reconciliation re-reads quiet queues every 5 s here: give it two chances to act.
    time.sleep(11)
    assert not s.merged(number)
    service_reads = [
        c
        for c in s.fake.calls("/repos/{owner}/{repo}/pulls/{pull_number}", "GET")
        if c["identity"] == str(s.installation_id)
    ]
    assert service_reads == []
    s.set_suspended(False)
    wait_for(lambda: s.merged(number), timeout=30, what="merged after unsuspend")


def test_queue_depth_gauge_follows_the_queue(world: tuple[Scenario, Worker, str]) -> None:
    s, worker, _ = world
    numbers = [s.open_pull() for _ in range(3)]
    for number in numbers:
        s.add_label(number)

    def depth() -> float | None:
        return value(
            httpx.get(worker.metrics_url).text, "mergequeue_queue_depth", repository=s.full_name
        )

    wait_for(lambda: depth() == 3, what="depth 3")
    for number in numbers:
        s.report(s.head(number), "ci", "failure")
    wait_for(lambda: depth() == 0, what="depth back to 0")


def test_the_queue_shows_on_the_pull_request_in_a_check_run_and_one_comment(
    world: tuple[Scenario, Worker, str],
) -> None:
    s, _, _ = world
    first, second = s.open_pull(), s.open_pull()
    s.comment(first, "/mergequeue merge")
    s.add_label(second)

    def shown(number: int, title: str) -> bool:
        checks = s.own_checks(number)
        return bool(checks) and checks[-1]["title"] == title

    wait_for(lambda: shown(second, "Queued (position 2 of 2 on main)"), what="second queued")
    wait_for(
        lambda: (
            shown(first, "Testing (position 1 of 1 on main)")
            or shown(first, "Testing (position 1 of 2 on main)")
        ),
        what="first testing",
    )
    # The command got its reaction.
    command = next(c for c in s.fake.control("comments_json") if c["body"] == "/mergequeue merge")
    wait_for(
        lambda: (
            [
                r["content"]
                for r in next(
                    c for c in s.fake.control("comments_json") if c["id"] == command["id"]
                )["reactions"]
            ]
            == ["+1"]
        ),
        what="reaction",
    )
    s.report(s.head(first), "ci", "success")
    wait_for(lambda: s.merged(first), what="first merged")
    wait_for(lambda: s.own_checks(first)[-1]["conclusion"] == "success", what="landed shown")
    wait_for(lambda: shown(second, "Testing (position 1 of 1 on main)"), what="second moves up")
    # One status comment per pull request, edited in place.
    [comment] = s.status_comments(first)
    assert "Landed in main" in comment["body"] and comment["updated_at"] is not None
    assert len(s.status_comments(second)) == 1
