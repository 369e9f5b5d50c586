"""docs/operations.md 1: a bad or missing value stops a process at start with one clear line."""

from __future__ import annotations

import pytest

from tests.support.processes import BIN, arq_argv, base_env, free_port, run, uvicorn_argv

BAD = {"SERVE_PROMETHEUS_ENDPOINT": "maybe"}


def _single_clear_line(stderr: str, variable: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    ours = [line for line in lines if line.startswith("mergequeue: invalid configuration:")]
    assert len(ours) == 1, stderr
    assert variable in ours[0]
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(uvicorn_argv(free_port()), id="web"),
        pytest.param(arq_argv(), id="worker"),
        pytest.param([str(BIN / "alembic"), "upgrade", "head"], id="migrations"),
    ],
)
def test_bad_configuration_stops_the_process_with_one_line(argv: list[str]) -> None:
    result = run(argv, base_env(**BAD), timeout=60)
    assert result.returncode != 0
    _single_clear_line(result.stdout + result.stderr, "SERVE_PROMETHEUS_ENDPOINT")


def test_missing_private_key_for_github_app_is_named(tmp_path: object) -> None:
    result = run(uvicorn_argv(free_port()), base_env(GITHUB_APP_ID="1234"), timeout=60)
    assert result.returncode != 0
    _single_clear_line(result.stdout + result.stderr, "GITHUB_APP_PRIVATE_KEY")
