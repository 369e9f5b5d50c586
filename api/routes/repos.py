"""`/api/v1/repos`: repositories and their queues."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep, SettingsDep, require_api_token
from api.inputs import Owner, RepoName
from api.schemas import ErrorOut, QueueEntryOut, QueueOut, RepositoryOut
from mergequeue import reads
from mergequeue.models import Repository, utcnow
from mergequeue.queue.effective import effective_settings
from mergequeue.settings import Settings

router = APIRouter(
    prefix="/api/v1",
    tags=["repositories"],
    dependencies=[Depends(require_api_token)],
    responses={
        401: {"model": ErrorOut, "description": "missing or invalid bearer token"},
        413: {"model": ErrorOut, "description": "request body over 64 KiB"},
    },
)


async def repository_out(
    session: AsyncSession, repo: Repository, settings: Settings
) -> RepositoryOut:
    # With its installation, as the worker resolves it: what it granted decides whether
    # some settings take effect.
    installation = await reads.repository_installation(session=session, repository=repo)
    effective = effective_settings(repo, settings, installation)
    return RepositoryOut(
        id=repo.id,
        owner=repo.owner,
        name=repo.name,
        full_name=repo.full_name,
        default_branch=repo.default_branch,
        paused=repo.paused,
        queue_label=effective.queue_label,
        merge_method=effective.merge_method.value,
        required_checks=list(effective.required_checks) if effective.required_checks else None,
        ci_timeout_seconds=effective.ci_timeout_seconds,
        queue_mode=effective.mode.value,
        max_parallel_builds="auto" if effective.auto_builds else effective.max_parallel_builds,
        batch_size=effective.batch_size,
        batch_wait_seconds=int(effective.batch_wait.total_seconds()),
        notify_webhook_url=effective.notify_webhook_url,
        failure_depth=effective.failure_depth,
        flaky_retries=effective.flaky_retries,
        flaky_retries_in_effect=effective.flaky_retries_in_effect,
        status_comments=effective.status_comments,
        frozen=effective.frozen(utcnow()) is not None,
        freeze_reason=effective.frozen_reason,
        frozen_from=effective.frozen_from,
        frozen_until=effective.frozen_until,
        freeze_branch=effective.frozen_branch,
    )


@router.get("/repos", response_model=list[RepositoryOut])
async def list_repositories(session: SessionDep, settings: SettingsDep) -> list[RepositoryOut]:
    return [
        await repository_out(session, r, settings)
        for r in await reads.list_repositories(session=session)
    ]


async def _repository(session: SessionDep, owner: str, repo: str) -> Repository:
    found = await reads.find_repository(session=session, owner=owner, name=repo)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"repository {owner}/{repo} is not known")
    return found


@router.get(
    "/repos/{owner}/{repo}",
    response_model=RepositoryOut,
    responses={404: {"model": ErrorOut}},
)
async def get_repository(
    owner: Owner, repo: RepoName, session: SessionDep, settings: SettingsDep
) -> RepositoryOut:
    return await repository_out(session, await _repository(session, owner, repo), settings)


@router.get(
    "/repos/{owner}/{repo}/queue",
    response_model=QueueOut,
    responses={404: {"model": ErrorOut}},
)
async def read_queue(
    owner: Owner, repo: RepoName, session: SessionDep, settings: SettingsDep
) -> QueueOut:
    repository = await _repository(session, owner, repo)
    entries = await reads.read_queue(session=session, repository=repository)
    return QueueOut(
        repository=await repository_out(session, repository, settings),
        entries=[QueueEntryOut.model_validate(e, from_attributes=True) for e in entries],
    )
