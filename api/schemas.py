"""Shapes of the REST API's answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from api.inputs import printable, storable
from mergequeue.notifications.urls import MAX_URL_LENGTH
from mergequeue.queue.commands import (
    MAX_BATCH_WAIT_SECONDS,
    MAX_CHECK_NAME_LENGTH,
    MAX_CI_TIMEOUT_SECONDS,
    MAX_FAILURE_DEPTH,
    MAX_FLAKY_RETRIES,
    MAX_FREEZE_REASON_LENGTH,
    MAX_LABEL_LENGTH,
    MAX_REQUIRED_CHECKS,
    MIN_BATCH_SIZE,
    MIN_BATCH_WAIT_SECONDS,
    MIN_CI_TIMEOUT_SECONDS,
    MIN_FAILURE_DEPTH,
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
    max_parallel_builds: int | Literal["auto"] = Field(
        description="parallel mode: how many staging builds run at once per base branch; "
        f"auto: sized from the repository's measured builds, 1 to {MAX_PARALLEL_BUILDS}"
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
    failure_depth: int = Field(
        description="parallel mode: how many builds behind a failed one may contradict it "
        "(a later pass lands everything up to it; the failure counts as flaky); 0: a failure "
        "stands at once"
    )
    flaky_retries: int = Field(
        description="parallel mode: times a failed staging build's failed jobs are re-run "
        "before the failure counts; see flaky_retries_in_effect"
    )
    flaky_retries_in_effect: bool = Field(
        description="failed jobs are re-run now: flaky_retries above 0, parallel mode, and "
        "an installation that granted actions: write (false without it, whatever "
        "flaky_retries says)"
    )
    status_comments: bool = Field(
        description="one status comment per queued pull request, edited in place"
    )
    frozen: bool = Field(
        description="a freeze holds landings now (on `freeze_branch` only, when that is set)"
    )
    freeze_reason: str | None = Field(
        description="why the queue is (or will be) frozen; null: no freeze set"
    )
    frozen_from: datetime | None = Field(description="when the freeze starts; null: at once")
    frozen_until: datetime | None = Field(description="when it ends by itself; null: when lifted")
    freeze_branch: str | None = Field(
        description="the base branch the freeze holds; null: every base branch"
    )


Priority = Literal["urgent", "normal"]


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
    priority: Priority = Field(description="urgent entries queue ahead of every normal one")


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
    priority: Priority = Field(
        default="normal",
        description="urgent: ahead of every normal entry (first in, first out among urgent)",
    )


class PriorityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: Priority = Field(
        description="urgent: ahead of every normal entry; normal: back among them by its "
        "queueing time"
    )


FreezeReason = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_FREEZE_REASON_LENGTH),
    AfterValidator(storable),
]


class FreezeIn(BaseModel):
    """A freeze: builds go on, nothing lands from `from` until `until`."""

    model_config = ConfigDict(extra="forbid")

    reason: FreezeReason = Field(description="shown on every queued pull request")
    from_: AwareDatetime | None = Field(
        default=None, alias="from", description="when it starts (with a timezone); null: now"
    )
    until: AwareDatetime | None = Field(
        default=None,
        description="when it ends by itself (with a timezone), after `from` and in the "
        "future; null: when lifted",
    )
    branch: str | None = Field(
        default=None,
        max_length=255,
        description="the base branch it holds (e.g. main); null: every base branch",
    )


class CheckFlakesOut(BaseModel):
    check: str = Field(description="a required check's name")
    failures: int = Field(description="its failures on staging builds")
    contradicted: int = Field(
        description="failures a later build holding the same changes contradicted by passing "
        "(flaky ones)"
    )
    flake_rate: float = Field(description="contradicted / failures (0 when it never failed)")
    updated_at: datetime


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
    priority: Priority | None = Field(
        default=None, description="urgent or normal while queued; null when not queued"
    )


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

ParallelBuilds = Annotated[StrictInt, Field(ge=MIN_PARALLEL_BUILDS, le=MAX_PARALLEL_BUILDS)]
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
    max_parallel_builds: ParallelBuilds | Literal["auto"] | None = Field(
        default=None,
        description="staging builds at once per base branch, or auto: sized from the "
        f"repository's measured builds; null: {DEFAULT_MAX_PARALLEL_BUILDS}",
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

    failure_depth: StrictInt | None = Field(
        default=None,
        ge=MIN_FAILURE_DEPTH,
        le=MAX_FAILURE_DEPTH,
        description="parallel mode: builds behind a failed one that may contradict it; null: 0",
    )
    flaky_retries: StrictInt | None = Field(
        default=None,
        ge=0,
        le=MAX_FLAKY_RETRIES,
        description="parallel mode: times a failed staging build's failed jobs are re-run "
        "before the failure counts (needs actions: write); null: 0",
    )
    status_comments: StrictBool | None = Field(
        default=None, description="one status comment per queued pull request; null: true"
    )

    def changes(self) -> dict[str, Any]:
        """The fields the request sent, explicit nulls included."""
        return {name: getattr(self, name) for name in self.model_fields_set}
