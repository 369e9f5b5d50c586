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
    CheckFlakesOut,
    EnqueueIn,
    ErrorOut,
    FreezeIn,
    PriorityIn,
    PullRequestStatusOut,
    RepositoryOut,
    RepositorySettingsIn,
)
from mergequeue.models import Repository
from mergequeue.queue.commands import (
    InvalidSettings,
    NotQueued,
    Priority,
    PullQueueStatus,
    QueueError,
)
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
            session=session,
            tasks=tasks,
            repository=repository,
            number=body.number,
            priority=Priority(body.priority),
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


@router.patch(
    "/repos/{owner}/{repo}/queue/{number}",
    response_model=PullRequestStatusOut,
    summary="Change a queued pull request's priority",
    description="urgent queues it ahead of every normal entry (first in, first out among "
    "urgent ones); normal puts it back among them by its queueing time. In parallel mode "
    "the builds behind its new place are made again.",
    responses={404: {"model": ErrorOut, "description": "unknown repository, or not queued"}},
)
async def set_priority(
    owner: Owner,
    repo: RepoName,
    number: Number,
    body: PriorityIn,
    session: SessionDep,
    tasks: TasksDep,
) -> PullRequestStatusOut:
    repository = await _repository(session, owner, repo)
    try:
        entry = await actions.set_priority(
            session=session,
            tasks=tasks,
            repository=repository,
            number=number,
            priority=Priority(body.priority),
        )
    except NotQueued as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return _status_out(entry)


def _invalid(exc: InvalidSettings) -> RequestValidationError:
    # The same shape as FastAPI's own body validation errors, which the OpenAPI document
    # promises for 422: clients need only one way to read a rejection.
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", exc.field), "msg": str(exc)}]
    )


@router.put(
    "/repos/{owner}/{repo}/freeze",
    response_model=RepositoryOut,
    summary="Freeze the queue: builds go on, nothing lands",
    description="From `from` (null: now) until `until` (null: until lifted with DELETE), on "
    "`branch` (null: every base branch); replaces any freeze. Queued pull requests show "
    "the reason; what passed lands when the freeze ends, by itself at `until`.",
    responses=_UNKNOWN_REPOSITORY,
)
async def freeze(
    owner: Owner,
    repo: RepoName,
    body: FreezeIn,
    session: SessionDep,
    settings: SettingsDep,
    tasks: TasksDep,
) -> RepositoryOut:
    repository = await _repository(session, owner, repo)
    try:
        await actions.freeze(
            session=session,
            tasks=tasks,
            repository=repository,
            reason=body.reason,
            start=body.from_,
            end=body.until,
            branch=body.branch,
        )
    except InvalidSettings as exc:
        raise _invalid(exc) from None
    return await repository_out(session, repository, settings)


@router.delete(
    "/repos/{owner}/{repo}/freeze",
    response_model=RepositoryOut,
    summary="Lift the freeze: what passed lands",
    responses=_UNKNOWN_REPOSITORY,
)
async def unfreeze(
    owner: Owner, repo: RepoName, session: SessionDep, settings: SettingsDep, tasks: TasksDep
) -> RepositoryOut:
    repository = await _repository(session, owner, repo)
    await actions.unfreeze(session=session, tasks=tasks, repository=repository)
    return await repository_out(session, repository, settings)


@router.get(
    "/repos/{owner}/{repo}/flakes",
    response_model=list[CheckFlakesOut],
    summary="Flake statistics per required check",
    description="Per check (by name): its failures on parallel mode's staging builds, how "
    "many of them a later build holding the same changes contradicted by passing (flaky), "
    "and that share.",
    responses=_UNKNOWN_REPOSITORY,
)
async def check_flakes(owner: Owner, repo: RepoName, session: SessionDep) -> list[CheckFlakesOut]:
    repository = await _repository(session, owner, repo)
    return [
        CheckFlakesOut(
            check=row.check,
            failures=row.failures,
            contradicted=row.contradicted,
            flake_rate=row.flake_rate,
            updated_at=row.updated_at,
        )
        for row in await actions.check_flakes(session=session, repository=repository)
    ]


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
    return await repository_out(session, repository, settings)


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
    f"wait of {DEFAULT_BATCH_WAIT_SECONDS} seconds, a failure depth of 0, no flaky retries, "
    "status comments on).",
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
            session=session, tasks=tasks, repository=repository, changes=body.changes()
        )
    except InvalidSettings as exc:
        raise _invalid(exc) from None
    return await repository_out(session, repository, settings)


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
