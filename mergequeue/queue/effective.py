"""A repository's effective queue settings: its own values, else the environment's.

The one place that resolves them; the APIs show what this returns and the worker acts on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from mergequeue.models import Repository
from mergequeue.settings import CommandPermission, MergeMethod, Settings

# How long the queue waits for a head's required checks when the repository sets nothing.
DEFAULT_CI_TIMEOUT_SECONDS: Final = 60 * 60


@dataclass(frozen=True)
class EffectiveSettings:
    queue_label: str
    merge_method: MergeMethod
    # The repository's own list; None: branch protection's and rulesets' required checks.
    required_checks: tuple[str, ...] | None
    ci_timeout: timedelta
    command_permission: CommandPermission
    paused: bool

    @property
    def ci_timeout_seconds(self) -> int:
        return int(self.ci_timeout.total_seconds())


def effective_settings(repository: Repository, settings: Settings) -> EffectiveSettings:
    return EffectiveSettings(
        queue_label=repository.queue_label or settings.QUEUE_LABEL,
        merge_method=MergeMethod(repository.merge_method or settings.MERGE_METHOD),
        required_checks=tuple(repository.required_checks) if repository.required_checks else None,
        ci_timeout=timedelta(seconds=repository.ci_timeout_seconds or DEFAULT_CI_TIMEOUT_SECONDS),
        command_permission=settings.QUEUE_COMMAND_PERMISSION,
        paused=repository.paused,
    )
