"""What the queue shows on a pull request: the `mergequeue` check run (a commit status in
token mode) on its head, and one status comment edited in place.

`render` is pure: an entry's state, its position and the repository's recent pace in, a
`Publication` out. `publish` writes only what changed since the last write (a fingerprint
of what was shown is kept on the entry), so an unchanged queue costs no call.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from statistics import median

from mergequeue.github import GitHubError
from mergequeue.models import QueueEntry, QueueEntryState
from mergequeue.queue.decide import EntryStatus
from mergequeue.queue.ports import QUEUE_CHECK_NAME, Publication, Refused, ShowingGitHub
from mergequeue.queue.store import QueueStore

log = logging.getLogger("mergequeue.queue")

# Estimates are shown to the next ten minutes: a queue that has not moved is not rewritten.
ESTIMATE_STEP = timedelta(minutes=10)
# How far back finished entries get their last word shown.
FINISHED_WITHIN = timedelta(hours=1)
# A waiting entry whose position or estimate moved is shown again at most this often.
QUEUED_REFRESH = timedelta(minutes=10)
# The landings the estimate's pace is measured over.
PACE_WINDOW = timedelta(days=1)
# Dequeue reasons the pull request's author or a maintainer chose.
WITHDRAWN = frozenset({"unlabeled", "cancelled", "api", "closed"})

TESTED_STATES = frozenset({EntryStatus.MERGING, EntryStatus.CONFIRMING_BLOCKED})
IN_PROGRESS = frozenset(
    {
        EntryStatus.BUILDING,
        EntryStatus.UPDATING,
        EntryStatus.WAITING_FOR_CHECKS,
        EntryStatus.CONFIRMING_BLOCKED,
        EntryStatus.MERGING,
    }
)


@dataclass(frozen=True)
class Pace:
    """How fast the repository's queue has been landing pull requests recently."""

    # The median time between two landings; None when too few landed to say.
    between_landings: timedelta | None

    @classmethod
    def from_landings(cls, landed_at: Sequence[datetime]) -> Pace:
        times = sorted(landed_at)
        gaps = [(b - a).total_seconds() for a, b in pairwise(times) if b > a]
        return cls(timedelta(seconds=median(gaps)) if len(gaps) >= 2 else None)

    def estimate(self, position: int, now: datetime) -> datetime | None:
        if self.between_landings is None:
            return None
        at = now + self.between_landings * position
        step = ESTIMATE_STEP.total_seconds()
        return datetime.fromtimestamp((at.timestamp() // step + 1) * step, tz=at.tzinfo)


@dataclass(frozen=True)
class EntryView:
    number: int
    base_ref: str
    state: QueueEntryState
    status: str
    detail: str | None
    dequeue_reason: str | None
    position: int  # 1-based among its base branch's live entries; 0 once it left
    queued: int  # live entries on that base branch


def render(view: EntryView, pace: Pace, now: datetime) -> Publication:
    if view.state == QueueEntryState.MERGED:
        return Publication(
            "completed", "success", f"Landed in {view.base_ref}", "Merged by the queue."
        )
    if view.state == QueueEntryState.DEQUEUED:
        reason = view.dequeue_reason or "dequeued"
        why = view.detail or f"Removed from the merge queue ({reason})."
        conclusion = "cancelled" if reason in WITHDRAWN else "failure"
        return Publication("completed", conclusion, f"Left the queue: {reason}", why)
    place = f"position {view.position} of {view.queued} on {view.base_ref}"
    if view.status == EntryStatus.FROZEN:
        return Publication(
            "queued", None, f"Frozen ({place})", view.detail or "The base is frozen."
        )
    if view.status == EntryStatus.PAUSED:
        return Publication(
            "queued", None, f"Paused ({place})", view.detail or "The queue is paused."
        )
    estimate = pace.estimate(view.position, now)
    when = (
        f"Estimated to land by {estimate:%Y-%m-%d %H:%M} UTC, from this repository's recent pace."
        if estimate
        else "No estimate yet: too few pull requests have landed recently."
    )
    if view.status in TESTED_STATES:
        # Every required check passed on what lands: the queue's own check says so, and a
        # base that requires it lets the merge through.
        return Publication("completed", "success", "Tested: landing", _doing(view))
    if view.status in IN_PROGRESS:
        title = f"Testing ({place})"
        return Publication("in_progress", None, title, f"{_doing(view)}\n\n{when}")
    return Publication(
        "queued", None, f"Queued ({place})", f"{view.detail or 'Waiting.'}\n\n{when}"
    )


def _doing(view: EntryView) -> str:
    """What the queue is doing with it, without the moving parts (the checks still pending
    change with every check that reports: not worth a write each)."""
    match view.status:
        case EntryStatus.UPDATING:
            return f"Updating its branch with `{view.base_ref}`."
        case EntryStatus.WAITING_FOR_CHECKS:
            return "Waiting for its required checks."
        case EntryStatus.MERGING:
            return "Merging."
        case _:
            return view.detail or str(view.status)


def fingerprint(head_sha: str, publication: Publication) -> str:
    text = "\0".join(
        [
            head_sha,
            publication.status,
            publication.conclusion or "",
            publication.title,
            publication.summary,
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def comment_body(publication: Publication) -> str:
    return (
        f"**mergequeue**: {publication.title}\n\n{publication.summary}\n\n"
        "<sub>This comment is updated as the queue moves.</sub>"
    )


@dataclass
class Publisher:
    github: ShowingGitHub
    clock: Callable[[], datetime]
    status_comments: bool

    async def publish(
        self,
        entry: QueueEntry,
        view: EntryView,
        pace: Pace,
        head: Callable[[], Awaitable[str | None]],
    ) -> bool:
        """Show the entry's state where it changed; False when GitHub could not be told
        (the next evaluation tries again).

        The check run carries everything (position, estimate, detail); the status comment
        only the kind of state, so a queue moving ahead rewrites check runs, not comments.
        `head` reads the pull request's head, asked only when something is to be written.
        """
        now = self.clock()
        publication = render(view, pace, now)
        # The head the queue is working on, when it is (a new push there is shown at once).
        check_mark = fingerprint(entry.waiting_sha or "", publication)
        comment_mark = fingerprint("", _coarse(publication)) if self.status_comments else ""
        shown_check, shown_comment, shown_at = _shown(entry.published)
        # A stay that is over edits its comment; it never starts one.
        may_comment = entry.status_comment_id is not None or view.state == QueueEntryState.QUEUED
        comment_due = self.status_comments and may_comment and shown_comment != comment_mark
        if shown_check == check_mark and entry.check_sha is not None and not comment_due:
            return True
        if (
            publication.status == "queued"
            and not comment_due
            and entry.check_sha is not None
            and shown_at is not None
            and now.timestamp() - shown_at < QUEUED_REFRESH.total_seconds()
        ):
            # Only a waiting entry's position or estimate moved: shown again at most every
            # QUEUED_REFRESH, so a long queue moving ahead does not rewrite every check.
            return True
        try:
            if shown_check != check_mark or entry.check_sha is None:
                head_sha = await head()
                if head_sha is None:
                    return True  # gone or closed: the next evaluation takes it out
                check_id = entry.check_run_id if entry.check_sha == head_sha else None
                entry.check_run_id = await self.github.publish(head_sha, publication, check_id)
                entry.check_sha = head_sha
                shown_check = check_mark
                shown_at = now.timestamp()
            if comment_due:
                entry.status_comment_id = await self.github.upsert_comment(
                    view.number, entry.status_comment_id, comment_body(_coarse(publication))
                )
                shown_comment = comment_mark
        except (GitHubError, Refused) as exc:
            # Showing is never worth holding the queue for: tried again next evaluation.
            log.info(
                "could not show the queue on the pull request",
                extra={"pr": view.number, "why": str(exc)},
            )
            return False
        finally:
            entry.published = f"{shown_check}:{shown_comment}:{int(shown_at or 0)}"
        return True


def _shown(published: str | None) -> tuple[str, str, float | None]:
    """(check fingerprint, comment fingerprint, when the check was last written)."""
    check, _, rest = (published or "").partition(":")
    comment, _, at = rest.partition(":")
    return check, comment, float(at) if at.isdigit() and int(at) > 0 else None


def _coarse(publication: Publication) -> Publication:
    """What the status comment says: the state, not its moving parts."""
    if publication.status == "completed":
        return publication
    word = "Testing" if publication.status == "in_progress" else publication.title.split(" ")[0]
    summary = (
        "The queue is testing it with everything ahead of it."
        if publication.status == "in_progress"
        else "Waiting its turn. The `mergequeue` check on its head shows its position and an "
        "estimate of when it lands."
    )
    return Publication(publication.status, None, word, summary)


async def show_queue(
    *,
    store: QueueStore,
    github: ShowingGitHub,
    repository_id: int,
    status_comments: bool,
    clock: Callable[[], datetime],
) -> int:
    """Show every live entry's state, and the last word of those that ended lately, on
    their pull requests; returns how many were written."""
    now = clock()
    live = await store.queued(repository_id)
    pace = Pace.from_landings(await store.landing_times(repository_id, now - PACE_WINDOW))
    publisher = Publisher(github, clock, status_comments)
    written = 0
    by_base: dict[str, list[tuple[QueueEntry, int]]] = {}
    for entry, number in live:
        by_base.setdefault(entry.base_ref, []).append((entry, number))
    for rows in by_base.values():
        for position, (entry, number) in enumerate(rows, start=1):
            view = _view(entry, number, position, len(rows))
            before = entry.published
            if not await publisher.publish(entry, view, pace, _open_head(github, number)):
                return written
            written += entry.published != before
    queued_now = {number for _, number in live}
    finished = await store.finished_since(repository_id, now - FINISHED_WITHIN)
    # Only each pull request's last stay speaks (rows are in the order they finished).
    last_stay = {number: entry.id for entry, number in finished}
    for entry, number in finished:
        if entry.check_sha is None or number in queued_now or last_stay[number] != entry.id:
            continue  # never shown while queued, or queued again: the new stay shows it
        before = entry.published
        shown_on = entry.check_sha

        async def same_head(sha: str = shown_on) -> str | None:
            return sha

        if not await publisher.publish(entry, _view(entry, number, 0, 0), pace, same_head):
            return written
        written += entry.published != before
    return written


def _open_head(github: ShowingGitHub, number: int) -> Callable[[], Awaitable[str | None]]:
    async def head() -> str | None:
        pull = await github.pull(number)
        return pull.head_sha if pull is not None and pull.state == "open" else None

    return head


def _view(entry: QueueEntry, number: int, position: int, queued: int) -> EntryView:
    return EntryView(
        number=number,
        base_ref=entry.base_ref,
        state=entry.state,
        status=entry.status,
        detail=entry.status_detail,
        dequeue_reason=entry.dequeue_reason,
        position=position,
        queued=queued,
    )


TESTED = Publication(
    "completed",
    "success",
    "Tested by the merge queue",
    "Every required check passed on exactly what lands.",
)


def voucher(github: ShowingGitHub) -> Callable[[str, str], Awaitable[None]]:
    """Marks a commit the queue is about to land as passed by the queue's own check, when
    the base branch requires that check (a team may, so that nothing lands around the
    queue; the required checks are a conditional read, free when unchanged). Best effort:
    when GitHub refuses, landing goes ahead and GitHub decides."""

    async def vouch(sha: str, base_ref: str) -> None:
        try:
            if QUEUE_CHECK_NAME not in await github.required_checks(base_ref):
                return
            await github.publish(sha, TESTED, None)
        except (GitHubError, Refused) as exc:
            log.info("could not mark the commit as tested", extra={"sha": sha, "why": str(exc)})

    return vouch
