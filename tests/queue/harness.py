"""One repository's queue, driven in process: the fake GitHub's state, the memory store,
the real engine, and a simulated clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mergequeue.models import Installation, QueueEntry, Repository
from mergequeue.queue.effective import EffectiveSettings, effective_settings
from mergequeue.queue.engine import Evaluation, evaluate
from mergequeue.queue.intake import QueueChange, apply_queue_change
from mergequeue.settings import Settings, load_settings
from mergequeue.webhooks.events import LabelChanged, QueueCommand
from tests.fakegithub.state import FakeGitHub
from tests.queue.memory import MemoryGitHub, MemoryStore, RecordedEvents

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
FULL_NAME = "acme/widgets"
LABEL = "mergequeue"


class Harness:
    def __init__(
        self,
        *,
        required: tuple[str, ...] = ("ci",),
        strict: bool = True,
        environ: dict[str, str] | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.fake = FakeGitHub()
        self.fake.add_repo(full_name=FULL_NAME)
        if required:
            self.fake.protect(full_name=FULL_NAME, branch="main", contexts=required, strict=strict)
        self.now = T0
        self.settings = settings or load_settings(environ or {})
        self.repository = Repository(
            id=1,
            owner="acme",
            name="widgets",
            default_branch="main",
            paused=False,
            installation_id=7,
        )
        # The repository's installation as the database knows it (None: not known).
        self.installation: Installation | None = None
        self.github = MemoryGitHub(self.fake, FULL_NAME)
        self.store = MemoryStore(self.repository, clock=lambda: self.now)
        self.events = RecordedEvents()
        self._comment_ids = iter(range(500, 10_000))

    @property
    def effective(self) -> EffectiveSettings:
        return effective_settings(self.repository, self.settings, self.installation)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def open_pull(self, *, base: str = "main", **kwargs: Any) -> int:
        number = int(self.fake.add_pull(full_name=FULL_NAME, base_ref=base, **kwargs)["number"])
        self.store.pulls[number] = (base, True)
        return number

    def head(self, number: int) -> str:
        return self.fake.repo(FULL_NAME).pulls[number].head_sha

    def ci(self, number: int, conclusion: str = "success", name: str = "ci") -> None:
        self.fake.add_check_run(
            full_name=FULL_NAME, head_sha=self.head(number), name=name, conclusion=conclusion
        )

    def push_base(self, branch: str = "main") -> None:
        self.fake.push(full_name=FULL_NAME, branch=branch)

    async def apply(
        self,
        change: QueueChange,
        *,
        refused: frozenset[int] = frozenset(),
        received_at: datetime | None = None,
    ) -> None:
        await apply_queue_change(
            store=self.store,
            repository=self.repository,
            settings=self.effective,
            change=change,
            received_at=received_at or self.now,
            refused=refused,
        )

    async def label(
        self, number: int, by: str = "alice", received_at: datetime | None = None
    ) -> None:
        pr = self.fake.repo(FULL_NAME).pulls[number]
        if LABEL not in pr.labels:
            pr.labels.append(LABEL)
        change = LabelChanged(self.repository.id, number, LABEL, True, by)
        await self.apply(change, received_at=received_at)

    def command(self, number: int, command: str, *, author: str, association: str) -> QueueCommand:
        return QueueCommand(
            self.repository.id,
            number,
            command,
            author,
            association=association,
            comment_id=next(self._comment_ids),
        )

    async def evaluate(self) -> Evaluation:
        return await evaluate(
            store=self.store,
            github=self.github,
            repository=self.repository,
            settings=self.effective,
            events=self.events,
            clock=lambda: self.now,
        )

    def pause(self, paused: bool = True) -> None:
        self.repository.paused = paused

    def configure(self, **settings: Any) -> None:
        for name, value in settings.items():
            setattr(self.repository, name, value)

    def entry(self, number: int) -> QueueEntry:
        [*_, last] = self.store.stays(number)
        return last

    def merged(self, number: int) -> bool:
        return self.fake.repo(FULL_NAME).pulls[number].merged

    def comments(self, number: int) -> list[str]:
        return [c.body for c in self.fake.comments if c.number == number]

    def labels(self, number: int) -> list[str]:
        return list(self.fake.repo(FULL_NAME).pulls[number].labels)


def with_required(harness: Harness, names: tuple[str, ...]) -> EffectiveSettings:
    return replace(harness.effective, required_checks=names)
