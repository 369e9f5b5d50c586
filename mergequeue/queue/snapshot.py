"""Reading what `decide` needs about a pull request, fresh from GitHub."""

from __future__ import annotations

from dataclasses import replace

from mergequeue.queue.decide import Check, PullSnapshot, judge_checks
from mergequeue.queue.ports import QUEUE_CHECK_NAME, RepositoryGitHub


async def read_snapshot(
    github: RepositoryGitHub, number: int, required: tuple[str, ...] | None
) -> PullSnapshot | None:
    """The pull request, its checks, the required checks and how far it is behind.

    `required` is the repository's own list; None reads branch protection's and rulesets'.
    A closed pull request ends the reading early; GitHub's comparison with the base is read
    only once every check passed (it is what stands between a green head and its merge).
    """
    pull = await github.pull(number)
    if pull is None:
        return None
    snapshot = PullSnapshot(
        number=pull.number,
        state=pull.state,
        merged=pull.merged,
        draft=pull.draft,
        head_sha=pull.head_sha,
        base_ref=pull.base_ref,
        mergeable=pull.mergeable,
        mergeable_state=pull.mergeable_state,
        checks=(),
        required=(),
    )
    if pull.merged or pull.state != "open" or pull.draft:
        return snapshot
    checks = own_check_aside(await github.checks(pull.head_sha))
    names = required if required is not None else await github.required_checks(pull.base_ref)
    own_required = QUEUE_CHECK_NAME in names
    names = tuple(n for n in names if n != QUEUE_CHECK_NAME)
    behind = 0
    if judge_checks(checks, names).all_passed and pull.mergeable_state != "behind":
        # Asked only when the head would otherwise merge: the one moment it matters.
        behind = await github.behind_by(pull.base_ref, pull.head_sha)
    return replace(
        snapshot,
        checks=checks,
        required=names,
        behind_by=behind,
        own_check_required=own_required,
    )


def own_check_aside(checks: tuple[Check, ...]) -> tuple[Check, ...]:
    """The checks without the queue's own: it shows the queue, it is never waited on (a
    team may make it required, so that nothing merges around the queue)."""
    return tuple(c for c in checks if c.name != QUEUE_CHECK_NAME)
