"""Per-repository queue settings (label, merge method, required checks, CI timeout,
parallel mode's queue mode, parallel builds, batch size, batch wait, failure depth and flaky
retries, and status comments) set and reset
through REST (`PATCH /api/v1/repos/{owner}/{repo}`) and GraphQL (`updateRepositorySettings`)
on the real web process, over SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from tests.e2e.conftest import StartWeb, Web
from tests.support.db import execute
from tests.support.seed import seed

TOKEN = "settings-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Nothing listens there: every wake-up fails at once, and the API must not care.
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
REPO_ID = 930_000_001
# Not the built-in defaults (mergequeue, squash): these can only come from the environment.
ENV_LABEL = "ready-to-ship"
ENV_METHOD = "rebase"
DEFAULT_CI_TIMEOUT = 3600
DEFAULTS = {
    "queue_label": ENV_LABEL,
    "merge_method": ENV_METHOD,
    "required_checks": None,
    "ci_timeout_seconds": DEFAULT_CI_TIMEOUT,
    # Parallel mode's, from mergequeue.queue.effective.
    "queue_mode": "serial",
    "max_parallel_builds": 4,
    "batch_size": 1,
    "batch_wait_seconds": 60,
    "notify_webhook_url": None,
    "failure_depth": 0,
    "status_comments": True,
    "flaky_retries": 0,
}
SETTINGS_FIELDS = (
    "fullName queueLabel mergeMethod requiredChecks ciTimeoutSeconds paused"
    " queueMode maxParallelBuilds batchSize batchWaitSeconds notifyWebhookUrl"
    " failureDepth statusComments flakyRetries maxParallelBuildsAuto"
)
UPDATE = (
    "mutation Update($name: String!, $settings: RepositorySettingsInput!) {"
    ' updateRepositorySettings(owner: "acme", name: $name, settings: $settings) {'
    f" {SETTINGS_FIELDS} }} }}"
)

# Repositories, one per test that changes settings, so tests do not see each other's.
NAMES = [
    "rest",
    "graphql",
    "partial",
    "bad-rest",
    "bad-graphql",
    "deep",
    "both",
    "down",
    "parallel-rest",
    "parallel-reset",
    "parallel-zero",
    "parallel-ends",
    "parallel-graphql",
    "parallel-bad-graphql",
    "notify",
    "flaky-granted",
    "flaky-refused",
    "flaky-none",
    "flaky-serial",
    "auto-rest",
    "auto-graphql",
    "auto-off",
]
# Installations, and whether each granted `actions: write`, of the repositories that have one.
INSTALLATIONS = {
    "flaky-granted": (930_100, True),
    "flaky-refused": (930_101, False),
    "flaky-serial": (930_102, True),
}


@pytest.fixture(scope="module")
def web(start_module_web: StartWeb, module_database_url: str) -> Web:
    for i, name in enumerate(NAMES):
        seed(module_database_url, repo_id=REPO_ID + i, owner="acme", name=name)
    for name, (installation, granted) in INSTALLATIONS.items():
        execute(
            module_database_url,
            "INSERT INTO installations (id, account_login, suspended, actions_write) "
            f"VALUES ({installation}, 'acme', false, {'true' if granted else 'false'})",
        )
        execute(
            module_database_url,
            f"UPDATE repositories SET installation_id = {installation} "
            f"WHERE owner = 'acme' AND name = '{name}'",
        )
    return start_module_web(
        DATABASE_URL=module_database_url,
        API_TOKENS=TOKEN,
        REDIS_URL=UNREACHABLE_REDIS,
        QUEUE_LABEL=ENV_LABEL,
        MERGE_METHOD=ENV_METHOD,
    )


def call(web: Web, method: str, path: str, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("headers", AUTH)
    return httpx.request(method, web.url + path, timeout=10, **kwargs)


def patch(web: Web, name: str, body: Any, **kwargs: Any) -> httpx.Response:
    return call(web, "PATCH", f"/api/v1/repos/acme/{name}", json=body, **kwargs)


def gql(web: Web, query: str, headers: dict[str, str] = AUTH, **variables: Any) -> httpx.Response:
    body = {"query": query, "variables": variables or None}
    return httpx.post(web.url + "/graphql", json=body, headers=headers, timeout=10)


def update(web: Web, name: str, settings: dict[str, Any]) -> dict[str, Any]:
    response = gql(web, UPDATE, name=name, settings=settings)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["updateRepositorySettings"]
    return result


def rest_settings(web: Web, name: str) -> dict[str, Any]:
    body = call(web, "GET", f"/api/v1/repos/acme/{name}").json()
    return {field: body[field] for field in DEFAULTS}


def graphql_settings(web: Web, name: str) -> dict[str, Any]:
    query = f'{{ repository(owner: "acme", name: "{name}") {{ {SETTINGS_FIELDS} }} }}'
    return snake(gql(web, query).json()["data"]["repository"])


def snake(graphql_repository: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL Repository's settings under the REST API's names."""
    settings = {field: graphql_repository[camel(field)] for field in DEFAULTS}
    # REST's max_parallel_builds "auto" is GraphQL's maxParallelBuildsAuto.
    if graphql_repository["maxParallelBuildsAuto"]:
        settings["max_parallel_builds"] = "auto"
    return settings


def camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


# One value per setting, none of them a default.
VALUES: list[tuple[str, Any]] = [
    ("queue_label", "merge when green"),
    ("merge_method", "squash"),
    ("required_checks", ["ci / test", "lint"]),
    ("ci_timeout_seconds", 900),
    ("queue_mode", "parallel"),
    ("max_parallel_builds", 8),
    ("batch_size", 5),
    ("batch_wait_seconds", 300),
    ("failure_depth", 3),
    ("status_comments", False),
    ("flaky_retries", 2),
]
# Parallel mode's settings, none of them a default; a batch wait of 0 is falsy, not unset.
PARALLEL = {"queue_mode": "parallel", "max_parallel_builds": 8, "batch_size": 5}
PARALLEL_DEFAULTS = {field: DEFAULTS[field] for field in [*PARALLEL, "batch_wait_seconds"]}


def test_defaults_come_from_the_environment(web: Web) -> None:
    for name in NAMES:
        assert rest_settings(web, name) == DEFAULTS
        assert graphql_settings(web, name) == DEFAULTS
    listed = call(web, "GET", "/api/v1/repos").json()
    assert {r["full_name"]: r["queue_label"] for r in listed} == {
        f"acme/{name}": ENV_LABEL for name in NAMES
    }


def test_rest_sets_and_resets_each_setting(web: Web) -> None:
    for field, value in VALUES:
        response = patch(web, "rest", {field: value})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["full_name"] == "acme/rest" and body["paused"] is False
        assert {f: body[f] for f in DEFAULTS} == DEFAULTS | {field: value}
        assert rest_settings(web, "rest") == DEFAULTS | {field: value}
        assert graphql_settings(web, "rest") == DEFAULTS | {field: value}

        reset = patch(web, "rest", {field: None})
        assert reset.status_code == 200, reset.text
        assert {f: reset.json()[f] for f in DEFAULTS} == DEFAULTS
        assert rest_settings(web, "rest") == DEFAULTS
        assert graphql_settings(web, "rest") == DEFAULTS


def test_graphql_sets_and_resets_each_setting(web: Web) -> None:
    for field, value in VALUES:
        changed = update(web, "graphql", {camel(field): value})
        assert changed["fullName"] == "acme/graphql" and changed["paused"] is False
        assert snake(changed) == DEFAULTS | {field: value}
        assert rest_settings(web, "graphql") == DEFAULTS | {field: value}
        assert graphql_settings(web, "graphql") == DEFAULTS | {field: value}

        reset = update(web, "graphql", {camel(field): None})
        assert snake(reset) == DEFAULTS
        assert rest_settings(web, "graphql") == DEFAULTS


def test_only_the_fields_sent_change(web: Web) -> None:
    everything = DEFAULTS | dict(VALUES)
    assert patch(web, "partial", everything).status_code == 200
    assert rest_settings(web, "partial") == everything
    unchanged = patch(web, "partial", {})
    assert unchanged.status_code == 200
    assert {f: unchanged.json()[f] for f in DEFAULTS} == everything
    # An empty body or input changes nothing.
    assert snake(update(web, "partial", {})) == everything
    response = patch(web, "partial", {"merge_method": "merge", "ci_timeout_seconds": 60})
    assert response.status_code == 200
    assert rest_settings(web, "partial") == everything | {
        "merge_method": "merge",
        "ci_timeout_seconds": 60,
    }
    update(web, "partial", {"requiredChecks": None, "ciTimeoutSeconds": 86400})
    assert graphql_settings(web, "partial") == everything | {
        "merge_method": "merge",
        "required_checks": None,
        "ci_timeout_seconds": 86400,
    }
    # Pausing is its own operation, and settings changes leave it alone.
    assert call(web, "POST", "/api/v1/repos/acme/partial/pause").json()["paused"] is True
    assert patch(web, "partial", {"queue_label": None}).json()["paused"] is True
    assert update(web, "partial", {"mergeMethod": None})["paused"] is True
    assert rest_settings(web, "partial") == everything | {
        "queue_label": ENV_LABEL,
        "required_checks": None,
        "ci_timeout_seconds": 86400,
        "merge_method": ENV_METHOD,
    }


