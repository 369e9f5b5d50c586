"""The README opens with two commands that work: run the service, and run the tests."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx

from tests.support.processes import ROOT, Process, base_env, free_port


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    before_first_section = text.split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", before_first_section, re.S)]


def test_readme_opens_with_exactly_two_commands() -> None:
    assert _readme_commands() == ["./scripts/run", "./scripts/test"]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [
        line for line in ci.splitlines() if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands == ["exec ./scripts/test"]


def _clean_copy(destination: Path) -> None:
    # What a clean clone holds: tracked files and new files git does not ignore.
    listed = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def test_readme_run_command_starts_web_and_worker_from_a_clean_copy(
    tmp_path: Path, redis_url: str
) -> None:
    checkout = tmp_path / "mergequeue"
    _clean_copy(checkout)
    web_port, metrics_port = free_port(), free_port()
    env = base_env(
        WEB_PORT=str(web_port),
        PROMETHEUS_PORT=str(metrics_port),
        REDIS_URL=redis_url,
        SERVE_PROMETHEUS_ENDPOINT="true",
    )
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if ".venv" not in p)
    process = Process("scripts/run", [str(checkout / "scripts" / "run")], env, tmp_path / "run.log")
    try:
        process.wait_http(f"http://127.0.0.1:{web_port}/healthz", timeout=300)
        process.wait_http(f"http://127.0.0.1:{metrics_port}/metrics", timeout=60)
        assert httpx.get(f"http://127.0.0.1:{web_port}/readyz").status_code == 200
        assert (checkout / "mergequeue.db").exists()
        assert (
            "flask_http_request_total"
            in httpx.get(f"http://127.0.0.1:{web_port}/debug/metrics").text
        )
    finally:
        process.stop(timeout=20)
