"""`mergequeue queue show OWNER/REPO`: a repository's queue, as the REST API shows it."""

from __future__ import annotations

import argparse

from api.routes.repos import repository_out
from api.schemas import QueueEntryOut, QueueOut
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
                repository=repository_out(repository, settings),
                entries=[QueueEntryOut.model_validate(e, from_attributes=True) for e in entries],
            )
    finally:
        await database.dispose()
    emit(args.json, out.model_dump(mode="json"), lambda: _text(out))
    return OK


def _text(queue: QueueOut) -> str:
    repo = queue.repository
    state = "paused" if repo.paused else "merging"
    lines = [
        f"{repo.full_name} ({state}, {repo.merge_method}): {len(queue.entries)} queued",
        # The API's names, so what is shown is what PATCH /api/v1/repos/OWNER/REPO changes.
        f"queue_mode {repo.queue_mode}, max_parallel_builds {repo.max_parallel_builds}, "
        f"batch_size {repo.batch_size}, batch_wait_seconds {repo.batch_wait_seconds}",
    ]
    for entry in queue.entries:
        detail = f" ({entry.status_detail})" if entry.status_detail else ""
        lines.append(
            f"{entry.position:>3}. #{entry.number} into {entry.base_ref}: {entry.status}{detail}"
            f" - {entry.title} by {entry.author}"
        )
    return "\n".join(lines)