def test_values_are_normalised_the_same_way_by_both_apis(web: Web) -> None:
    # GitHub trims label names; a check named twice is one required check.
    body = {"queue_label": "  ship it  ", "required_checks": ["build", "test", "build"]}
    assert patch(web, "both", body).status_code == 200
    expected = DEFAULTS | {"queue_label": "ship it", "required_checks": ["build", "test"]}
    assert rest_settings(web, "both") == expected
    assert graphql_settings(web, "both") == expected
    update(web, "both", {"queueLabel": " again ", "requiredChecks": ["x", "x"]})
    expected |= {"queue_label": "again", "required_checks": ["x"]}
    assert rest_settings(web, "both") == graphql_settings(web, "both") == expected


def test_both_apis_list_the_same_effective_settings(web: Web) -> None:
    patch(web, "both", {"merge_method": "merge", "ci_timeout_seconds": 120})
    rest = {
        r["full_name"]: {f: r[f] for f in DEFAULTS}
        for r in call(web, "GET", "/api/v1/repos").json()
    }
    listed = gql(web, f"{{ repositories {{ {SETTINGS_FIELDS} }} }}").json()["data"]
    graphql = {r["fullName"]: snake(r) for r in listed["repositories"]}
    assert rest == graphql
    assert rest["acme/both"]["merge_method"] == "merge"


@pytest.mark.parametrize(
    "body",
    [
        {"queue_label": ""},
        {"queue_label": "   "},
        {"queue_label": "x" * 101},
        {"queue_label": 5},
        {"merge_method": "fast-forward"},
        {"merge_method": "SQUASH"},
        {"required_checks": []},
        {"required_checks": [""]},
        {"required_checks": ["  "]},
        {"required_checks": ["\u00a0"]},
        {"required_checks": ["x" * 256]},
        {"required_checks": [f"check {i}" for i in range(51)]},
        {"required_checks": "ci"},
        {"required_checks": [1]},
        {"ci_timeout_seconds": 59},
        {"ci_timeout_seconds": 86401},
        {"ci_timeout_seconds": -1},
        {"ci_timeout_seconds": "600"},
        {"ci_timeout_seconds": 600.5},
        {"ci_timeout_seconds": True},
        {"queue_mode": "batch"},
        {"queue_mode": "PARALLEL"},
        {"queue_mode": ""},
        {"queue_mode": 1},
        {"max_parallel_builds": 0},
        {"max_parallel_builds": 33},
        {"max_parallel_builds": -1},
        {"max_parallel_builds": "4"},
        {"max_parallel_builds": 4.5},
        {"max_parallel_builds": True},
        {"max_parallel_builds": "AUTO"},
        {"max_parallel_builds": "auto "},
        {"max_parallel_builds": ""},
        {"max_parallel_builds": ["auto"]},
        {"batch_size": 0},
        {"batch_size": 21},
        {"batch_size": 2**63},
        {"batch_size": "5"},
        {"batch_size": False},
        {"batch_wait_seconds": -1},
        {"batch_wait_seconds": 3601},
        {"batch_wait_seconds": 60.5},
        {"batch_wait_seconds": "60"},
        {"notify_webhook_url": "ftp://chat.example.com/hook"},
        {"notify_webhook_url": "hooks.slack.com/services/T/B/x"},
        {"notify_webhook_url": "https://"},
        {"notify_webhook_url": ""},
        {"notify_webhook_url": "https://chat.example.com/a b"},
        {"notify_webhook_url": "https://chat.example.com/" + "x" * 2048},
        {"notify_webhook_url": 5},
        {"failure_depth": -1},
        {"failure_depth": 9},
        {"failure_depth": "2"},
        {"failure_depth": 2.5},
        {"failure_depth": True},
        {"flaky_retries": -1},
        {"flaky_retries": 4},
        {"flaky_retries": "2"},
        {"flaky_retries": 1.5},
        {"flaky_retries": True},
        {"status_comments": "false"},
        {"status_comments": 0},
        {"status_comments": 1},
        {"status_comments": "yes"},
        {"queue_mode": "parallel", "batch_size": 21},
        {"paused": True},
        {"queue_label": "fine", "ci_timeout_seconds": 1},
        {"queue_label": "fine", "required_checks": []},
        ["queue_label"],
        None,
    ],
    ids=repr,
)
def test_bad_settings_are_422_and_change_nothing(web: Web, body: object) -> None:
    response = patch(web, "bad-rest", body)
    assert response.status_code == 422, response.text
    # One shape for every rejection, as the OpenAPI document declares for 422.
    errors = response.json()["detail"]
    assert isinstance(errors, list) and errors, errors
    assert all({"loc", "msg", "type"} <= set(error) for error in errors)
    if isinstance(body, dict) and len(body) == 1:
        assert errors[0]["loc"][:2] == ["body", *body], errors
    assert rest_settings(web, "bad-rest") == DEFAULTS


