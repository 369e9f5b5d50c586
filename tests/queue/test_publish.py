"""The queue shown on the pull request: its `mergequeue` check run and one status comment,
written only when what they say changed (in process, on the fake GitHub, simulated clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mergequeue.queue.ports import QUEUE_CHECK_NAME
from mergequeue.queue.publish import Pace
from mergequeue.webhooks.events import LabelChanged
from tests.queue.harness import FULL_NAME, LABEL, Harness
from tests.queue.memory import BOT


def own_checks(h: Harness, number: int) -> list[dict[str, Any]]:
    runs = h.fake.check_runs_json(full_name=FULL_NAME, sha=h.head(number))
    return [r for r in runs if r["name"] == QUEUE_CHECK_NAME]


def status_comments(h: Harness, number: int) -> list[str]:
    return [
        c.body
        for c in h.fake.comments
        if c.number == number and c.author == BOT and c.body.startswith("**mergequeue**")
    ]


def writes(h: Harness) -> int:
    return h.github.count("publish") + h.github.count("upsert_comment")


async def test_a_queued_pull_request_shows_its_position_on_a_mergequeue_check() -> None:
    h = Harness()
    first, second = h.open_pull(), h.open_pull()
    await h.label(first)
    await h.label(second)
    await h.evaluate()
    [run] = own_checks(h, second)
    assert run["status"] == "queued"
    assert run["title"] == "Queued (position 2 of 2 on main)"
    [head] = own_checks(h, first)
    assert head["status"] == "in_progress"


async def test_nothing_is_written_when_nothing_changed() -> None:
    h = Harness()
    number = h.open_pull()
    await h.label(number)
    await h.evaluate()
    before = writes(h)
    assert before > 0
    h.advance(minutes=1)
    await h.evaluate()
    await h.evaluate()
    assert writes(h) == before


async def test_a_landed_pull_request_shows_success_and_a_removed_one_why() -> None:
    h = Harness()
    good, bad = h.open_pull(), h.open_pull()
    await h.label(good)
    await h.label(bad)
    await h.evaluate()
    h.ci(good)
    await h.evaluate()
    h.ci(bad, "failure")
    await h.evaluate()
    [landed] = own_checks(h, good)
    assert (landed["status"], landed["conclusion"]) == ("completed", "success")
    [failed] = own_checks(h, bad)
    assert (failed["status"], failed["conclusion"]) == ("completed", "failure")
    assert "required check failed: ci" in failed["summary"]


async def test_one_status_comment_per_pull_request_is_edited_in_place() -> None:
    h = Harness()
    number = h.open_pull()
    await h.label(number)
    await h.evaluate()
    # Dequeued and queued again: the same comment tells the new stay.
    h.fake.repo(FULL_NAME).pulls[number].labels.remove(LABEL)
    await h.apply(LabelChanged(h.repository.id, number, LABEL, False, "alice"))
    await h.evaluate()
    await h.label(number)
    await h.evaluate()
    h.ci(number)
    await h.evaluate()
    [comment] = status_comments(h, number)
    assert "Landed in main" in comment
    edited = [c for c in h.fake.comments if c.body.startswith("**mergequeue**")]
    assert edited[0].updated_at is not None


async def test_status_comments_can_be_turned_off_per_repository() -> None:
    h = Harness()
    h.configure(status_comments=False)
    number = h.open_pull()
    await h.label(number)
    await h.evaluate()
    assert status_comments(h, number) == []
    assert own_checks(h, number)


async def test_the_queue_never_waits_on_its_own_check() -> None:
    h = Harness(required=())  # nothing required: every check that reports must pass
    number = h.open_pull()
    await h.label(number)
    await h.evaluate()
    assert own_checks(h, number)[0]["status"] == "in_progress"
    h.ci(number)
    await h.evaluate()
    assert h.merged(number)


async def test_a_required_mergequeue_check_is_turned_green_on_what_lands() -> None:
    h = Harness(required=("ci", QUEUE_CHECK_NAME))
    number = h.open_pull()
    await h.label(number)
    await h.evaluate()
    h.ci(number)
    await h.evaluate()
    assert h.merged(number)


async def test_without_the_requirement_no_extra_write_marks_the_head() -> None:
    h = Harness(required=("ci",))
    number = h.open_pull()
    await h.label(number)
    await h.evaluate()
    h.ci(number)
    await h.evaluate()
    # Testing, then landed: nothing in between.
    assert h.github.count("publish") == 2


async def test_parallel_mode_marks_the_tested_commit_when_the_base_requires_the_check() -> None:
    h = Harness(required=("ci", QUEUE_CHECK_NAME))
    h.configure(queue_mode="parallel", batch_wait_seconds=0)
    h.fake.set_ci(full_name=FULL_NAME)
    number = h.open_pull()
    await h.label(number)
    await h.evaluate()
    h.fake.complete_ci(full_name=FULL_NAME)
    await h.evaluate()
    assert h.merged(number)
    main = h.fake.repo(FULL_NAME).branches["main"]
    marks = h.fake.check_runs_json(full_name=FULL_NAME, sha=main)
    assert [(r["name"], r["conclusion"]) for r in marks if r["name"] == QUEUE_CHECK_NAME] == [
        (QUEUE_CHECK_NAME, "success")
    ]


def test_the_estimate_follows_the_recent_pace_of_landings() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    pace = Pace.from_landings([t0 + timedelta(minutes=20 * i) for i in range(5)])
    assert pace.between_landings == timedelta(minutes=20)
    # Third in line: about an hour, shown to the next ten minutes.
    assert pace.estimate(3, t0) == t0 + timedelta(minutes=70)
    assert Pace.from_landings([t0]).estimate(1, t0) is None


async def test_commands_get_a_reaction_saying_what_became_of_them() -> None:
    h = Harness()
    number = h.open_pull()
    accepted = h.command(number, "merge", author="alice", association="OWNER")
    again = h.command(number, "merge", author="alice", association="OWNER")
    refused = h.command(number, "cancel", author="mallory", association="NONE")
    for comment_id in (accepted.comment_id, again.comment_id, refused.comment_id):
        h.fake.add_comment(full_name=FULL_NAME, number=number, body="/mergequeue", user="x")
        h.fake.comments[-1].id = comment_id
    await h.apply(accepted)
    await h.apply(again)
    await h.apply(refused, refused=frozenset({refused.comment_id}))
    await h.evaluate()
    reactions = {c.id: [r["content"] for r in c.reactions] for c in h.fake.comments}
    assert reactions[accepted.comment_id] == ["+1"]
    assert reactions[again.comment_id] == ["confused"]  # queued already: nothing changed
    assert reactions[refused.comment_id] == ["-1"]
    assert h.store.live(number) is not None


async def test_a_waiting_entry_moving_up_is_shown_again_at_most_every_ten_minutes() -> None:
    h = Harness(required=("ci",), strict=False)
    numbers = [h.open_pull() for _ in range(4)]
    for number in numbers:
        await h.label(number)
    await h.evaluate()
    last = numbers[-1]
    assert own_checks(h, last)[-1]["title"] == "Queued (position 4 of 4 on main)"
    h.ci(numbers[0])
    h.advance(minutes=1)
    await h.evaluate()  # the first landed: the others moved up
    assert h.merged(numbers[0])
    assert own_checks(h, last)[-1]["title"] == "Queued (position 4 of 4 on main)"
    h.advance(minutes=10)
    await h.evaluate()
    assert own_checks(h, last)[-1]["title"] == "Queued (position 3 of 3 on main)"
