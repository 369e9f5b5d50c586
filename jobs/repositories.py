"""Keeping the repositories of each installation in step with GitHub."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update

from jobs.config_file import read_config_file, report
from jobs.context import WorkerContext
from jobs.deferral import defer_when_github_says_wait
from jobs.evaluate import wake
from mergequeue.github import GitHubClient, GitHubError
from mergequeue.github.models import Repository as ListedRepository
from mergequeue.github_setup import installation_client
from mergequeue.models import Installation, Repository
from mergequeue.queue.config_file import apply_config_file
from mergequeue.repositories import save_repository
from mergequeue.tasks import SYNC_REPOSITORIES, sync_job_id
from mergequeue.upsert import upsert

log = logging.getLogger("mergequeue.repositories")


async def sync_repositories(ctx: dict[str, Any], installation_id: int) -> int:
    """Upsert the installation's repositories as the API lists them; detach the others."""
    worker = WorkerContext.of(ctx)
    if worker.github is None:
        log.warning("no GitHub credentials configured; repositories not synchronised")
        return 0
    client = installation_client(worker.github, installation_id)
    with defer_when_github_says_wait(ctx):
        listed = await client.list_installation_repositories()
    async with worker.database.sessions() as session, session.begin():
        for repo in listed:
            await save_repository(
                session,
                id=repo.id,
                owner=repo.owner,
                name=repo.name,
                default_branch=repo.default_branch,
                installation_id=installation_id,
            )
        await session.execute(
            update(Repository)
            .where(
                Repository.installation_id == installation_id,
                Repository.id.not_in([r.id for r in listed]),
            )
            .values(installation_id=None)
        )
    log.info(
        "repositories synchronised", extra={"installation": installation_id, "count": len(listed)}
    )
    for repo in listed:
        await _sync_config_file(ctx, worker, client, repo)
    return len(listed)


async def _sync_config_file(
    ctx: dict[str, Any], worker: WorkerContext, client: GitHubClient, repo: ListedRepository
) -> None:
    """Read the repository's settings file on its default branch (a conditional request:
    free while it is unchanged) and apply it, as a push that changed it would have: this
    catches a push webhook that never arrived."""
    try:
        with defer_when_github_says_wait(ctx):
            read = await read_config_file(
                client,
                repository_id=repo.id,
                owner=repo.owner,
                name=repo.name,
                branch=repo.default_branch,
                ref=repo.default_branch,
            )
    except GitHubError as exc:
        # Not a rate limit or an outage (those defer the job): e.g. no contents permission.
        log.warning("settings file not read", extra={"repository": repo.full_name, "why": str(exc)})
        return
    async with worker.database.sessions() as session, session.begin():
        repository = await session.get(Repository, repo.id)
        if repository is None:
            return
        changed = await apply_config_file(session, repository, read)
    report(repo.full_name, read, changed=changed, source="discovery")
    if changed:
        await wake(worker, repo.id)


async def sync_all_installations(ctx: dict[str, Any]) -> int:
    """Periodic reconciliation: installations (an App lists them all, so one whose webhook
    was missed is found too) and then each one's repositories, as jobs."""
    worker = WorkerContext.of(ctx)
    ids = await sync_installations(ctx)
    for installation_id in ids:
        await worker.redis.enqueue_job(
            SYNC_REPOSITORIES, installation_id, _job_id=sync_job_id(installation_id)
        )
    return len(ids)


async def sync_installations(ctx: dict[str, Any]) -> list[int]:
    """Upsert the App's installations as GitHub lists them (an App only); returns the ids
    of the installations not suspended, as the database knows them."""
    worker = WorkerContext.of(ctx)
    if worker.github is not None and worker.github.authenticates_as_app:
        with defer_when_github_says_wait(ctx):
            listed = await worker.github.list_app_installations()
        async with worker.database.sessions() as session, session.begin():
            for installation in listed:
                await upsert(
                    session,
                    Installation,
                    {
                        "id": installation.id,
                        "account_login": installation.account_login,
                        "suspended": installation.suspended,
                        "actions_write": installation.actions_write,
                    },
                    conflict=["id"],
                    update=["account_login", "suspended", "actions_write"],
                )
    async with worker.database.sessions() as session:
        ids = (
            await session.scalars(select(Installation.id).where(Installation.suspended.is_(False)))
        ).all()
    return list(ids)
