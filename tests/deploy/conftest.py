"""Fixtures for the deployment tests (helpers in deploy_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from deploy_helpers import SCENARIOS, Helm, Rendered


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Helm]:
    yield Helm(tmp_path_factory.mktemp("helm-values"))


@pytest.fixture(scope="session")
def scenario(helm: Helm) -> Callable[[str], Rendered]:
    def render(name: str) -> Rendered:
        return helm.render(SCENARIOS[name])

    return render
