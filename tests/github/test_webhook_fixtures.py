"""The webhook fixtures are payloads GitHub really sends: each validates against the
event's schema in `@octokit/webhooks-schemas`."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator  # type: ignore[import-untyped]
from referencing import Registry
from referencing.jsonschema import DRAFT7

from tests.github.openapi import WEBHOOK_SCHEMA_FILE, need

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
URI = "urn:github-webhooks"
EXPECTED = {
    "pull_request.opened",
    "pull_request.edited",
    "pull_request.synchronize",
    "pull_request.labeled",
    "pull_request.unlabeled",
    "pull_request.closed",
    "pull_request.closed.merged",
    "pull_request.reopened",
    "check_suite.completed",
    "check_run.completed",
    "status",
    "push",
    "issue_comment.created",
    "installation.created",
    "installation.deleted",
    "installation_repositories.added",
    "installation_repositories.removed",
    "ping",
}


@cache
def _registry() -> Registry[Any]:
    schema = json.loads(need(WEBHOOK_SCHEMA_FILE).read_text())
    registry: Registry[Any] = Registry().with_resource(URI, DRAFT7.create_resource(schema))
    return registry


def _definitions() -> dict[str, Any]:
    contents: dict[str, Any] = _registry().contents(URI)
    return contents["definitions"]  # type: ignore[no-any-return]


def test_every_needed_fixture_exists() -> None:
    assert {p.name.removesuffix(".json") for p in FIXTURES.glob("*.json")} == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_is_a_valid_github_payload(name: str) -> None:
    payload = json.loads((FIXTURES / f"{name}.json").read_text())
    event = name.split(".", 1)[0]
    definition = f"{event}${payload.get('action', 'event')}"
    assert definition in _definitions(), definition
    validator = Draft7Validator({"$ref": f"{URI}#/definitions/{definition}"}, registry=_registry())
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in validator.iter_errors(payload)
    ]
    assert errors == []


def test_validation_is_not_vacuous() -> None:
    payload = json.loads((FIXTURES / "pull_request.opened.json").read_text())
    del payload["pull_request"]["head"]
    payload["unexpected"] = True
    validator = Draft7Validator(
        {"$ref": f"{URI}#/definitions/pull_request$opened"}, registry=_registry()
    )
    assert not validator.is_valid(payload)


def test_fixtures_are_app_deliveries() -> None:
    for path in FIXTURES.glob("*.json"):
        payload = json.loads(path.read_text())
        if not path.name.startswith("ping"):
            assert payload["installation"]["id"] == 957387, path.name


def test_merged_and_unmerged_close_differ() -> None:
    merged = json.loads((FIXTURES / "pull_request.closed.merged.json").read_text())
    closed = json.loads((FIXTURES / "pull_request.closed.json").read_text())
    assert merged["pull_request"]["merged"] is True
    assert closed["pull_request"]["merged"] is False
