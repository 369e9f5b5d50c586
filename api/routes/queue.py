"""`/api/v1/repos/{owner}/{repo}/...`: changing a queue, and one pull request's status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from fastapi.exceptions import RequestValidationError

from api import actions
from api.deps import SessionDep, SettingsDep, require_api_token
from api.inputs import Owner, RepoName
from api.routes.repos import repository_out
from api.schemas import (
    MAX_NUMBER,
    EnqueueIn,
    ErrorOut,
    PullRequestStatusOut,
    RepositoryOut,
    RepositorySettingsIn,
)
from mergequeue.models import Repository
from mergequeue.queue.commands import InvalidSettings, NotQueued, PullQueueStatus, QueueError
from mergequeue.queue.effective import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_BATCH_WAIT_SECONDS,
    DEFAULT_MAX_PARALLEL_BUILDS,
)
from mergequeue.tasks import TaskQueue

router = APIRouter(
    prefix="/api/v1",
    tags=["queue"],
    dependencies=[Depends(require_api_token)],
    responses={
        401: {"model": ErrorOut, "description": "missing or invalid bearer token"},
        413: {"model": ErrorOut, "description": "request body over 64 KiB"},
    },
)

Number = Annotated[int, Path(ge=1, le=MAX_NUMBER, description="pull request number")]
_UNKNOWN_REPOSITORY: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "unknown repository"}
}


async def get_tasks(request: Request) -> TaskQueue:
    tasks: TaskQueue = request.app.state.tasks
    return tasks


TasksDep = Annotated[TaskQueue, Depends(get_tasks)]


async def _repository(session: SessionDep, owner: str, repo: str) -> Repository:
    try:
        return await actions.repository(session=session, owner=owner, name=repo)
    except actions.Unknown as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


def _status_out(entry: PullQueueStatus) -> PullRequestStatusOut:
    return PullRequestStatusOut.model_validate(entry, from_attributes=True)


@router.post(
    "/repos/{owner}/{repo}/queue",
    status_code=status.HTTP_201_CREATED,
    response_model=PullRequestStatusOut,
    summary="Enqueue a pull request",
    responses={
        **_UNKNOWN_REPOSITORY,
        409: {"model": ErrorOut, "description": "already queued, or not open"},
    },
)
async def enqueue(
    owner: Owner, repo: RepoName, body: EnqueueIn, session: SessionDep, tasks: TasksDep
) -> PullRequestStatusOut:
    repository = await _repository(session, owner, repo)
    try:
        entry = await actions.enqueue(
            session=session, tasks=tasks, repository=repository, number=body.number
        )
    except QueueError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return _status_out(entry)


@router.delete(
    "/repos/{owner}/{repo}/queue/{number}",
    response_model=PullRequestStatusOut,
    summary="Dequeue a pull request",
    responses={404: {"model": ErrorOut, "description": "unknown repository, or not queued"}},
)
async def dequeue(
    owner: Owner,
    repo: RepoName,
    number: Number,
    session: SessionDep,
    tasks: TasksDep,
    settings: SettingsDep,
) -> PullRequestStatusOut:
    repository = await _repository(session, owner, repo)
    try:
        entry = await actions.dequeue(
            session=session, tasks=tasks, settings=settings, repository=repository, number=number
        )
    except NotQueued as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return _status_out(entry)


async def _set_paused(
    session: SessionDep,
    settings: SettingsDep,
    tasks: TasksDep,
    owner: str,
    repo: str,
    *,
    paused: bool,
) -> RepositoryOut:
    repository = await _repository(session, owner, repo)
    await actions.set_paused(session=session, tasks=tasks, repository=repository, paused=paused)
    return repository_out(repository, settings)


@router.post(
    "/repos/{owner}/{repo}/pause",
    response_model=RepositoryOut,
    summary="Pause merging (pull requests can still be queued)",
    responses=_UNKNOWN_REPOSITORY,
)
async def pause(
    owner: Owner, repo: RepoName, session: SessionDep, settings: SettingsDep, tasks: TasksDep
) -> RepositoryOut:
    return await _set_paused(session, settings, tasks, owner, repo, paused=True)


@router.post(
    "/repos/{owner}/{repo}/resume",
    response_model=RepositoryOut,
    summary="Resume merging",
    responses=_UNKNOWN_REPOSITORY,
)
async def resume(
    owner: Owner, repo: RepoName, session: SessionDep, settings: SettingsDep, tasks: TasksDep
) -> RepositoryOut:
    return await _set_paused(session, settings, tasks, owner, repo, paused=False)


@router.patch(
    "/repos/{owner}/{repo}",
    response_model=RepositoryOut,
    summary="Change a repository's queue settings",
    description="Only the fields sent change; an explicit null resets a setting to its "
    "default (the environment's QUEUE_LABEL and MERGE_METHOD, branch protection's "
    "required checks, a CI timeout of one hour, serial mode, "
    f"{DEFAULT_MAX_PARALLEL_BUILDS} parallel builds, batches of {DEFAULT_BATCH_SIZE}, a batch "
    f"wait of {DEFAULT_BATCH_WAIT_SECONDS} seconds).",
    responses=_UNKNOWN_REPOSITORY,
)
async def update_settings(
    owner: Owner,
    repo: RepoName,
    body: RepositorySettingsIn,
    session: SessionDep,
    settings: SettingsDep,
    tasks: TasksDep,
) -> RepositoryOut:
    repository = await _repository(session, owner, repo)
    try:
        await actions.update_settings(
            session=session, tasks=tasks, repository=repository, **body.changes()
        )
    except InvalidSettings as exc:
        # The same shape as FastAPI's own body validation errors, which the OpenAPI
        # document promises for 422: clients need only one way to read a rejection.
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", exc.field), "msg": str(exc)}]
        ) from None
    return repository_out(repository, settings)


@router.get(
    "/repos/{owner}/{repo}/pulls/{number}",
    response_model=PullRequestStatusOut,
    summary="A pull request's queue status",
    responses={
        404: {"model": ErrorOut, "description": "unknown repository, or pull request never seen"}
    },
)
async def pull_request_status(
    owner: Owner, repo: RepoName, number: Number, session: SessionDep
) -> PullRequestStatusOut:
    repository = await _repository(session, owner, repo)
    try:
        entry = await actions.pull_request_status(
            session=session, repository=repository, number=number
        )
    except actions.Unknown as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return _status_out(entry)