def test_the_limits_themselves_are_accepted(web: Web) -> None:
    limits = {
        "queue_label": "x" * 100,
        "required_checks": [f"{i:0255d}" for i in range(50)],
        "ci_timeout_seconds": 86400,
        "max_parallel_builds": 32,
        "batch_size": 20,
        "batch_wait_seconds": 3600,
        "notify_webhook_url": "https://hooks.example.com/" + "x" * 2022,
        "failure_depth": 8,
        "status_comments": False,
        "flaky_retries": 3,
    }
    response = patch(web, "bad-rest", limits)
    assert response.status_code == 200, response.text
    assert rest_settings(web, "bad-rest") == DEFAULTS | limits
    assert patch(web, "bad-rest", dict.fromkeys(limits)).status_code == 200
    assert rest_settings(web, "bad-rest") == DEFAULTS


def test_unknown_repositories_are_404_and_not_found(web: Web) -> None:
    response = patch(web, "nothing", {"merge_method": "merge"})
    assert response.status_code == 404
    assert response.json() == {"detail": "repository acme/nothing is not known"}
    missing = gql(web, UPDATE, name="nothing", settings={"mergeMethod": "merge"}).json()
    assert missing["data"] == {"updateRepositorySettings": None}
    [error] = missing["errors"]
    assert (error["extensions"]["code"], error["message"]) == (
        "NOT_FOUND",
        "repository acme/nothing is not known",
    )


def test_changing_settings_requires_a_bearer_token(web: Web) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = patch(web, "rest", {"merge_method": "merge"}, headers=headers)
        assert response.status_code == 401
        assert set(response.json()) == {"detail"}
        refused = gql(web, UPDATE, headers=headers, name="rest", settings={"mergeMethod": "merge"})
        assert refused.status_code == 401
    assert rest_settings(web, "rest") == DEFAULTS


def test_bad_graphql_settings_are_bad_input_and_change_nothing(web: Web) -> None:
    response = gql(
        web,
        """mutation {
            empty: updateRepositorySettings(owner: "acme", name: "bad-graphql",
                settings: { queueLabel: " " }) { queueLabel }
            long: updateRepositorySettings(owner: "acme", name: "bad-graphql",
                settings: { queueLabel: "%s" }) { queueLabel }
            method: updateRepositorySettings(owner: "acme", name: "bad-graphql",
                settings: { mergeMethod: "octopus" }) { mergeMethod }
            noChecks: updateRepositorySettings(owner: "acme", name: "bad-graphql",
                settings: { requiredChecks: [] }) { requiredChecks }
            blankCheck: updateRepositorySettings(owner: "acme", name: "bad-graphql",
                settings: { requiredChecks: ["ci", ""] }) { requiredChecks }
            short: updateRepositorySettings(owner: "acme", name: "bad-graphql",
                settings: { ciTimeoutSeconds: 59, queueLabel: "fine" }) { ciTimeoutSeconds }
            long2: updateRepositorySettings(owner: "acme", name: "bad-graphql",
                settings: { ciTimeoutSeconds: 86401 }) { ciTimeoutSeconds }
        }"""
        % ("x" * 101),
    )
    assert response.status_code == 200
    body = response.json()
    aliases = ["empty", "long", "method", "noChecks", "blankCheck", "short", "long2"]
    assert body["data"] == dict.fromkeys(aliases)
    codes = {e["path"][0]: e["extensions"]["code"] for e in body["errors"]}
    assert codes == dict.fromkeys(aliases, "BAD_INPUT")
    messages = {e["path"][0]: e["message"] for e in body["errors"]}
    assert messages["method"] == "merge_method must be one of merge, squash, rebase"
    assert messages["short"] == "ci_timeout_seconds must be between 60 and 86400"
    assert graphql_settings(web, "bad-graphql") == DEFAULTS

    # Wrong types never reach the resolver: GraphQL's own validation refuses them.
    for settings in (
        {"ciTimeoutSeconds": "600"},
        {"requiredChecks": [None]},
        {"paused": True},
    ):
        typed = gql(web, UPDATE, name="bad-graphql", settings=settings)
        assert typed.status_code == 400, typed.text
        assert typed.json().get("data") is None and typed.json()["errors"]
    assert rest_settings(web, "bad-graphql") == DEFAULTS


