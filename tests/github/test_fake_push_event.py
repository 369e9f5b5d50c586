"""The fake's `push` webhook payload: GitHub's shape (validated against
`@octokit/webhooks-schemas`), listing each pushed commit's added, modified and removed
paths from the fake's git model."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft7Validator  # type: ignore[import-untyped]
from referencing import Registry
from referencing.jsonschema import DRAFT7

from tests.fakegithub import FakeGitHub
from tests.github.openapi import WEBHOOK_SCHEMA_FILE, need

REPO = "octo/hello"
URI = "urn:github-webhooks"


@cache
def _registry() -> Registry[Any]:
    schema = json.loads(need(WEBHOOK_SCHEMA_FILE).read_text())
    registry: Registry[Any] = Registry().with_resource(URI, DRAFT7.create_resource(schema))
    return registry


def _errors(payload: dict[str, Any]) -> list[str]:
    validator = Draft7Validator({"$ref": f"{URI}#/definitions/push$event"}, registry=_registry())
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in validator.iter_errors(payload)
    ]


def test_push_payload_lists_each_commits_changed_files() -> None:
    gh = FakeGitHub()
    gh.add_repo(full_name=REPO)
    before = gh.repo(REPO).branches["main"]
    first = gh.push(full_name=REPO, branch="main", files={".github/mergequeue.yml": "a: 1\n"})
    second = gh.push(
        full_name=REPO,
        branch="main",
        files={".github/mergequeue.yml": "a: 2\n", "README.md": None, "new.txt": "x"},
    )
    payload = gh.push_event_json(full_name=REPO, branch="main", before=before, installation_id=5)
    assert _errors(payload) == []
    assert (payload["ref"], payload["before"], payload["after"]) == (
        "refs/heads/main",
        before,
        second,
    )
    assert [c["id"] for c in payload["commits"]] == [first, second]
    assert [(c["added"], c["modified"], c["removed"]) for c in payload["commits"]] == [
        ([".github/mergequeue.yml"], [], []),
        (["new.txt"], [".github/mergequeue.yml"], ["README.md"]),
    ]
    assert payload["head_commit"]["id"] == second
    assert payload["repository"]["default_branch"] == "main"
    assert payload["installation"]["id"] == 5


def test_push_payload_validation_is_not_vacuous() -> None:
    gh = FakeGitHub()
    gh.add_repo(full_name=REPO)
    before = gh.repo(REPO).branches["main"]
    gh.push(full_name=REPO, branch="main")
    payload = gh.push_event_json(full_name=REPO, branch="main", before=before)
    del payload["commits"][0]["added"]
    assert _errors(payload) != []
