"""The repository documents its own operator contract (docs/operations.md) and refers to no
document that is not in it."""

from __future__ import annotations

import re
import subprocess

from deploy_helpers import CONTRACT_SNIPPET, REPO

OPERATIONS = REPO / "docs" / "operations.md"
# Documents that lived outside the repository (the steering notes, the issue tracker).
OUTSIDE = re.compile(r"\b(CONTRACT|NOTES|STYLE)\.md\b|\b[Ii]ssues? #?\d+\b")
# Files allowed to cite them anyway: none. ("docs/operations.md N" keeps the section
# numbers the old contract had.) The set may only shrink: a file not in it fails the test.
NOT_YET_REWORDED: set[str] = set()
THIS_FILE = "tests/deploy/test_deploy_docs.py"


def tracked_text_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [
        name
        for name in listed
        if not name.startswith(("tools/", "requirements/", "tests/deploy/schemas/"))
        and (REPO / name).is_file()
        and name != THIS_FILE
    ]


def test_no_file_refers_to_a_document_outside_the_repository() -> None:
    citing = set()
    for name in tracked_text_files():
        try:
            text = (REPO / name).read_text()
        except UnicodeDecodeError:
            continue
        if OUTSIDE.search(text):
            citing.add(name)
    assert citing - NOT_YET_REWORDED == set(), "cite docs/operations.md (or the README) instead"


def test_relative_links_in_markdown_point_at_files_that_exist() -> None:
    for name in tracked_text_files():
        if not name.endswith(".md"):
            continue
        path = REPO / name
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            assert (path.parent / target).exists(), f"{name} links to missing {target}"


def test_operations_doc_holds_processes_variables_endpoints_and_metrics() -> None:
    text = OPERATIONS.read_text()
    for heading in (
        "## 1. Processes",
        "## 2. Configuration",
        "## 3. HTTP endpoints",
        "## 4. Metrics",
        "## 5. Helm chart",
        "## 6. The image",
    ):
        assert heading in text, heading
    for command in (
        "uvicorn api.main:app --host 0.0.0.0 --port 8000",
        "arq jobs.WorkerSettings",
        "alembic upgrade head",
    ):
        assert command in text
    settings = (REPO / "mergequeue" / "settings.py").read_text()
    for variable in (
        "DATABASE_URL",
        "REDIS_URL",
        "SERVE_PROMETHEUS_ENDPOINT",
        "PROMETHEUS_PORT",
        "WEB_PROMETHEUS_PORT",
        "GITHUB_WEBHOOK_SECRET",
        "API_TOKENS",
        "LOG_FORMAT",
    ):
        assert f"`{variable}`" in text, variable
    for path in ("/healthz", "/readyz", "/api/webhook", "/api/v1", "/graphql", "/debug/metrics"):
        assert path in text, path
    from promql import COUNTERS_AND_GAUGES, HISTOGRAMS

    for metric in [*COUNTERS_AND_GAUGES, *HISTOGRAMS]:
        if metric != "up":
            assert f"`{metric}" in text, metric
    assert settings  # the variables above are the settings object's


def test_the_chart_snippet_in_the_doc_is_the_one_the_chart_tests_render() -> None:
    snippet = re.search(r"## 5\. Helm chart.*?```yaml\n(.*?)```", OPERATIONS.read_text(), re.DOTALL)
    assert snippet and snippet.group(1) == CONTRACT_SNIPPET