def test_the_depth_and_cost_limits_hold_for_the_settings_mutation(web: Web) -> None:
    nested = "number"
    for _ in range(5):
        nested = f"repository {{ queue {{ {nested} }} }}"
    deep = gql(
        web,
        'mutation Deep { updateRepositorySettings(owner: "acme", name: "deep", '
        f'settings: {{ mergeMethod: "merge" }}) {{ queue {{ {nested} }} }} }}',
    )
    assert deep.status_code == 400
    assert deep.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_DEEP"
    fields = " ".join(
        f'u{i}: updateRepositorySettings(owner: "acme", name: "deep", '
        f"settings: {{ ciTimeoutSeconds: {60 + i} }}) {{ queue {{ number }} }}"
        for i in range(20)
    )
    costly = gql(web, f"mutation Costly {{ {fields} }}")
    assert costly.status_code == 400
    assert costly.json()["errors"][0]["message"].startswith("The query exceeds the maximum cost")
    assert rest_settings(web, "deep") == DEFAULTS  # no resolver ran


def test_changes_succeed_while_redis_is_down(web: Web) -> None:
    started = time.monotonic()
    assert patch(web, "down", {"merge_method": "merge"}).status_code == 200
    assert update(web, "down", {"mergeMethod": None})["mergeMethod"] == ENV_METHOD
    assert time.monotonic() - started < 5


def test_openapi_document_lists_the_settings_patch(web: Web) -> None:
    paths = web.get("/openapi.json").json()["paths"]
    operation = paths["/api/v1/repos/{owner}/{repo}"]["patch"]
    assert {"200", "401", "404", "422"} <= set(operation["responses"])
    assert "requestBody" in operation
    schemas = web.get("/openapi.json").json()["components"]["schemas"]
    assert set(schemas["RepositorySettingsIn"]["properties"]) == set(DEFAULTS)
    assert set(DEFAULTS) <= set(schemas["RepositoryOut"]["required"])
    # The bounds a client can read before sending anything.
    properties = schemas["RepositorySettingsIn"]["properties"]
    bounds = {
        field: [(o.get("minimum"), o.get("maximum")) for o in properties[field]["anyOf"]]
        for field in (
            "max_parallel_builds",
            "batch_size",
            "batch_wait_seconds",
            "failure_depth",
            "flaky_retries",
        )
    }
    assert bounds == {
        "max_parallel_builds": [(1, 32), (None, None), (None, None)],
        "batch_size": [(1, 20), (None, None)],
        "batch_wait_seconds": [(0, 3600), (None, None)],
        "failure_depth": [(0, 8), (None, None)],
        "flaky_retries": [(0, 3), (None, None)],
    }
    assert [o.get("type") for o in properties["status_comments"]["anyOf"]] == ["boolean", "null"]
    # "auto", on write and on read.
    builds = [o.get("const") for o in properties["max_parallel_builds"]["anyOf"]]
    assert builds == [None, "auto", None]
    shown = schemas["RepositoryOut"]["properties"]["max_parallel_builds"]["anyOf"]
    assert [(o.get("type"), o.get("const")) for o in shown] == [
        ("integer", None),
        ("string", "auto"),
    ]
    modes = [o.get("enum") for o in properties["queue_mode"]["anyOf"]]
    assert modes == [["serial", "parallel"], None]


# -- parallel mode's settings ------------------------------------------------------------


def parallel_settings(body: dict[str, Any]) -> dict[str, Any]:
    return {field: body[field] for field in PARALLEL_DEFAULTS}


def test_parallel_mode_settings_set_through_rest_read_back_as_effective_values(web: Web) -> None:
    wanted = PARALLEL | {"batch_wait_seconds": 120}
    response = patch(web, "parallel-rest", wanted)
    assert response.status_code == 200, response.text
    assert parallel_settings(response.json()) == wanted
    # Everywhere a repository is shown: itself, the list, its queue, GraphQL.
    assert rest_settings(web, "parallel-rest") == DEFAULTS | wanted
    listed = {r["full_name"]: r for r in call(web, "GET", "/api/v1/repos").json()}
    assert parallel_settings(listed["acme/parallel-rest"]) == wanted
    queue = call(web, "GET", "/api/v1/repos/acme/parallel-rest/queue").json()
    assert parallel_settings(queue["repository"]) == wanted
    assert graphql_settings(web, "parallel-rest") == DEFAULTS | wanted


