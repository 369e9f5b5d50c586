"""Driving a merge-queue scenario: the fake GitHub's state, and the webhooks GitHub would send.

Webhook payloads are built from the fake's own API answers (the GitHub shapes), so what
the service receives is consistent with what it then reads back from the API.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import webhooks
from tests.support.fake_github import FakeGitHubServer

READ_TOKEN = "scenario-read-token"
_ids = itertools.count(9_000_000)


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"not met in {timeout}s: {what or predicate}")


@dataclass
class Scenario:
    fake: FakeGitHubServer
    web_url: str
    full_name: str = "acme/widgets"
    installation_id: int = 4711
    label: str = "mergequeue"
    sent: list[str] = field(default_factory=list)
    _repo_json: dict[str, Any] | None = None

    def setup(self, *, required: tuple[str, ...] = ("ci",), strict: bool = True) -> None:
        self.fake.control("add_repo", full_name=self.full_name, default_branch="main")
        self.fake.control(
            "add_installation",
            installation_id=self.installation_id,
            account=self.full_name.split("/")[0],
            repositories=[self.full_name],
        )
        self.fake.control("add_token", token=READ_TOKEN)
        if required:
            self.fake.control(
                "protect",
                full_name=self.full_name,
                branch="main",
                contexts=list(required),
                strict=strict,
            )

    # --- reading the fake through its API (GitHub's shapes) ---------------------------

    def api(self, path: str) -> Any:
        response = httpx.get(
            self.fake.url + path, headers={"Authorization": f"Bearer {READ_TOKEN}"}, timeout=10
        )
        response.raise_for_status()
        return response.json()

    def pull(self, number: int) -> dict[str, Any]:
        result: dict[str, Any] = self.api(f"/repos/{self.full_name}/pulls/{number}")
        return result

    def head(self, number: int) -> str:
        return str(self.pull(number)["head"]["sha"])

    def merged(self, number: int) -> bool:
        return bool(self.pull(number)["merged"])

    def comments(self, number: int) -> list[str]:
        """What the queue said on the pull request (its status comment aside)."""
        return [
            c["body"]
            for c in self.fake.control("comments_json")
            if c.get("issue_number", c.get("number")) == number
            and str(c.get("author", "")).endswith("[bot]")
            and not c["body"].startswith("**mergequeue**")
        ]

    def status_comments(self, number: int) -> list[dict[str, Any]]:
        return [
            c
            for c in self.fake.control("comments_json")
            if c.get("number") == number and c["body"].startswith("**mergequeue**")
        ]

    def own_checks(self, number: int) -> list[dict[str, Any]]:
        """The queue's own `mergequeue` check runs on the pull request's head."""
        runs = self.fake.control("check_runs_json", full_name=self.full_name, sha=self.head(number))
        return [r for r in runs if r["name"] == "mergequeue"]

    # --- changing the fake, and telling the service as GitHub would ----------------------

    def open_pull(
        self, *, labels: tuple[str, ...] = (), files: dict[str, str] | None = None
    ) -> int:
        """A pull request one commit on top of the base, changing `files` (default: a file
        of its own)."""
        extra = {"files": files} if files else {}
        created = self.fake.control(
            "add_pull", full_name=self.full_name, labels=list(labels), **extra
        )
        number = int(created["number"])
        self._send_pull("opened", number)
        return number

    def add_label(
        self,
        number: int,
        *,
        deliver: bool = True,
        label: str | None = None,
        by: str | None = None,
    ) -> None:
        """Add `label` (default: the queue label), as the user `by` (default: octocat)."""
        name = label or self.label
        pr = self.pull(number)
        labels = [label["name"] for label in pr["labels"]]
        self.fake.control(
            "set_pull", full_name=self.full_name, number=number, labels=[*labels, name]
        )
        if deliver:
            sender = {"sender": {"login": by, "id": 3}} if by else {}
            self._send_pull("labeled", number, label={"name": name}, **sender)

    def remove_label(self, number: int) -> None:
        labels = [
            label["name"] for label in self.pull(number)["labels"] if label["name"] != self.label
        ]
        self.fake.control("set_pull", full_name=self.full_name, number=number, labels=labels)
        self._send_pull("unlabeled", number, label={"name": self.label})

    def comment(
        self, number: int, body: str, author: str = "octocat", association: str = "OWNER"
    ) -> None:
        pull = self.pull(number)
        # Posted on the fake first, as on GitHub: the queue reacts to it there.
        comment_id = self.fake.control(
            "add_comment",
            full_name=self.full_name,
            number=number,
            body=body,
            user=author,
            author_association=association,
        )
        self._deliver(
            "issue_comment",
            {
                "action": "created",
                "issue": {
                    "number": number,
                    "title": pull["title"],
                    "pull_request": {"url": pull["url"]},
                },
                "comment": {
                    "id": comment_id,
                    "body": body,
                    "user": {"login": author, "id": 2},
                    "author_association": association,
                },
                **self._context(),
            },
        )

    def set_suspended(self, suspended: bool) -> None:
        self.fake.control(
            "suspend_installation", installation_id=self.installation_id, suspended=suspended
        )
        self._deliver(
            "installation",
            {
                "action": "suspend" if suspended else "unsuspend",
                "installation": {
                    "id": self.installation_id,
                    "account": {"login": self.full_name.split("/")[0]},
                    "suspended_at": "2026-12-01T00:00:00Z" if suspended else None,
                },
                "sender": {"login": "octocat", "id": 1},
            },
        )

    def move_base(self) -> None:
        self.fake.control("push", full_name=self.full_name, branch="main")
        self._deliver("push", {"ref": "refs/heads/main", **self._context()})

    def report(self, sha: str, context: str, state: str, *, deliver: bool = True) -> None:
        self.fake.control(
            "add_status", full_name=self.full_name, sha=sha, context=context, state=state
        )
        if deliver:
            self._deliver(
                "status",
                {
                    "id": next(_ids),
                    "sha": sha,
                    "context": context,
                    "state": state,
                    "name": self.full_name,
                    **self._context(),
                },
            )

    def _context(self) -> dict[str, Any]:
        return {
            "repository": self._repository(),
            "installation": {"id": self.installation_id},
            "sender": {"login": "octocat", "id": 1},
        }

    def _repository(self) -> dict[str, Any]:
        if self._repo_json is None:
            self._repo_json = self._repo_from_any_pull()
        return self._repo_json

    def _repo_from_any_pull(self) -> dict[str, Any]:
        for number in range(1, 50):
            try:
                return dict(self.pull(number)["base"]["repo"])
            except httpx.HTTPStatusError:
                continue
        raise AssertionError("open a pull request first")

    def _send_pull(self, action: str, number: int, **extra: Any) -> None:
        self._deliver(
            "pull_request",
            {
                "action": action,
                "number": number,
                "pull_request": self.pull(number),
                **self._context(),
                **extra,
            },
        )

    def _deliver(self, event: str, payload: dict[str, Any]) -> None:
        response = webhooks.deliver(self.web_url, event, payload)
        assert response.status_code == 202, response.text
        self.sent.append(response.request.headers["X-GitHub-Delivery"])
