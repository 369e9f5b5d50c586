"""Notifications end to end: real web and worker, the fake GitHub, and a chat endpoint of
the test's own (an HTTP server in this process) that refuses the first attempt."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mergequeue.models import Notification, QueueEntry, QueueEntryState
from tests.e2e.conftest import StartWeb, StartWorker, Worker
from tests.support import webhooks
from tests.support.db import rows
from tests.support.fake_github import FakeGitHubServer, fake_github  # noqa: F401 (fixture)
from tests.support.metrics import value
from tests.support.processes import QUICK_RECONCILIATION
from tests.support.scenario import Scenario, wait_for

SECRET_PATH = "/services/T000/B000/chat-secret"


class Receiver:
    """Counts POSTs; answers the first `failures` with 500, the rest with 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.posts.append((self.path, json.loads(body)))
                    failing = len(receiver.posts) <= receiver.failures
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"no" if failing else b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"

    def count(self) -> int:
        with self.lock:
            return len(self.posts)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver(failures=1)
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def world(
    start_web: StartWeb,
    start_worker: StartWorker,
    sqlite_url: str,
    redis_url: str,
    fake_github: FakeGitHubServer,  # noqa: F811
    receiver: Receiver,
) -> Iterator[tuple[Scenario, Worker, str]]:
    env = {
        "DATABASE_URL": sqlite_url,
        "REDIS_URL": redis_url,
        "NOTIFY_WEBHOOK_URL": receiver.url,
        **fake_github.app_env(),
        **QUICK_RECONCILIATION,
    }
    web = start_web(GITHUB_WEBHOOK_SECRET=webhooks.SECRET, **env)
    worker = start_worker(**env)
    scenario = Scenario(fake_github, web.url)
    scenario.setup()
    yield scenario, worker, sqlite_url


def test_a_dequeue_notifies_exactly_once_though_the_first_attempt_failed(
    world: tuple[Scenario, Worker, str], receiver: Receiver
) -> None:
    s, worker, url = world
    number = s.open_pull()
    s.add_label(number)
    s.report(s.head(number), "ci", "failure")

    def dequeued() -> bool:
        entries = [r[0] for r in rows(url, select(QueueEntry))]
        return bool(entries) and entries[0].state == QueueEntryState.DEQUEUED

    wait_for(dequeued, what="dequeued")
    # The first POST is refused with 500; the retry (2 s of backoff, then the next run of
    # the 5-second sender) is taken.
    wait_for(lambda: receiver.count() >= 2, timeout=40, what="the retry")
    wait_for(lambda: rows(url, select(Notification.sent_at))[0][0] is not None, what="marked sent")
    [(row,)] = rows(url, select(Notification))
    assert row.key.startswith("dequeue:") and row.attempts == 1
    # Nothing more arrives: two more runs of the sender and of the watcher.
    time.sleep(12)
    assert receiver.count() == 2
    [(first_path, first), (second_path, second)] = receiver.posts
    assert first_path == second_path == SECRET_PATH
    assert first == second
    assert set(second) == {"text"}
    assert (
        f"{s.full_name}#{number} left the merge queue without merging (check_failed)"
        in (second["text"])
    )
    assert f"/{s.full_name}/pull/{number}" in second["text"]

    metrics = httpx.get(worker.metrics_url).text
    assert value(metrics, "mergequeue_notifications_total", outcome="failed") == 1
    assert value(metrics, "mergequeue_notifications_total", outcome="sent") == 1
    assert value(metrics, "mergequeue_queue_paused", repository=s.full_name) == 0
    # The worker logged the failure naming the host, never the URL's secret path.
    log = worker.process.output()
    assert "notification failed" in log and "127.0.0.1" in log
    assert "chat-secret" not in log
