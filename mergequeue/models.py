"""Database models: installations, repositories, pull requests, queue entries, deliveries.

Ids that GitHub assigns (installation, repository) are the primary keys, so a webhook
can refer to a row without a lookup. Times are timezone-aware UTC.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on every database (SQLite stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _str_enum(enum_class: type[enum.StrEnum]) -> Enum:
    # Stored as plain strings (no native enum type), so adding a state needs no ALTER TYPE.
    return Enum(
        enum_class,
        native_enum=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012


class Installation(Base):
    __tablename__ = "installations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    account_login: Mapped[str] = mapped_column(String(255))
    suspended: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The installation granted `actions: write`: the queue may cancel the GitHub Actions
    # runs of dropped staging builds. From the `installation` webhooks, the installations
    # listing and each installation token's answer; false until one of them says so.
    actions_write: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    repositories: Mapped[list[Repository]] = relationship(back_populates="installation")


class Repository(Base):
    __tablename__ = "repositories"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    installation_id: Mapped[int | None] = mapped_column(
        ForeignKey("installations.id", ondelete="SET NULL"), index=True
    )
    owner: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    default_branch: Mapped[str] = mapped_column(String(255), default="main")
    # Per-repository queue settings; NULL means "the environment's default".
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    queue_label: Mapped[str | None] = mapped_column(String(255))
    merge_method: Mapped[str | None] = mapped_column(String(16))
    required_checks: Mapped[list[str] | None] = mapped_column(JSON)
    ci_timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    # Parallel mode: "serial" (one pull request tested and merged at a time) or "parallel"
    # (staging builds of the exact combinations that will land, several at once).
    queue_mode: Mapped[str | None] = mapped_column(String(16))
    max_parallel_builds: Mapped[int | None] = mapped_column(Integer)
    batch_size: Mapped[int | None] = mapped_column(Integer)
    batch_wait_seconds: Mapped[int | None] = mapped_column(Integer)
    # One status comment per queued pull request, edited in place (None: the default, on).
    status_comments: Mapped[bool | None] = mapped_column(Boolean)
    # Parallel mode's optimistic validation: builds behind a failed one that may contradict it.
    failure_depth: Mapped[int | None] = mapped_column(Integer)
    # Times a failed staging build's failed jobs are re-run before the failure counts.
    flaky_retries: Mapped[int | None] = mapped_column(Integer)
    # A freeze: builds go on, nothing lands, from `frozen_from` (None: now) until
    # `frozen_until` (None: until lifted), for the reason shown wherever the queue is.
    frozen_reason: Mapped[str | None] = mapped_column(Text)
    frozen_from: Mapped[datetime | None] = mapped_column()
    frozen_until: Mapped[datetime | None] = mapped_column()
    # The base branch the freeze holds (None: every base branch of the repository).
    frozen_branch: Mapped[str | None] = mapped_column(String(255))
    # Since when merging is paused (None while it is not): a pause that lasts is announced.
    paused_at: Mapped[datetime | None] = mapped_column()
    # The repository's own incoming-webhook URL for notifications (Slack-compatible), next
    # to the global NOTIFY_WEBHOOK_URL; None: none of its own.
    notify_webhook_url: Mapped[str | None] = mapped_column(String(2048))
    # Reconciliation's pacing: when the queue was last evaluated, and the next moment a
    # decision falls due without any webhook (a CI timeout).
    evaluated_at: Mapped[datetime | None] = mapped_column()
    deadline_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.now()
    )

    installation: Mapped[Installation | None] = relationship(back_populates="repositories")
    pull_requests: Mapped[list[PullRequest]] = relationship(back_populates="repository")

    __table_args__ = (UniqueConstraint("owner", "name", name="uq_repositories_owner_name"),)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class PullRequestState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    MERGED = "merged"


class PullRequest(Base):
    __tablename__ = "pull_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(255), default="")
    head_sha: Mapped[str] = mapped_column(String(64), default="")
    head_ref: Mapped[str] = mapped_column(String(255), default="")
    base_ref: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[PullRequestState] = mapped_column(
        Enum(
            PullRequestState,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=PullRequestState.OPEN,
    )
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    # GitHub's own updated_at of the snapshot we hold: an older delivery processed late
    # must not overwrite a newer one.
    github_updated_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    repository: Mapped[Repository] = relationship(back_populates="pull_requests")

    __table_args__ = (
        UniqueConstraint("repository_id", "number", name="uq_pull_requests_repository_number"),
    )


class QueueEntryState(enum.StrEnum):
    QUEUED = "queued"
    MERGED = "merged"
    DEQUEUED = "dequeued"


class QueueEntry(Base):
    """One stay of a pull request in its repository's queue (kept after it ends, as history)."""

    __tablename__ = "queue_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    pull_request_id: Mapped[int] = mapped_column(
        ForeignKey("pull_requests.id", ondelete="CASCADE"), index=True
    )
    base_ref: Mapped[str] = mapped_column(String(255))
    state: Mapped[QueueEntryState] = mapped_column(
        Enum(
            QueueEntryState,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=QueueEntryState.QUEUED,
    )
    # What the queue is doing with the head entry, for the API (e.g. "waiting_for_checks").
    status: Mapped[str] = mapped_column(String(32), default="waiting")
    status_detail: Mapped[str | None] = mapped_column(Text)
    # The head sha the entry waits on for checks, since when (the CI timeout counts from
    # there), and the head an update-branch was asked for (so it is asked once).
    waiting_sha: Mapped[str | None] = mapped_column(String(64))
    waiting_since: Mapped[datetime | None] = mapped_column()
    updated_from_sha: Mapped[str | None] = mapped_column(String(64))
    # Waiting on waiting_sha before the current stretch (pauses stop the CI timeout's clock).
    waited_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # GitHub refused to update or merge this head: seen again, the entry leaves the queue.
    refusal_action: Mapped[str | None] = mapped_column(String(16))
    refusal_sha: Mapped[str | None] = mapped_column(String(64))
    refusal_message: Mapped[str | None] = mapped_column(Text)
    enqueued_by: Mapped[str | None] = mapped_column(String(255))
    enqueued_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    dequeue_reason: Mapped[str | None] = mapped_column(String(64))
    # Parallel mode: entries of one half of a failed batch share a group, built together.
    batch_group: Mapped[str | None] = mapped_column(String(32))
    # Urgent entries (1) go ahead of normal ones (0); each kind first in, first out.
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What the queue last showed on the pull request (a fingerprint: nothing is rewritten
    # while it holds), and its `mergequeue` check run on which head.
    published: Mapped[str | None] = mapped_column(String(64))
    check_run_id: Mapped[int | None] = mapped_column(BigInteger)
    check_sha: Mapped[str | None] = mapped_column(String(64))
    # The status comment edited in place (copied to the next stay of the pull request).
    status_comment_id: Mapped[int | None] = mapped_column(BigInteger)

    pull_request: Mapped[PullRequest] = relationship()

    __table_args__ = (
        # At most one live stay per pull request; history rows are not constrained.
        Index(
            "uq_queue_entries_live_pull_request",
            "pull_request_id",
            unique=True,
            sqlite_where=text("state = 'queued'"),
            postgresql_where=text("state = 'queued'"),
        ),
        Index("ix_queue_entries_order", "repository_id", "base_ref", "state", "enqueued_at", "id"),
    )


class DeliveryState(enum.StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    FAILED = "failed"


class WebhookDelivery(Base):
    """The durable inbox: a delivery is stored here before GitHub gets its answer."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # X-GitHub-Delivery
    event: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    repository_full_name: Mapped[str | None] = mapped_column(String(512))
    # The body exactly as received, so it can be re-read (and re-verified) later.
    payload: Mapped[str] = mapped_column(Text)
    state: Mapped[DeliveryState] = mapped_column(
        Enum(
            DeliveryState,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=DeliveryState.RECEIVED,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the last processing attempt started: one stalled long after that (its worker
    # died) is enqueued again by the sweeper.
    attempted_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_webhook_deliveries_state_received", "state", "received_at"),)


class HandledCommand(Base):
    """A `/mergequeue` comment the queue has acted on (or refused): claimed by the webhook
    or by recovery, whichever comes first, so the command is applied once."""

    __tablename__ = "handled_commands"

    comment_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    handled_at: Mapped[datetime] = mapped_column(default=utcnow)


class NoticeKind(enum.StrEnum):
    COMMENT = "comment"
    REMOVE_LABEL = "remove_label"
    REACTION = "reaction"  # on a command's comment: text is the reaction, target_id the comment


class Notice(Base):
    """Something to tell a pull request on GitHub (the outbox).

    Written in the transaction that decides it (a dequeue, a refused command), sent after,
    and marked sent one by one: a retry after a rate limit or a crash never repeats what
    was already told. `key` makes writing the same notice twice a no-op.
    """

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[NoticeKind] = mapped_column(_str_enum(NoticeKind))
    # The comment's body, the label to remove, or the reaction.
    text: Mapped[str] = mapped_column(Text)
    # The comment a reaction goes on.
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    # Set when GitHub refused it for good (e.g. the pull request is gone): not retried.
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_notices_pending", "repository_id", "sent_at"),)


class BuildState(enum.StrEnum):
    MAKING = "making"  # recorded before its branch is made: a crash leaves a trace
    TESTING = "testing"  # its commit exists; CI runs on it
    LANDED = "landed"
    DROPPED = "dropped"  # obsolete or failed: its branch is deleted, its results ignored


class Build(Base):
    """A staging build of parallel mode: a commit on a branch the App owns that holds the
    base branch, every build ahead of it and its own pull requests, for CI to test."""

    __tablename__ = "builds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    base_ref: Mapped[str] = mapped_column(String(255))
    branch: Mapped[str] = mapped_column(String(255))
    state: Mapped[BuildState] = mapped_column(_str_enum(BuildState))
    # [[number, head sha], ...] in the order they were merged in.
    members: Mapped[list[list[int | str]]] = mapped_column(JSON)
    parent_sha: Mapped[str] = mapped_column(String(64))
    sha: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    # passed / failed / timed_out / obsolete / conflict, and why, once it is over.
    outcome: Mapped[str | None] = mapped_column(String(16))
    outcome_detail: Mapped[str | None] = mapped_column(Text)
    # Times its failed jobs were re-run (flaky_retries).
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (Index("ix_builds_active", "repository_id", "base_ref", "state"),)


class CheckFlake(Base):
    """A required check's failures on staging builds, and how many of them a later build
    holding the same changes contradicted by passing (flaky failures)."""

    __tablename__ = "check_flakes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    check_name: Mapped[str] = mapped_column(String(255))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    contradicted: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("repository_id", "check_name", name="uq_check_flakes_repository_check"),
    )


class NotificationDestination(enum.StrEnum):
    GLOBAL = "global"  # NOTIFY_WEBHOOK_URL
    REPOSITORY = "repository"  # the repository's notify_webhook_url


class Notification(Base):
    """A message for a chat's incoming webhook (the notifications outbox).

    Written in the transaction that decides it (a dequeue, a stuck or paused queue, a rate
    limit nearly spent), one row per destination, and sent by the worker's
    `send_notifications` job, never by the queue's evaluation: a slow or failing endpoint
    delays nothing else. `key` names the event, so deciding it again stores nothing new.
    """

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The event: dequeue:<entry id>, stuck:<entry id>:<sha>, paused:<repository id>:<epoch>,
    # ratelimit:<installation>:<reset epoch>.
    key: Mapped[str] = mapped_column(String(255))
    destination: Mapped[NotificationDestination] = mapped_column(_str_enum(NotificationDestination))
    # The repository it is about (its own URL is read when sending); None: installation-wide.
    repository_id: Mapped[int | None] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Failed attempts so far, and when the next may start (while one is under way: the end
    # of its lease, so a second worker does not send it too).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    # Set when it will not be sent: too many failed attempts, or its destination was removed.
    gave_up_at: Mapped[datetime | None] = mapped_column()
    # The last failure (status or error type; never the URL).
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("key", "destination", name="uq_notifications_key_destination"),
        Index("ix_notifications_due", "sent_at", "gave_up_at", "due_at"),
    )
