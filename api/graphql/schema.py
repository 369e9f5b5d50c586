"""The executable schema: `schema.graphql` bound to resolvers over the same domain functions
as the REST API (`api.actions`, `mergequeue.reads`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib.resources import files
from typing import Any

from ariadne import MutationType, ObjectType, QueryType, ScalarType, make_executable_schema
from graphql import (
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    IntValueNode,
    StringValueNode,
    ValueNode,
)
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from api import actions
from api.schemas import MAX_NUMBER
from mergequeue import reads
from mergequeue.models import Repository, utcnow
from mergequeue.queue.commands import (
    AlreadyQueued,
    CheckFlakes,
    InvalidSettings,
    NotOpen,
    NotQueued,
    Priority,
    PullQueueStatus,
    QueueError,
    check_priority,
)
from mergequeue.queue.effective import effective_settings
from mergequeue.settings import Settings
from mergequeue.tasks import TaskQueue

log = logging.getLogger("mergequeue.graphql")

TYPE_DEFS = files("api.graphql").joinpath("schema.graphql").read_text(encoding="utf-8")


@dataclass
class Context:
    """One request's context. Sibling fields resolve concurrently, so the one session is
    handed out under a lock (an AsyncSession must not run two statements at once)."""

    session: AsyncSession
    tasks: TaskQueue
    settings: Settings
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        async with self.lock:
            yield self.session


Info = GraphQLResolveInfo["Context"]


def _context(info: Info) -> Context:
    return info.context


_ERROR_CODES: list[tuple[type[Exception], str]] = [
    (actions.Unknown, "NOT_FOUND"),
    (AlreadyQueued, "ALREADY_QUEUED"),
    (NotOpen, "NOT_OPEN"),
    (NotQueued, "NOT_QUEUED"),
    (QueueError, "QUEUE_ERROR"),
    (InvalidSettings, "BAD_INPUT"),
]


@contextmanager
def _domain_errors() -> Iterator[None]:
    try:
        yield
    except (actions.Unknown, QueueError, InvalidSettings) as exc:
        code = next(code for kind, code in _ERROR_CODES if isinstance(exc, kind))
        raise GraphQLError(str(exc), extensions={"code": code}) from None


def _check_number(number: int) -> None:
    # Int is 32-bit in GraphQL, so only the lower bound is left to check.
    if not 1 <= number <= MAX_NUMBER:
        raise GraphQLError(
            f"number must be a positive pull request number, got {number}",
            extensions={"code": "BAD_INPUT"},
        )


def _status(status: PullQueueStatus, repository: Repository) -> dict[str, Any]:
    return {**asdict(status), "repository": repository}


# -- scalars ---------------------------------------------------------------------------

datetime_scalar = ScalarType("DateTime")
_DATETIME = TypeAdapter(datetime)


@datetime_scalar.serializer
def serialize_datetime(value: datetime) -> Any:
    # Exactly as pydantic writes it in the REST API, so both APIs agree to the character.
    return _DATETIME.dump_python(value, mode="json")


# A GraphQLError, not a ValueError: graphql-core reports it as the client's mistake (400),
# where any other exception would be formatted as an internal error.
_NOT_A_DATETIME = "expected an ISO 8601 date and time"


def _parse_datetime(value: Any) -> datetime:
    # ISO 8601, as the REST API reads it; a missing timezone is the mutation's BAD_INPUT.
    if not isinstance(value, str):
        raise GraphQLError(_NOT_A_DATETIME)
    try:
        parsed: datetime = _DATETIME.validate_python(value)
    except ValidationError:
        raise GraphQLError(_NOT_A_DATETIME) from None
    return parsed


datetime_scalar.set_value_parser(_parse_datetime)


@datetime_scalar.literal_parser
def parse_datetime_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> datetime:
    if not isinstance(node, StringValueNode):
        raise GraphQLError(_NOT_A_DATETIME)
    return _parse_datetime(node.value)


parallel_builds_scalar = ScalarType("ParallelBuilds")
_NOT_PARALLEL_BUILDS = 'expected a whole number of builds or "auto"'


def _parse_parallel_builds(value: Any) -> int | str:
    # Only the type, as Int did before "auto" (an integral float included); the range is
    # the setting's own check, a BAD_INPUT naming it.
    if value == "auto":
        return "auto"
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise GraphQLError(_NOT_PARALLEL_BUILDS)


parallel_builds_scalar.set_value_parser(_parse_parallel_builds)


@parallel_builds_scalar.literal_parser
def parse_parallel_builds_literal(
    node: ValueNode, variables: dict[str, Any] | None = None
) -> int | str:
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, StringValueNode):
        return _parse_parallel_builds(node.value)
    raise GraphQLError(_NOT_PARALLEL_BUILDS)


# -- queries ---------------------------------------------------------------------------

query = QueryType()


@query.field("repositories")
async def resolve_repositories(_: None, info: Info) -> list[Repository]:
    async with _context(info).db() as session:
        return list(await reads.list_repositories(session=session))


@query.field("repository")
async def resolve_repository(_: None, info: Info, owner: str, name: str) -> Repository | None:
    async with _context(info).db() as session:
        return await reads.find_repository(session=session, owner=owner, name=name)


@query.field("pullRequestStatus")
async def resolve_pull_request_status(
    _: None, info: Info, owner: str, name: str, number: int
) -> dict[str, Any] | None:
    _check_number(number)
    async with _context(info).db() as session:
        try:
            repository = await actions.repository(session=session, owner=owner, name=name)
            status = await actions.pull_request_status(
                session=session, repository=repository, number=number
            )
        except actions.Unknown:
            return None
    return _status(status, repository)


# -- mutations -------------------------------------------------------------------------

mutation = MutationType()


@mutation.field("enqueue")
async def resolve_enqueue(
    _: None, info: Info, owner: str, name: str, number: int, priority: str | None = None
) -> dict[str, Any]:
    _check_number(number)
    context = _context(info)
    async with context.db() as session:
        with _domain_errors():
            level = Priority.NORMAL if priority is None else check_priority(priority)
            repository = await actions.repository(session=session, owner=owner, name=name)
            status = await actions.enqueue(
                session=session,
                tasks=context.tasks,
                repository=repository,
                number=number,
                priority=level,
            )
    return _status(status, repository)


@mutation.field("setPriority")
async def resolve_set_priority(
    _: None, info: Info, owner: str, name: str, number: int, priority: str
) -> dict[str, Any]:
    _check_number(number)
    context = _context(info)
    async with context.db() as session:
        with _domain_errors():
            level = check_priority(priority)
            repository = await actions.repository(session=session, owner=owner, name=name)
            status = await actions.set_priority(
                session=session,
                tasks=context.tasks,
                repository=repository,
                number=number,
                priority=level,
            )
    return _status(status, repository)


@mutation.field("dequeue")
async def resolve_dequeue(
    _: None, info: Info, owner: str, name: str, number: int
) -> dict[str, Any]:
    _check_number(number)
    context = _context(info)
    async with context.db() as session:
        with _domain_errors():
            repository = await actions.repository(session=session, owner=owner, name=name)
            status = await actions.dequeue(
                session=session,
                tasks=context.tasks,
                settings=context.settings,
                repository=repository,
                number=number,
            )
    return _status(status, repository)


async def _set_paused(info: Info, owner: str, name: str, paused: bool) -> Repository:
    context = _context(info)
    async with context.db() as session:
        with _domain_errors():
            repository = await actions.repository(session=session, owner=owner, name=name)
            return await actions.set_paused(
                session=session, tasks=context.tasks, repository=repository, paused=paused
            )


@mutation.field("pause")
async def resolve_pause(_: None, info: Info, owner: str, name: str) -> Repository:
    return await _set_paused(info, owner, name, True)


@mutation.field("resume")
async def resolve_resume(_: None, info: Info, owner: str, name: str) -> Repository:
    return await _set_paused(info, owner, name, False)


@mutation.field("freezeQueue")
async def resolve_freeze_queue(
    _: None,
    info: Info,
    owner: str,
    name: str,
    reason: str,
    until: datetime | None = None,
    branch: str | None = None,
    **window: datetime | None,
) -> Repository:
    # `from` is a Python keyword: it comes as a keyword argument.
    context = _context(info)
    async with context.db() as session:
        with _domain_errors():
            repository = await actions.repository(session=session, owner=owner, name=name)
            return await actions.freeze(
                session=session,
                tasks=context.tasks,
                repository=repository,
                reason=reason,
                start=window.get("from"),
                end=until,
                branch=branch,
            )


@mutation.field("unfreezeQueue")
async def resolve_unfreeze_queue(_: None, info: Info, owner: str, name: str) -> Repository:
    context = _context(info)
    async with context.db() as session:
        with _domain_errors():
            repository = await actions.repository(session=session, owner=owner, name=name)
            return await actions.unfreeze(
                session=session, tasks=context.tasks, repository=repository
            )


@mutation.field("updateRepositorySettings")
async def resolve_update_repository_settings(
    _: None, info: Info, owner: str, name: str, settings: dict[str, Any]
) -> Repository:
    # The input's keys are snake_case already (convert_names_case); an omitted field is
    # absent, an explicit null is None: exactly what update_settings leaves and resets.
    context = _context(info)
    async with context.db() as session:
        with _domain_errors():
            repository = await actions.repository(session=session, owner=owner, name=name)
            return await actions.update_settings(
                session=session, tasks=context.tasks, repository=repository, changes=settings
            )


# -- objects ---------------------------------------------------------------------------

repository_type = ObjectType("Repository")


@repository_type.field("id")
def resolve_repository_id(repository: Repository, _: Info) -> str:
    return str(repository.id)


@repository_type.field("queueLabel")
def resolve_queue_label(repository: Repository, info: Info) -> str:
    return effective_settings(repository, _context(info).settings).queue_label


@repository_type.field("mergeMethod")
def resolve_merge_method(repository: Repository, info: Info) -> str:
    return effective_settings(repository, _context(info).settings).merge_method.value


@repository_type.field("requiredChecks")
def resolve_required_checks(repository: Repository, info: Info) -> list[str] | None:
    checks = effective_settings(repository, _context(info).settings).required_checks
    return list(checks) if checks else None


@repository_type.field("ciTimeoutSeconds")
def resolve_ci_timeout_seconds(repository: Repository, info: Info) -> int:
    return effective_settings(repository, _context(info).settings).ci_timeout_seconds


@repository_type.field("queueMode")
def resolve_queue_mode(repository: Repository, info: Info) -> str:
    return effective_settings(repository, _context(info).settings).mode.value


@repository_type.field("maxParallelBuilds")
def resolve_max_parallel_builds(repository: Repository, info: Info) -> int:
    return effective_settings(repository, _context(info).settings).max_parallel_builds


@repository_type.field("maxParallelBuildsAuto")
def resolve_max_parallel_builds_auto(repository: Repository, info: Info) -> bool:
    return effective_settings(repository, _context(info).settings).auto_builds


@repository_type.field("batchSize")
def resolve_batch_size(repository: Repository, info: Info) -> int:
    return effective_settings(repository, _context(info).settings).batch_size


@repository_type.field("batchWaitSeconds")
def resolve_batch_wait_seconds(repository: Repository, info: Info) -> int:
    return int(effective_settings(repository, _context(info).settings).batch_wait.total_seconds())


@repository_type.field("notifyWebhookUrl")
def resolve_notify_webhook_url(repository: Repository, info: Info) -> str | None:
    return effective_settings(repository, _context(info).settings).notify_webhook_url


@repository_type.field("failureDepth")
def resolve_failure_depth(repository: Repository, info: Info) -> int:
    return effective_settings(repository, _context(info).settings).failure_depth


@repository_type.field("flakyRetries")
def resolve_flaky_retries(repository: Repository, info: Info) -> int:
    return effective_settings(repository, _context(info).settings).flaky_retries


@repository_type.field("flakyRetriesInEffect")
async def resolve_flaky_retries_in_effect(repository: Repository, info: Info) -> bool:
    context = _context(info)
    async with context.db() as session:
        installation = await reads.repository_installation(session=session, repository=repository)
    return effective_settings(repository, context.settings, installation).flaky_retries_in_effect


@repository_type.field("statusComments")
def resolve_status_comments(repository: Repository, info: Info) -> bool:
    return effective_settings(repository, _context(info).settings).status_comments


@repository_type.field("frozen")
def resolve_frozen(repository: Repository, info: Info) -> bool:
    return effective_settings(repository, _context(info).settings).frozen(utcnow()) is not None


@repository_type.field("freezeReason")
def resolve_freeze_reason(repository: Repository, info: Info) -> str | None:
    return effective_settings(repository, _context(info).settings).frozen_reason


@repository_type.field("frozenFrom")
def resolve_frozen_from(repository: Repository, info: Info) -> datetime | None:
    return effective_settings(repository, _context(info).settings).frozen_from


@repository_type.field("frozenUntil")
def resolve_frozen_until(repository: Repository, info: Info) -> datetime | None:
    return effective_settings(repository, _context(info).settings).frozen_until


@repository_type.field("freezeBranch")
def resolve_freeze_branch(repository: Repository, info: Info) -> str | None:
    return repository.frozen_branch


@repository_type.field("flakes")
async def resolve_flakes(repository: Repository, info: Info) -> list[dict[str, Any]]:
    async with _context(info).db() as session:
        found: list[CheckFlakes] = await actions.check_flakes(
            session=session, repository=repository
        )
    return [{**asdict(row), "flake_rate": row.flake_rate} for row in found]


@repository_type.field("queue")
async def resolve_queue(repository: Repository, info: Info) -> list[dict[str, Any]]:
    async with _context(info).db() as session:
        entries = await reads.read_queue(session=session, repository=repository)
    return [{**asdict(entry), "repository": repository} for entry in entries]


# -- errors ----------------------------------------------------------------------------


def format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    """Domain and validation errors keep their message; anything unexpected is logged
    and answered without internals (no SQL or stack in a client's error)."""
    original = error.original_error
    if original is not None and not isinstance(original, GraphQLError):
        if isinstance(original, OperationalError | InterfaceError | ConnectionError):
            message, code = "database unavailable", "UNAVAILABLE"
            log.warning("GraphQL field failed: database unavailable")
        else:
            message, code = "internal error", "INTERNAL"
            log.error("GraphQL field failed", exc_info=original)
        error = GraphQLError(message, error.nodes, path=error.path, extensions={"code": code})
    formatted: dict[str, Any] = error.formatted  # type: ignore[assignment]
    return formatted


def build_schema() -> GraphQLSchema:
    schema: GraphQLSchema = make_executable_schema(
        TYPE_DEFS,
        query,
        mutation,
        repository_type,
        datetime_scalar,
        parallel_builds_scalar,
        convert_names_case=True,
    )
    return schema
