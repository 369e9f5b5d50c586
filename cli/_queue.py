"""`mergequeue queue show OWNER/REPO`: a repository's queue, as the REST API shows it."""

from __future__ import annotations

import argparse

from api.routes.repos import repository_out
from api.schemas import QueueEntryOut, QueueOut, RepositoryOut
from cli._output import OK, CommandError, emit
from mergequeue import reads
from mergequeue.db import create_database
from mergequeue.settings import Settings


async def run_show(args: argparse.Namespace, settings: Settings | None) -> int:
    assert settings is not None
    owner, name = args.repository.split("/", 1)
    database = create_database(settings.DATABASE_URL)
    try:
        async with database.sessions() as session:
            repository = await reads.find_repository(session=session, owner=owner, name=name)
            if repository is None:
                raise CommandError(f"repository {owner}/{name} is not known")
            entries = await reads.read_queue(session=session, repository=repository)
            out = QueueOut(
                repository=await repository_out(session, repository, settings),
                entries=[QueueEntryOut.model_validate(e, from_attributes=True) for e in entries],
            )
    finally:
        await database.dispose()
    emit(args.json, out.model_dump(mode="json"), lambda: _text(out))
    return OK


def _text(queue: QueueOut) -> str:
    repo = queue.repository
    state = "paused" if repo.paused else "frozen" if repo.frozen else "merging"
    lines = [
        f"{repo.full_name} ({state}, {repo.merge_method}): {len(queue.entries)} queued",
        # The API's names, so what is shown is what PATCH /api/v1/repos/OWNER/REPO changes.
        f"queue_mode {repo.queue_mode}, max_parallel_builds {repo.max_parallel_builds}, "
        f"batch_size {repo.batch_size}, batch_wait_seconds {repo.batch_wait_seconds}, "
        f"failure_depth {repo.failure_depth}, flaky_retries {repo.flaky_retries}"
        f"{_not_in_effect(repo)}, "
        f"status_comments {'true' if repo.status_comments else 'false'}",
    ]
    if repo.freeze_reason is not None:
        window = "".join(
            [
                f" on {repo.freeze_branch}" if repo.freeze_branch else "",
                f" from {repo.frozen_from.isoformat()}" if repo.frozen_from else "",
                f" until {repo.frozen_until.isoformat()}" if repo.frozen_until else "",
            ]
        )
        now = "frozen" if repo.frozen else "freeze set"
        lines.append(f"{now}{window}: {repo.freeze_reason}")
    for entry in queue.entries:
        detail = f" ({entry.status_detail})" if entry.status_detail else ""
        urgent = " [urgent]" if entry.priority == "urgent" else ""
        lines.append(
            f"{entry.position:>3}. #{entry.number}{urgent} into {entry.base_ref}: "
            f"{entry.status}{detail} - {entry.title} by {entry.author}"
        )
    return "\n".join(lines)


def _not_in_effect(repo: RepositoryOut) -> str:
    # A configured number the queue does not act on would mislead without a word.
    if repo.flaky_retries == 0 or repo.flaky_retries_in_effect:
        return ""
    if repo.queue_mode != "parallel":
        return " (not in effect: serial mode)"
    return " (not in effect: needs actions: write)"
