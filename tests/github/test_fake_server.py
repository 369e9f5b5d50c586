"""The fake as a real server process on loopback, driven through its control API, with
the client going over real TCP (so timeouts and connection handling are httpx's own)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.server
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from mergequeue.github import AppAuth, GitHubClient, RateLimited, StaticTokenAuth, Unavailable
from tests.github.conftest import APP_ID, FULL_NAME, OWNER, REPO, KeyPair, Observed, free_port

ROOT = Path(__file__).resolve().parents[2]
PULL = "/repos/{owner}/{repo}/pulls/{pull_number}"


class FakeServer:
    def __init__(self, url: str) -> None:
        self.url = url

    def control(self, name: str, **kwargs: object) -> object:
        response = httpx.post(f"{self.url}/_fake/{name}", json=kwargs, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()["result"]

    def calls(self) -> list[dict[str, object]]:
        calls: list[dict[str, object]] = httpx.get(f"{self.url}/_fake/calls", timeout=5).json()
        return calls


@pytest.fixture(scope="module")
def fake_server(
    app_keys: KeyPair, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeServer]:
    key_file = tmp_path_factory.mktemp("fake") / "app.pub.pem"
    key_file.write_text(app_keys.public_pem)
    port = free_port()
    argv = [sys.executable, "-m", "tests.fakegithub", "--port", str(port)]
    argv += ["--app-id", str(APP_ID), "--public-key-file", str(key_file)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                output = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"fake GitHub exited: {output}")
            try:
                if httpx.get(f"{url}/_fake/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("fake GitHub did not start in 20 s")
            time.sleep(0.05)
        yield FakeServer(url)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


async def test_client_against_fake_server_process(
    fake_server: FakeServer, app_keys: KeyPair, observed: Observed
) -> None:
    fake_server.control("reset")
    fake_server.control("add_repo", full_name=FULL_NAME)
    fake_server.control(
        "add_installation", installation_id=9, account=OWNER, repositories=[FULL_NAME]
    )
    pr = fake_server.control("add_pull", full_name=FULL_NAME, labels=["mergequeue"])
    assert isinstance(pr, dict)
    fake_server.control("hang", route=PULL, times=1, seconds=30)

    client = GitHubClient(
        auth=AppAuth(app_id=APP_ID, private_key=app_keys.private_pem),
        base_url=fake_server.url,
        timeout=0.5,
        backoff=0.01,
        observe_call=observed.call,
        observe_rate_limit=observed.limit,
    )
    async with client:
        gh = client.for_installation(9)
        got = await gh.get_pull_request(owner=OWNER, repo=REPO, number=1)
        assert (got.head_sha, got.labels) == (pr["head_sha"], ("mergequeue",))
        result = await gh.merge(owner=OWNER, repo=REPO, number=1, method="squash", sha=got.head_sha)
        assert result.merged
        repos = await gh.list_installation_repositories()
        assert [r.full_name for r in repos] == [FULL_NAME]

    labels = observed.labels()
    assert labels[:3] == [
        ("POST", "/app/installations/{installation_id}/access_tokens", "201"),
        ("GET", PULL, "timeout"),
        ("GET", PULL, "200"),
    ]
    assert ("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", "200") in labels
    assert observed.limits[-1][0] == "9"

    calls = fake_server.calls()
    assert [c["route"] for c in calls].count(PULL) == 2
    merge_call = next(c for c in calls if c["method"] == "PUT")
    assert merge_call["body"] == {"merge_method": "squash", "sha": pr["head_sha"]}
    assert fake_server.control("pull_json", full_name=FULL_NAME, number=1)["merged"] is True  # type: ignore[index]
    fake_server.control("clear_faults")


async def test_outage_and_rate_limits_over_http(
    fake_server: FakeServer, observed: Observed
) -> None:
    fake_server.control("reset")
    fake_server.control("add_repo", full_name=FULL_NAME)
    fake_server.control("add_token", token="ghp_x")

    def client() -> GitHubClient:
        return GitHubClient(
            auth=StaticTokenAuth("ghp_x"),
            base_url=fake_server.url,
            backoff=0.01,
            observe_call=observed.call,
        )

    fake_server.control("fail", status=502, times=None)
    async with client() as gh:
        with pytest.raises(Unavailable):
            await gh.get_branch(owner=OWNER, repo=REPO, branch="main")
    assert [s for _, _, s in observed.labels()] == ["502", "502", "502"]
    fake_server.control("clear_faults")

    until = int(time.time()) + 120
    fake_server.control("rate_limit_primary", until=until)
    async with client() as gh:
        with pytest.raises(RateLimited) as primary:
            await gh.get_branch(owner=OWNER, repo=REPO, branch="main")
    assert (primary.value.kind, primary.value.retry_at) == ("primary", until)
    fake_server.control("clear_faults")

    fake_server.control("rate_limit_secondary", retry_after=7, status=429)
    async with client() as gh:
        before = time.time()
        with pytest.raises(RateLimited) as secondary:
            await gh.get_branch(owner=OWNER, repo=REPO, branch="main")
        sent = len(fake_server.calls())
        with pytest.raises(RateLimited):  # deferred: not sent before retry_at
            await gh.get_branch(owner=OWNER, repo=REPO, branch="main")
        assert len(fake_server.calls()) == sent
    assert secondary.value.kind == "secondary"
    assert before + 7 <= secondary.value.retry_at <= time.time() + 7


def test_control_api_rejects_unknown_controls(fake_server: FakeServer) -> None:
    response = httpx.post(f"{fake_server.url}/_fake/__init__", json={}, timeout=5)
    assert response.status_code == 404
    response = httpx.post(f"{fake_server.url}/_fake/add_pull", json={"nonsense": 1}, timeout=5)
    assert response.status_code == 400


class _Hooks(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, object], str]]] = []
    four = threading.Event()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        signature_ok = "ok" if self.headers["X-Hub-Signature-256"] == expected else "bad"
        self.received.append((self.headers["X-GitHub-Event"], json.loads(body), signature_ok))
        if len(self.received) >= 4:
            self.four.set()
        self.send_response(202)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


async def test_scripted_ci_completes_by_itself_and_sends_webhooks(
    fake_server: FakeServer, app_keys: KeyPair
) -> None:
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        fake_server.control("reset")
        fake_server.control("add_repo", full_name=FULL_NAME)
        fake_server.control("add_token", token="ghp_ci")
        fake_server.control(
            "set_webhook_target",
            url=f"http://127.0.0.1:{receiver.server_address[1]}/api/webhook",
            secret="s3cret",
        )
        fake_server.control(
            "set_ci", full_name=FULL_NAME, bad_paths=["changes/2.txt"], ci_delay=0.2
        )
        fake_server.control("add_pull", full_name=FULL_NAME)
        bad = fake_server.control("add_pull", full_name=FULL_NAME)
        assert isinstance(bad, dict)
        async with GitHubClient(auth=StaticTokenAuth("ghp_ci"), base_url=fake_server.url) as gh:
            main = (await gh.get_branch(owner=OWNER, repo=REPO, branch="main")).sha
            await gh.create_ref(
                owner=OWNER, repo=REPO, ref="refs/heads/mergequeue/main/1", sha=main
            )
            staged = await gh.merge_branches(
                owner=OWNER, repo=REPO, base="mergequeue/main/1", head=bad["head_sha"]
            )
            assert staged is not None
            await asyncio.to_thread(_Hooks.four.wait, 10)
            runs = await gh.list_check_runs(owner=OWNER, repo=REPO, ref=staged.sha)
        assert [(r.name, r.status, r.conclusion) for r in runs] == [("ci", "completed", "failure")]
        events = sorted((e, p["action"], ok) for e, p, ok in _Hooks.received)
        assert events == [
            ("check_run", "completed", "ok"),
            ("check_run", "completed", "ok"),
            ("check_suite", "completed", "ok"),
            ("check_suite", "completed", "ok"),
        ]
        ran = fake_server.control("ci_runs_json", full_name=FULL_NAME)
        assert isinstance(ran, list)
        assert {(r["sha"], r["conclusion"]) for r in ran} == {
            (main, "success"),
            (staged.sha, "failure"),
        }
    finally:
        receiver.shutdown()
        receiver.server_close()
