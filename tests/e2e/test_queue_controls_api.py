"""Freezes, priorities and flake statistics through REST and GraphQL on the real web
process, over SQLite and PostgreSQL (no worker: what the queue then does with them is in
tests/e2e/test_throughput_promises.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis

from tests.e2e.conftest import StartWeb, Web
from tests.support.db import execute
from tests.support.seed import Pull, seed

TOKEN = "controls-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
REPO_ID = 931_000_001
NAMES = ["freeze", "freeze-graphql", "priority", "priority-graphql", "flakes"]
FREEZE_FIELDS = ("frozen", "freeze_reason", "frozen_from", "frozen_until")
NOT_FROZEN = dict.fromkeys(FREEZE_FIELDS) | {"frozen": False}


@pytest.fixture(scope="module")
def web(start_module_web: StartWeb, module_database_url: str) -> Web:
    for i, name in enumerate(NAMES):
        pulls = [Pull(1, queued=True), Pull(2, queued=True), Pull(3, queued=True), Pull(4)]
        seed(module_database_url, repo_id=REPO_ID + i, owner="acme", name=name, pulls=pulls)
    execute(
        module_database_url,
        "INSERT INTO check_flakes (repository_id, check_name, failures, contradicted, "
        f"updated_at) VALUES ({REPO_ID + NAMES.index('flakes')}, 'build', 4, 3, "
        "'2026-06-01T12:00:00+00:00'), "
        f"({REPO_ID + NAMES.index('flakes')}, 'lint', 2, 0, '2026-06-01T12:00:00+00:00')",
    )
    return start_module_web(
        DATABASE_URL=module_database_url, API_TOKENS=TOKEN, REDIS_URL=UNREACHABLE_REDIS
    )


def call(web: Web, method: str, path: str, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("headers", AUTH)
    return httpx.request(method, web.url + path, timeout=10, **kwargs)


def gql(web: Web, query: str, headers: dict[str, str] = AUTH, **variables: Any) -> httpx.Response:
    body = {"query": query, "variables": variables or None}
    return httpx.post(web.url + "/graphql", json=body, headers=headers, timeout=10)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def freeze_of(body: dict[str, Any]) -> dict[str, Any]:
    return {field: body[field] for field in FREEZE_FIELDS}


# -- freezes ---------------------------------------------------------------------------


def test_a_freeze_is_set_shown_everywhere_and_lifted_through_rest(web: Web) -> None:
    path = "/api/v1/repos/acme/freeze"
    assert freeze_of(call(web, "GET", path).json()) == NOT_FROZEN
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    response = call(
        web, "PUT", f"{path}/freeze", json={"reason": " release 2.0 ", "until": iso(until)}
    )
    assert response.status_code == 200, response.text
    frozen = {"frozen": True, "freeze_reason": "release 2.0", "frozen_from": None}
    frozen["frozen_until"] = iso(until)
    assert freeze_of(response.json()) == frozen
    # Wherever the repository is shown: itself, the list, its queue, GraphQL.
    assert freeze_of(call(web, "GET", path).json()) == frozen
    listed = {r["full_name"]: r for r in call(web, "GET", "/api/v1/repos").json()}
    assert freeze_of(listed["acme/freeze"]) == frozen
    assert freeze_of(call(web, "GET", f"{path}/queue").json()["repository"]) == frozen
    shown = gql(
        web, '{ repository(owner: "acme", name: "freeze") { frozen freezeReason frozenUntil } }'
    ).json()["data"]["repository"]
    assert shown == {"frozen": True, "freezeReason": "release 2.0", "frozenUntil": iso(until)}

    # Later: set, but not holding yet. A new freeze replaces the old one.
    start = until + timedelta(days=1)
    later = {"reason": "holidays", "from": iso(start), "until": iso(start + timedelta(days=3))}
    response = call(web, "PUT", f"{path}/freeze", json=later)
    assert response.status_code == 200, response.text
    assert freeze_of(response.json()) == {
        "frozen": False,
        "freeze_reason": "holidays",
        "frozen_from": later["from"],
        "frozen_until": later["until"],
    }
    # Offsets are kept as the instant they name, shown in UTC.
    response = call(
        web, "PUT", f"{path}/freeze", json={"reason": "x", "from": "2999-01-01T02:00:00+02:00"}
    )
    assert response.json()["frozen_from"] == "2999-01-01T00:00:00Z"

    lifted = call(web, "DELETE", f"{path}/freeze")
    assert lifted.status_code == 200 and freeze_of(lifted.json()) == NOT_FROZEN
    # Lifting no freeze is no error.
    assert call(web, "DELETE", f"{path}/freeze").status_code == 200
    assert (
        call(web, "PUT", "/api/v1/repos/acme/nothing/freeze", json={"reason": "x"}).status_code
        == 404
    )
    assert call(web, "DELETE", "/api/v1/repos/acme/nothing/freeze").status_code == 404


def test_a_freeze_on_one_base_branch_is_set_and_shown_through_rest_and_graphql(web: Web) -> None:
    path = "/api/v1/repos/acme/freeze"
    body = {"reason": "release 2.0", "branch": "refs/heads/release/2.0"}
    response = call(web, "PUT", f"{path}/freeze", json=body)
    assert response.status_code == 200, response.text
    # Stored as the branch's short name, as pull requests name their base.
    assert response.json()["freeze_branch"] == "release/2.0"
    assert response.json()["frozen"] is True
    assert call(web, "GET", path).json()["freeze_branch"] == "release/2.0"
    shown = gql(web, '{ repository(owner: "acme", name: "freeze") { freezeBranch } }').json()
    assert shown["data"]["repository"] == {"freezeBranch": "release/2.0"}
    # A freeze without a branch holds every base branch; lifting forgets the branch.
    response = call(web, "PUT", f"{path}/freeze", json={"reason": "everything"})
    assert response.json()["freeze_branch"] is None
    call(web, "PUT", f"{path}/freeze", json=body)
    lifted = call(web, "DELETE", f"{path}/freeze").json()
    assert lifted["freeze_branch"] is None and freeze_of(lifted) == NOT_FROZEN


@pytest.mark.parametrize(
    "branch",
    [
        *("", "a b", "a..b", "-x", ".x", "x.lock", "x/", "a//b", "a~1", "a:b", "a\x00b"),
        *("refs/heads/", 5, "x" * 256),
    ],
    ids=repr,
)
def test_a_freeze_on_a_bad_branch_name_is_422_naming_branch_and_changes_nothing(
    web: Web, branch: object
) -> None:
    response = call(
        web, "PUT", "/api/v1/repos/acme/freeze/freeze", json={"reason": "x", "branch": branch}
    )
    assert response.status_code == 422, response.text
    [error, *_] = response.json()["detail"]
    assert error["loc"][:2] == ["body", "branch"], error
    assert freeze_of(call(web, "GET", "/api/v1/repos/acme/freeze").json()) == NOT_FROZEN


FUTURE = "2999-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "reason"),
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": "x" * 501}, "reason"),
        ({"reason": "a\x00b"}, "reason"),
        ({"reason": 5}, "reason"),
        ({"reason": "x", "until": "2999-01-01T00:00:00"}, "until"),
        ({"reason": "x", "from": "2999-01-01T00:00:00"}, "from"),
        ({"reason": "x", "until": "tomorrow"}, "until"),
        ({"reason": "x", "until": "2000-01-01T00:00:00Z"}, "until"),
        ({"reason": "x", "from": FUTURE, "until": FUTURE}, "until"),
        ({"reason": "x", "from": FUTURE, "until": "2998-01-01T00:00:00Z"}, "until"),
        ({"reason": "x", "until": "9999-12-31T23:59:59-23:59"}, "until"),
        ({"reason": "x", "since": FUTURE}, "since"),
        ({"reason": "x", "from_": FUTURE}, "from_"),
    ],
    ids=repr,
)
def test_bad_freezes_are_422_naming_the_field_and_change_nothing(
    web: Web, body: dict[str, Any], field: str
) -> None:
    response = call(web, "PUT", "/api/v1/repos/acme/freeze/freeze", json=body)
    assert response.status_code == 422, response.text
    [error, *_] = response.json()["detail"]
    assert error["loc"][:2] == ["body", field], error
    assert freeze_of(call(web, "GET", "/api/v1/repos/acme/freeze").json()) == NOT_FROZEN


def test_the_limits_of_a_reason_are_accepted(web: Web) -> None:
    for reason in ("x", "y" * 500, "release\nnotes: ünïcødé ✓"):
        response = call(web, "PUT", "/api/v1/repos/acme/freeze/freeze", json={"reason": reason})
        assert response.status_code == 200, response.text
        assert response.json()["freeze_reason"] == reason
    call(web, "DELETE", "/api/v1/repos/acme/freeze/freeze")


FREEZE = (
    "mutation F($r: String!, $f: DateTime, $u: DateTime) {"
    ' freezeQueue(owner: "acme", name: "freeze-graphql", reason: $r, from: $f, until: $u) {'
    " frozen freezeReason frozenFrom frozenUntil } }"
)
UNFREEZE = (
    'mutation { unfreezeQueue(owner: "acme", name: "freeze-graphql") {'
    " frozen freezeReason frozenFrom frozenUntil } }"
)


def test_graphql_freezes_and_unfreezes_as_rest_does(web: Web) -> None:
    until = iso(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1))
    body = gql(web, FREEZE, r="deploy window", u=until).json()
    assert body["data"]["freezeQueue"] == {
        "frozen": True,
        "freezeReason": "deploy window",
        "frozenFrom": None,
        "frozenUntil": until,
    }
    rest = call(web, "GET", "/api/v1/repos/acme/freeze-graphql").json()
    assert freeze_of(rest) == {
        "frozen": True,
        "freeze_reason": "deploy window",
        "frozen_from": None,
        "frozen_until": until,
    }
    # BAD_INPUT for what the domain refuses, as REST's 422.
    refused = {
        "until must be after from": {"r": "x", "f": FUTURE, "u": FUTURE},
        "until must be in the future": {"r": "x", "u": "2000-01-01T00:00:00Z"},
        "until must name its timezone (e.g. Z or +02:00)": {"r": "x", "u": "2999-01-01T00:00"},
        "reason must be a non-empty text": {"r": "  "},
        "reason must be at most 500 characters": {"r": "x" * 501},
    }
    for message, variables in refused.items():
        answer = gql(web, FREEZE, **variables).json()
        assert answer["data"] == {"freezeQueue": None}
        [error] = answer["errors"]
        assert (error["extensions"]["code"], error["message"]) == ("BAD_INPUT", message)
    # Not a date and time at all: GraphQL's own validation (400).
    assert gql(web, FREEZE, r="x", u="tomorrow").status_code == 400
    assert freeze_of(call(web, "GET", "/api/v1/repos/acme/freeze-graphql").json())["frozen"]

    lifted = gql(web, UNFREEZE).json()["data"]["unfreezeQueue"]
    assert lifted == {
        "frozen": False,
        "freezeReason": None,
        "frozenFrom": None,
        "frozenUntil": None,
    }
    missing = gql(web, FREEZE.replace("freeze-graphql", "nothing"), r="x").json()
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_freezing_and_unfreezing_wake_the_repositorys_queue(
    start_web: StartWeb, sqlite_url: str, redis_url: str
) -> None:
    repo_id = REPO_ID + 100
    seed(sqlite_url, repo_id=repo_id, owner="acme", name="woken")
    client = redis.Redis.from_url(redis_url)
    keys = [f"arq:job:evaluate:{repo_id}", f"mergequeue:dirty:{repo_id}"]
    try:
        web = start_web(DATABASE_URL=sqlite_url, API_TOKENS=TOKEN, REDIS_URL=redis_url)
        for method, body in (("PUT", {"reason": "release"}), ("DELETE", None)):
            client.delete(*keys)
            client.zrem("arq:queue", f"evaluate:{repo_id}")
            response = call(web, method, "/api/v1/repos/acme/woken/freeze", json=body)
            assert response.status_code == 200, response.text
            assert client.exists(*keys) == 2
            assert client.zscore("arq:queue", f"evaluate:{repo_id}") is not None
    finally:
        client.zrem("arq:queue", f"evaluate:{repo_id}")
        client.delete(*keys)
        client.close()


# -- priority --------------------------------------------------------------------------


def order(web: Web, name: str) -> list[tuple[int, str]]:
    entries = call(web, "GET", f"/api/v1/repos/acme/{name}/queue").json()["entries"]
    return [(e["number"], e["priority"]) for e in entries]


def test_priority_through_rest_reorders_the_queue_and_shows_on_each_entry(web: Web) -> None:
    queue = "/api/v1/repos/acme/priority/queue"
    assert order(web, "priority") == [(1, "normal"), (2, "normal"), (3, "normal")]
    urgent = call(web, "PATCH", f"{queue}/3", json={"priority": "urgent"})
    assert urgent.status_code == 200, urgent.text
    assert (urgent.json()["priority"], urgent.json()["position"]) == ("urgent", 1)
    assert order(web, "priority") == [(3, "urgent"), (1, "normal"), (2, "normal")]
    # Enqueued urgent: behind the urgent ones, ahead of the normal ones.
    queued = call(web, "POST", queue, json={"number": 4, "priority": "urgent"})
    assert queued.status_code == 201, queued.text
    assert (queued.json()["priority"], queued.json()["position"]) == ("urgent", 2)
    assert order(web, "priority") == [(3, "urgent"), (4, "urgent"), (1, "normal"), (2, "normal")]
    status = call(web, "GET", "/api/v1/repos/acme/priority/pulls/4").json()
    assert (status["priority"], status["position"]) == ("urgent", 2)
    # Back to normal: among the normal ones by its queueing time.
    assert call(web, "PATCH", f"{queue}/3", json={"priority": "normal"}).status_code == 200
    assert order(web, "priority") == [(4, "urgent"), (1, "normal"), (2, "normal"), (3, "normal")]

    for body in ({"priority": "URGENT"}, {"priority": None}, {}, {"priority": 1}, {"p": "urgent"}):
        refused = call(web, "PATCH", f"{queue}/1", json=body)
        assert refused.status_code == 422, (body, refused.text)
    assert call(web, "POST", queue, json={"number": 9, "priority": "high"}).status_code == 422
    missing = call(web, "PATCH", f"{queue}/99", json={"priority": "urgent"})
    assert missing.status_code == 404
    assert missing.json() == {"detail": "pull request #99 is not queued"}
    # The same bearer token as every other write.
    denied = call(web, "PATCH", f"{queue}/1", json={"priority": "urgent"}, headers={})
    assert denied.status_code == 401
    assert call(web, "POST", queue, json={"number": 4}, headers={}).status_code == 401
    # Dequeued: no priority to show.
    call(web, "DELETE", f"{queue}/4")
    left = call(web, "GET", "/api/v1/repos/acme/priority/pulls/4").json()
    assert (left["queued"], left["priority"]) == (False, None)


SET_PRIORITY = (
    "mutation P($n: Int!, $p: String!) {"
    ' setPriority(owner: "acme", name: "priority-graphql", number: $n, priority: $p) {'
    " number priority position } }"
)


def test_priority_through_graphql(web: Web) -> None:
    answer = gql(web, SET_PRIORITY, n=2, p="urgent").json()
    assert answer["data"]["setPriority"] == {"number": 2, "priority": "urgent", "position": 1}
    queued = gql(
        web,
        'mutation { enqueue(owner: "acme", name: "priority-graphql", number: 4, '
        'priority: "urgent") { number priority position } }',
    ).json()
    assert queued["data"]["enqueue"] == {"number": 4, "priority": "urgent", "position": 2}
    shown = gql(
        web, '{ repository(owner: "acme", name: "priority-graphql") { queue { number priority } } }'
    ).json()["data"]["repository"]["queue"]
    assert [(e["number"], e["priority"]) for e in shown] == order(web, "priority-graphql")
    assert order(web, "priority-graphql") == [
        (2, "urgent"),
        (4, "urgent"),
        (1, "normal"),
        (3, "normal"),
    ]
    for variables, code in (
        ({"n": 1, "p": "high"}, "BAD_INPUT"),
        ({"n": 99, "p": "urgent"}, "NOT_QUEUED"),
    ):
        refused = gql(web, SET_PRIORITY, **variables).json()
        assert refused["data"] == {"setPriority": None}
        assert refused["errors"][0]["extensions"]["code"] == code
    assert gql(web, SET_PRIORITY, headers={}, n=1, p="urgent").status_code == 401


# -- flake statistics ------------------------------------------------------------------


def test_flake_statistics_per_check_through_rest_and_graphql(web: Web) -> None:
    response = call(web, "GET", "/api/v1/repos/acme/flakes/flakes")
    assert response.status_code == 200, response.text
    assert response.json() == [
        {
            "check": "build",
            "failures": 4,
            "contradicted": 3,
            "flake_rate": 0.75,
            "updated_at": "2026-06-01T12:00:00Z",
        },
        {
            "check": "lint",
            "failures": 2,
            "contradicted": 0,
            "flake_rate": 0.0,
            "updated_at": "2026-06-01T12:00:00Z",
        },
    ]
    shown = gql(
        web,
        '{ repository(owner: "acme", name: "flakes") {'
        " flakes { check failures contradicted flakeRate updatedAt } } }",
    ).json()["data"]["repository"]["flakes"]
    assert shown == [
        {
            "check": r["check"],
            "failures": r["failures"],
            "contradicted": r["contradicted"],
            "flakeRate": r["flake_rate"],
            "updatedAt": r["updated_at"],
        }
        for r in response.json()
    ]
    assert call(web, "GET", "/api/v1/repos/acme/priority/flakes").json() == []
    assert call(web, "GET", "/api/v1/repos/acme/nothing/flakes").status_code == 404
    assert call(web, "GET", "/api/v1/repos/acme/flakes/flakes", headers={}).status_code == 401


def test_openapi_documents_the_new_operations(web: Web) -> None:
    document = web.get("/openapi.json").json()
    paths = document["paths"]
    assert {"put", "delete"} <= set(paths["/api/v1/repos/{owner}/{repo}/freeze"])
    assert "patch" in paths["/api/v1/repos/{owner}/{repo}/queue/{number}"]
    assert "get" in paths["/api/v1/repos/{owner}/{repo}/flakes"]
    schemas = document["components"]["schemas"]
    freeze = schemas["FreezeIn"]["properties"]
    assert set(freeze) == {"reason", "from", "until", "branch"}
    assert (freeze["reason"]["minLength"], freeze["reason"]["maxLength"]) == (1, 500)
    assert schemas["PriorityIn"]["properties"]["priority"]["enum"] == ["urgent", "normal"]
    assert set(FREEZE_FIELDS) <= set(schemas["RepositoryOut"]["required"])
    assert "priority" in schemas["QueueEntryOut"]["properties"]


FREEZE_BRANCH = (
    "mutation F($b: String) {"
    ' freezeQueue(owner: "acme", name: "freeze-graphql", reason: "release", branch: $b) {'
    " frozen freezeBranch } }"
)


def test_graphql_freezes_one_base_branch_and_refuses_a_bad_name(web: Web) -> None:
    body = gql(web, FREEZE_BRANCH, b="main").json()
    assert body["data"]["freezeQueue"] == {"frozen": True, "freezeBranch": "main"}
    answer = gql(web, FREEZE_BRANCH, b="a..b").json()
    [error] = answer["errors"]
    assert (error["extensions"]["code"], error["message"]) == (
        "BAD_INPUT",
        "branch is not a valid branch name",
    )
    gql(web, UNFREEZE)
