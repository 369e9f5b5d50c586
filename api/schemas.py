"""Shapes of the REST API's answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from api.inputs import printable
from mergequeue.notifications.urls import MAX_URL_LENGTH
from mergequeue.queue.commands import (
    MAX_BATCH_WAIT_SECONDS,
    MAX_CHECK_NAME_LENGTH,
    MAX_CI_TIMEOUT_SECONDS,
    MAX_LABEL_LENGTH,
    MAX_REQUIRED_CHECKS,
    MIN_BATCH_SIZE,
    MIN_BATCH_WAIT_SECONDS,
    MIN_CI_TIMEOUT_SECONDS,
    MIN_PARALLEL_BUILDS,
)
from mergequeue.queue.effective import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_BATCH_WAIT_SECONDS,
    DEFAULT_MAX_PARALLEL_BUILDS,
    MAX_BATCH_SIZE,
    MAX_PARALLEL_BUILDS,
)


class RepositoryOut(BaseModel):
    id: int
    owner: str
    name: str
    full_name: str
    default_branch: str
    paused: bool
    queue_label: str
    merge_method: str
    required_checks: list[str] | None = Field(
        description="checks that must pass before merging; null: branch protection's"
    )
    ci_timeout_seconds: int = Field(
        description="how long the queue waits for the head's checks before dequeuing it"
    )
    queue_mode: str = Field(
        description="serial: one pull request tested and merged at a time; parallel: "
        "staging builds of the exact combinations that will land, several at once"
    )
    max_parallel_builds: int = Field(
        description="parallel mode: how many staging builds run at once per base branch"
    )
    batch_size: int = Field(
        description="parallel mode: how many pull requests one staging build holds at most"
    )
    batch_wait_seconds: int = Field(
        description="parallel mode: how long a batch not yet full waits for more pull requests"
    )
    notify_webhook_url: str | None = Field(
        description="the repository's own Slack-compatible incoming-webhook URL for "
        "notifications (besides NOTIFY_WEBHOOK_URL); null: none"
    )


class QueueEntryOut(BaseModel):
    position: int
    number: int
    title: str
    author: str
    base_ref: str
    head_sha: str
    status: str
    status_detail: str | None
    enqueued_at: datetime


class QueueOut(BaseModel):
    repository: RepositoryOut
    entries: list[QueueEntryOut]


class ErrorOut(BaseModel):
    detail: str


# GitHub pull request numbers are positive; the bound keeps them in a 32-bit column.
MAX_NUMBER = 2**31 - 1


class EnqueueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: int = Field(strict=True, ge=1, le=MAX_NUMBER, description="pull request number")


class PullRequestStatusOut(BaseModel):
    number: int
    queued: bool
    position: int | None = Field(description="1-based place in its base branch's queue")
    base_ref: str | None
    status: str | None = Field(description="what the queue is doing with it, when queued")
    status_detail: str | None
    enqueued_at: datetime | None
    last_outcome: str | None = Field(
        description="how its last stay in the queue ended (merged, dequeued), when not queued"
    )
    last_reason: str | None


Label = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_LABEL_LENGTH),
    AfterValidator(printable),
]
CheckName = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_CHECK_NAME_LENGTH),
    AfterValidator(printable),
]

NotifyUrl = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_URL_LENGTH),
    AfterValidator(printable),
]


class RepositorySettingsIn(BaseModel):
    """Only the fields sent change; an explicit null resets a setting to its default."""

    model_config = ConfigDict(extra="forbid")

    queue_label: Label | None = Field(
        default=None, description="null: the QUEUE_LABEL environment variable"
    )
    merge_method: Literal["merge", "squash", "rebase"] | None = Field(
        default=None, description="null: the MERGE_METHOD environment variable"
    )
    required_checks: list[CheckName] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_REQUIRED_CHECKS,
        description="null: branch protection's required checks",
    )
    ci_timeout_seconds: StrictInt | None = Field(
        default=None,
        ge=MIN_CI_TIMEOUT_SECONDS,
        le=MAX_CI_TIMEOUT_SECONDS,
        description="seconds to wait for the head's checks; null: the default of one hour",
    )
    queue_mode: Literal["serial", "parallel"] | None = Field(
        default=None, description="null: serial"
    )
    max_parallel_builds: StrictInt | None = Field(
        default=None,
        ge=MIN_PARALLEL_BUILDS,
        le=MAX_PARALLEL_BUILDS,
        description=f"staging builds at once per base branch; null: {DEFAULT_MAX_PARALLEL_BUILDS}",
    )
    batch_size: StrictInt | None = Field(
        default=None,
        ge=MIN_BATCH_SIZE,
        le=MAX_BATCH_SIZE,
        description=f"pull requests per staging build at most; null: {DEFAULT_BATCH_SIZE}",
    )
    batch_wait_seconds: StrictInt | None = Field(
        default=None,
        ge=MIN_BATCH_WAIT_SECONDS,
        le=MAX_BATCH_WAIT_SECONDS,
        description="seconds a batch not yet full waits for more pull requests; "
        f"null: {DEFAULT_BATCH_WAIT_SECONDS}",
    )

    notify_webhook_url: NotifyUrl | None = Field(
        default=None,
        description="an http(s) Slack-compatible incoming-webhook URL that hears of this "
        "repository's queue; null: none of its own",
    )

    def changes(self) -> dict[str, Any]:
        """The fields the request sent, explicit nulls included."""
        return {name: getattr(self, name) for name in self.model_fields_set}