def test_parallel_mode_settings_reset_to_their_defaults_with_null(web: Web) -> None:
    wanted = PARALLEL | {"batch_wait_seconds": 5}
    assert patch(web, "parallel-reset", wanted).status_code == 200
    reset = patch(web, "parallel-reset", dict.fromkeys(wanted))
    assert reset.status_code == 200, reset.text
    assert parallel_settings(reset.json()) == PARALLEL_DEFAULTS
    assert rest_settings(web, "parallel-reset") == DEFAULTS
    assert graphql_settings(web, "parallel-reset") == DEFAULTS


def test_a_batch_wait_of_zero_is_kept_not_taken_for_the_default(web: Web) -> None:
    # 0: a batch not yet full starts at once; it must not read back as the default 60.
    assert patch(web, "parallel-zero", {"batch_wait_seconds": 0}).status_code == 200
    assert rest_settings(web, "parallel-zero") == DEFAULTS | {"batch_wait_seconds": 0}
    assert graphql_settings(web, "parallel-zero") == DEFAULTS | {"batch_wait_seconds": 0}


def test_parallel_mode_settings_accept_both_ends_of_their_ranges(web: Web) -> None:
    for ends in (
        {"queue_mode": "serial", "max_parallel_builds": 1, "batch_size": 1},
        {"queue_mode": "parallel", "max_parallel_builds": 32, "batch_size": 20},
    ):
        for wait in (0, 3600):
            wanted = ends | {"batch_wait_seconds": wait}
            response = patch(web, "parallel-ends", wanted)
            assert response.status_code == 200, (wanted, response.text)
            assert rest_settings(web, "parallel-ends") == DEFAULTS | wanted


def test_graphql_sets_reads_and_resets_parallel_mode_settings(web: Web) -> None:
    wanted = PARALLEL | {"batch_wait_seconds": 0}
    changed = update(web, "parallel-graphql", {camel(f): v for f, v in wanted.items()})
    assert snake(changed) == DEFAULTS | wanted
    assert graphql_settings(web, "parallel-graphql") == DEFAULTS | wanted
    assert rest_settings(web, "parallel-graphql") == DEFAULTS | wanted
    reset = update(web, "parallel-graphql", {camel(f): None for f in wanted})
    assert snake(reset) == DEFAULTS
    assert rest_settings(web, "parallel-graphql") == DEFAULTS


def test_graphql_refuses_out_of_range_parallel_mode_settings_with_bad_input(web: Web) -> None:
    refused = {
        "queueMode": ("batch", "queue_mode must be one of serial, parallel"),
        "maxParallelBuilds": (0, "max_parallel_builds must be between 1 and 32"),
        "batchSize": (21, "batch_size must be between 1 and 20"),
        "batchWaitSeconds": (3601, "batch_wait_seconds must be between 0 and 3600"),
        "failureDepth": (9, "failure_depth must be between 0 and 8"),
        "flakyRetries": (4, "flaky_retries must be between 0 and 3"),
    }
    for field, (value, message) in refused.items():
        # With a good value beside it: a bad one changes nothing at all.
        settings = {field: value, "mergeMethod": "merge"}
        response = gql(web, UPDATE, name="parallel-bad-graphql", settings=settings)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["data"] == {"updateRepositorySettings": None}
        [error] = body["errors"]
        assert (error["extensions"]["code"], error["message"]) == ("BAD_INPUT", message)
    # Wrong types never reach the resolver: GraphQL's own validation refuses them.
    for settings in (
        {"batchSize": "5"},
        {"queueMode": 1},
        {"batchWaitSeconds": 1.5},
        {"failureDepth": "2"},
        {"flakyRetries": "2"},
        {"statusComments": "no"},
        {"maxParallelBuilds": "AUTO"},
        {"maxParallelBuilds": "4"},
        {"maxParallelBuilds": 4.5},
        {"maxParallelBuilds": True},
    ):
        typed = gql(web, UPDATE, name="parallel-bad-graphql", settings=settings)
        assert typed.status_code == 400, typed.text
    assert rest_settings(web, "parallel-bad-graphql") == DEFAULTS


