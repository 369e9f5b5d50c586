"""A repository's effective queue settings: its own values, else the environment's.

The one place that resolves them; the APIs show what this returns and the worker acts on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from mergequeue.models import Installation, NotificationDestination, Repository
from mergequeue.settings import CommandPermission, MergeMethod, Settings

# How long the queue waits for a head's required checks when the repository sets nothing.
DEFAULT_CI_TIMEOUT_SECONDS: Final = 60 * 60
# Parallel mode's defaults.
DEFAULT_MAX_PARALLEL_BUILDS: Final = 4
DEFAULT_BATCH_SIZE: Final = 1
DEFAULT_BATCH_WAIT_SECONDS: Final = 60
MAX_BATCH_SIZE: Final = 20
MAX_PARALLEL_BUILDS: Final = 32
# Stored for `max_parallel_builds: auto`.
AUTO_BUILDS: Final = 0


class QueueMode(StrEnum):
    SERIAL = "serial"
    PARALLEL = "parallel"


@dataclass(frozen=True)
class EffectiveSettings:
    queue_label: str
    merge_method: MergeMethod
    # The repository's own list; None: branch protection's and rulesets' required checks.
    required_checks: tuple[str, ...] | None
    ci_timeout: timedelta
    command_permission: CommandPermission
    paused: bool
    mode: QueueMode = QueueMode.SERIAL
    max_parallel_builds: int = DEFAULT_MAX_PARALLEL_BUILDS
    # `auto`: the number of builds at once is sized from the repository's measured builds
    # (mergequeue/queue/sizing.py); max_parallel_builds is then the start and the cap.
    auto_builds: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_wait: timedelta = timedelta(seconds=DEFAULT_BATCH_WAIT_SECONDS)
    # One status comment per queued pull request, edited in place.
    status_comments: bool = True
    priority_label: str = "mergequeue:urgent"
    failure_depth: int = 0
    flaky_retries: int = 0
    # The freeze: its reason, and when it starts and ends (None: now / until lifted).
    frozen_reason: str | None = None
    frozen_from: datetime | None = None
    frozen_until: datetime | None = None
    # The base branch it holds; None: every one.
    frozen_branch: str | None = None

    def frozen(self, now: datetime, base_ref: str | None = None) -> str | None:
        """Why nothing lands on `base_ref` now (None: on some base branch); None when
        nothing stops it."""
        return frozen_at(
            self.frozen_reason,
            self.frozen_from,
            self.frozen_until,
            self.frozen_branch,
            now,
            base_ref,
        )

    def freeze_changes_at(self, now: datetime) -> datetime | None:
        """When the freeze starts or ends next (a decision falls due then)."""
        if self.frozen_reason is None:
            return None
        upcoming = [t for t in (self.frozen_from, self.frozen_until) if t is not None and t > now]
        return min(upcoming) if upcoming else None

    # Parallel mode cancels the GitHub Actions runs of the builds it drops: only when the
    # installation granted `actions: write`, so no call is spent on a certain 403.
    cancel_workflow_runs: bool = False
    # The repository's own notifications URL (None: none), and where its notifications go:
    # NOTIFY_WEBHOOK_URL when set, its own URL when set; both when both are.
    notify_webhook_url: str | None = None
    notify_destinations: tuple[NotificationDestination, ...] = ()
    # The repository's page on GitHub (GITHUB_WEB_URL/owner/name), for links.
    web_url: str = ""

    @property
    def ci_timeout_seconds(self) -> int:
        return int(self.ci_timeout.total_seconds())

    @property
    def flaky_retries_in_effect(self) -> bool:
        """Whether failed staging builds have their failed jobs re-run now. Re-running, like
        cancelling, needs `actions: write`, so without it parallel mode re-runs nothing
        (mergequeue/queue/parallel.py) whatever `flaky_retries` says; only parallel mode
        has staging builds."""
        parallel = self.mode == QueueMode.PARALLEL
        return parallel and self.flaky_retries > 0 and self.cancel_workflow_runs


def frozen_at(
    reason: str | None,
    start: datetime | None,
    end: datetime | None,
    branch: str | None,
    now: datetime,
    base_ref: str | None = None,
) -> str | None:
    """The freeze's reason when it holds at `now` (from `start`, None: already, until `end`,
    None: until lifted) on `base_ref` (None: on any base branch) given the branch it holds
    (None: every one); None when nothing stops landing there then."""
    if reason is None:
        return None
    if start is not None and now < start:
        return None
    if end is not None and now >= end:
        return None
    if branch is not None and base_ref is not None and base_ref != branch:
        return None
    return reason


def repository_frozen(repository: Repository, now: datetime) -> str | None:
    """`EffectiveSettings.frozen` for readers that need no other setting (the dashboard)."""
    return frozen_at(
        repository.frozen_reason,
        repository.frozen_from,
        repository.frozen_until,
        repository.frozen_branch,
        now,
    )


def effective_settings(
    repository: Repository, settings: Settings, installation: Installation | None = None
) -> EffectiveSettings:
    """`installation` is the repository's (what it granted); None: not known, or a single
    token (`GITHUB_TOKEN`), whose permissions the service cannot read."""
    return EffectiveSettings(
        queue_label=repository.queue_label or settings.QUEUE_LABEL,
        merge_method=MergeMethod(repository.merge_method or settings.MERGE_METHOD),
        required_checks=tuple(repository.required_checks) if repository.required_checks else None,
        ci_timeout=timedelta(seconds=repository.ci_timeout_seconds or DEFAULT_CI_TIMEOUT_SECONDS),
        command_permission=settings.QUEUE_COMMAND_PERMISSION,
        paused=repository.paused,
        mode=QueueMode(repository.queue_mode or QueueMode.SERIAL),
        max_parallel_builds=repository.max_parallel_builds or DEFAULT_MAX_PARALLEL_BUILDS,
        auto_builds=repository.max_parallel_builds == AUTO_BUILDS,
        batch_size=repository.batch_size or DEFAULT_BATCH_SIZE,
        batch_wait=timedelta(
            seconds=DEFAULT_BATCH_WAIT_SECONDS
            if repository.batch_wait_seconds is None
            else repository.batch_wait_seconds
        ),
        status_comments=repository.status_comments is not False,
        priority_label=settings.QUEUE_PRIORITY_LABEL,
        failure_depth=repository.failure_depth or 0,
        flaky_retries=repository.flaky_retries or 0,
        frozen_reason=repository.frozen_reason,
        frozen_from=repository.frozen_from,
        frozen_until=repository.frozen_until,
        frozen_branch=repository.frozen_branch,
        # A suspended installation's queue does not run: nothing of it is in effect.
        cancel_workflow_runs=(
            installation is not None and installation.actions_write and not installation.suspended
        ),
        notify_webhook_url=repository.notify_webhook_url,
        notify_destinations=notify_destinations(repository, settings),
        web_url=f"{settings.github_web_url}/{repository.owner}/{repository.name}",
    )


def notify_destinations(
    repository: Repository | None, settings: Settings
) -> tuple[NotificationDestination, ...]:
    """Where a notification about `repository` (None: about no one repository) goes."""
    found: list[NotificationDestination] = []
    if settings.notify_webhook_url is not None:
        found.append(NotificationDestination.GLOBAL)
    if repository is not None and repository.notify_webhook_url:
        found.append(NotificationDestination.REPOSITORY)
    return tuple(found)


def destination_url(
    destination: NotificationDestination, repository: Repository | None, settings: Settings
) -> str | None:
    """The URL a destination names now (None: no longer configured)."""
    if destination == NotificationDestination.GLOBAL:
        return settings.notify_webhook_url
    return repository.notify_webhook_url if repository is not None else None