def test_a_settings_change_wakes_the_repositorys_queue(
    start_web: StartWeb, sqlite_url: str, redis_url: str
) -> None:
    repo_id = REPO_ID + 100
    seed(sqlite_url, repo_id=repo_id, owner="acme", name="woken")
    client = redis.Redis.from_url(redis_url)
    keys = [f"arq:job:evaluate:{repo_id}", f"mergequeue:dirty:{repo_id}"]
    try:
        web = start_web(DATABASE_URL=sqlite_url, API_TOKENS=TOKEN, REDIS_URL=redis_url)
        changes: list[Callable[[], httpx.Response]] = [
            lambda: patch(web, "woken", {"required_checks": ["ci"]}),
            lambda: gql(web, UPDATE, name="woken", settings={"requiredChecks": None}),
        ]
        for change in changes:
            client.delete(*keys)
            client.zrem("arq:queue", f"evaluate:{repo_id}")
            assert change().status_code == 200
            assert client.exists(*keys) == 2
            assert client.zscore("arq:queue", f"evaluate:{repo_id}") is not None
    finally:
        # No worker of a later test should evaluate a repository it has never seen.
        client.zrem("arq:queue", f"evaluate:{repo_id}")
        client.delete(*keys)
        client.close()


def test_a_notify_webhook_url_is_set_and_reset_through_rest_and_graphql(web: Web) -> None:
    url = "https://hooks.example.com/services/T0/B0/secret"
    assert patch(web, "notify", {"notify_webhook_url": f"  {url} "}).status_code == 200
    assert rest_settings(web, "notify") == DEFAULTS | {"notify_webhook_url": url}
    assert graphql_settings(web, "notify") == DEFAULTS | {"notify_webhook_url": url}
    other = "http://chat.internal:8065/hooks/abc"
    answer = gql(web, UPDATE, name="notify", settings={"notifyWebhookUrl": other}).json()
    assert answer["data"]["updateRepositorySettings"]["notifyWebhookUrl"] == other
    refused = gql(web, UPDATE, name="notify", settings={"notifyWebhookUrl": "gopher://x"}).json()
    assert "notify_webhook_url must be an http:// or https:// URL" in str(refused["errors"])
    assert patch(web, "notify", {"notify_webhook_url": None}).status_code == 200
    assert rest_settings(web, "notify") == DEFAULTS


# -- flaky retries: in effect only where the installation lets the queue re-run jobs -------


def in_effect(web: Web, name: str) -> dict[str, bool]:
    """flaky_retries_in_effect wherever a repository is shown."""
    listed = {r["full_name"]: r for r in call(web, "GET", "/api/v1/repos").json()}
    queue = call(web, "GET", f"/api/v1/repos/acme/{name}/queue").json()
    query = f'{{ repository(owner: "acme", name: "{name}") {{ flakyRetriesInEffect }} }}'
    return {
        "rest": call(web, "GET", f"/api/v1/repos/acme/{name}").json()["flaky_retries_in_effect"],
        "list": listed[f"acme/{name}"]["flaky_retries_in_effect"],
        "queue": queue["repository"]["flaky_retries_in_effect"],
        "graphql": gql(web, query).json()["data"]["repository"]["flakyRetriesInEffect"],
    }


def everywhere(value: bool) -> dict[str, bool]:
    return dict.fromkeys(["rest", "list", "queue", "graphql"], value)


def set_flaky(web: Web, name: str, **settings: Any) -> tuple[int, bool]:
    """PATCH the settings; the answer's flaky_retries and flaky_retries_in_effect."""
    answer = patch(web, name, settings)
    assert answer.status_code == 200, answer.text
    return answer.json()["flaky_retries"], answer.json()["flaky_retries_in_effect"]


def test_flaky_retries_are_in_effect_in_parallel_mode_where_actions_write_was_granted(
    web: Web,
) -> None:
    assert in_effect(web, "flaky-granted") == everywhere(False)  # 0: nothing to re-run
    assert set_flaky(web, "flaky-granted", queue_mode="parallel", flaky_retries=2) == (2, True)
    assert in_effect(web, "flaky-granted") == everywhere(True)
    changed = gql(
        web,
        'mutation { updateRepositorySettings(owner: "acme", name: "flaky-granted",'
        " settings: { flakyRetries: 0 }) { flakyRetries flakyRetriesInEffect } }",
    ).json()["data"]["updateRepositorySettings"]
    assert changed == {"flakyRetries": 0, "flakyRetriesInEffect": False}


def test_flaky_retries_are_not_in_effect_where_actions_write_was_not_granted(web: Web) -> None:
    assert set_flaky(web, "flaky-refused", queue_mode="parallel", flaky_retries=2) == (2, False)
    assert in_effect(web, "flaky-refused") == everywhere(False)


def test_flaky_retries_are_not_in_effect_without_a_known_installation(web: Web) -> None:
    # No installation stored (or a single GITHUB_TOKEN, whose permissions are not known).
    assert set_flaky(web, "flaky-none", queue_mode="parallel", flaky_retries=3) == (3, False)
    assert in_effect(web, "flaky-none") == everywhere(False)


def test_flaky_retries_are_not_in_effect_in_serial_mode(web: Web) -> None:
    # Serial mode has no staging builds to re-run, whatever the installation granted.
    assert set_flaky(web, "flaky-serial", queue_mode="serial", flaky_retries=2) == (2, False)
    assert in_effect(web, "flaky-serial") == everywhere(False)


# -- max_parallel_builds: auto ------------------------------------------------------------


def builds_shown(web: Web, name: str) -> dict[str, Any]:
    """max_parallel_builds wherever a repository is shown (GraphQL: its two fields)."""
    listed = {r["full_name"]: r for r in call(web, "GET", "/api/v1/repos").json()}
    queue = call(web, "GET", f"/api/v1/repos/acme/{name}/queue").json()
    query = (
        f'{{ repository(owner: "acme", name: "{name}") {{ maxParallelBuilds '
        "maxParallelBuildsAuto } }"
    )
    return {
        "rest": call(web, "GET", f"/api/v1/repos/acme/{name}").json()["max_parallel_builds"],
        "list": listed[f"acme/{name}"]["max_parallel_builds"],
        "queue": queue["repository"]["max_parallel_builds"],
        "graphql": gql(web, query).json()["data"]["repository"],
    }


# GraphQL keeps maxParallelBuilds an Int: under auto, the number used until enough builds
# have been measured (the default).
SHOWN_AUTO = {
    "rest": "auto",
    "list": "auto",
    "queue": "auto",
    "graphql": {"maxParallelBuilds": 4, "maxParallelBuildsAuto": True},
}


def test_rest_sets_max_parallel_builds_to_auto_and_every_answer_shows_auto(web: Web) -> None:
    response = patch(web, "auto-rest", {"max_parallel_builds": "auto"})
    assert response.status_code == 200, response.text
    assert response.json()["max_parallel_builds"] == "auto"
    assert builds_shown(web, "auto-rest") == SHOWN_AUTO
    assert rest_settings(web, "auto-rest") == DEFAULTS | {"max_parallel_builds": "auto"}
    assert graphql_settings(web, "auto-rest") == DEFAULTS | {"max_parallel_builds": "auto"}


def test_graphql_sets_max_parallel_builds_to_the_string_auto(web: Web) -> None:
    changed = update(web, "auto-graphql", {"maxParallelBuilds": "auto"})
    assert (changed["maxParallelBuilds"], changed["maxParallelBuildsAuto"]) == (4, True)
    assert builds_shown(web, "auto-graphql") == SHOWN_AUTO
    # Written in the query itself too, next to a number written as before.
    for literal, expected in (('"auto"', (4, True)), ("8", (8, False)), ('"auto"', (4, True))):
        answer = gql(
            web,
            'mutation { updateRepositorySettings(owner: "acme", name: "auto-graphql",'
            f" settings: {{ maxParallelBuilds: {literal} }}) {{"
            " maxParallelBuilds maxParallelBuildsAuto } }",
        ).json()
        shown = answer["data"]["updateRepositorySettings"]
        assert (shown["maxParallelBuilds"], shown["maxParallelBuildsAuto"]) == expected, answer


def test_a_number_or_null_after_auto_ends_auto(web: Web) -> None:
    assert patch(web, "auto-off", {"max_parallel_builds": "auto"}).status_code == 200
    assert patch(web, "auto-off", {"max_parallel_builds": 8}).json()["max_parallel_builds"] == 8
    assert builds_shown(web, "auto-off")["graphql"] == {
        "maxParallelBuilds": 8,
        "maxParallelBuildsAuto": False,
    }
    update(web, "auto-off", {"maxParallelBuilds": "auto"})
    assert patch(web, "auto-off", {"max_parallel_builds": None}).json()["max_parallel_builds"] == 4
    update(web, "auto-off", {"maxParallelBuilds": "auto"})
    reset = update(web, "auto-off", {"maxParallelBuilds": None})
    assert (reset["maxParallelBuilds"], reset["maxParallelBuildsAuto"]) == (4, False)
    assert rest_settings(web, "auto-off") == DEFAULTS
