"""The GraphQL API at POST /graphql on the real web process: queries, mutations, limits
checked before execution, introspection, and `graphql_requests_total`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis
from graphql import get_introspection_query
from prometheus_client.parser import text_string_to_metric_families

from mergequeue.models import PullRequestState
from tests.e2e.conftest import StartWeb, Web
from tests.support.seed import Pull, seed

TOKEN = "graphql-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
REPO_ID = 920_000_001

PULLS = [
    Pull(1, queued=True),
    Pull(2, queued=True),
    Pull(3, queued=True, base_ref="release"),
    *(Pull(n) for n in range(10, 30)),
    Pull(40, state=PullRequestState.CLOSED),
]
QUEUE_FIELDS = "position number title author baseRef headSha status statusDetail enqueuedAt"


@pytest.fixture(scope="module")
def web(start_module_web: StartWeb, module_database_url: str) -> Web:
    seed(module_database_url, repo_id=REPO_ID, owner="acme", name="widgets", pulls=PULLS)
    seed(module_database_url, repo_id=REPO_ID + 1, owner="acme", name="gadgets", paused=True)
    return start_module_web(
        DATABASE_URL=module_database_url,
        API_TOKENS=TOKEN,
        REDIS_URL=UNREACHABLE_REDIS,
        SERVE_PROMETHEUS_ENDPOINT="true",
    )


def post(web: Web, body: Any, headers: dict[str, str] = AUTH, **kwargs: Any) -> httpx.Response:
    return httpx.post(web.url + "/graphql", json=body, headers=headers, timeout=10, **kwargs)


def gql(web: Web, query: str, **variables: Any) -> httpx.Response:
    return post(web, {"query": query, "variables": variables or None})


def counts(web: Web) -> dict[tuple[str, str], float]:
    text = web.get("/debug/metrics").text
    return {
        (s.labels["operation_name"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "graphql_requests"
        for s in family.samples
        if s.name == "graphql_requests_total"
    }


def queued_numbers(web: Web) -> list[int]:
    response = gql(web, '{ repository(owner: "acme", name: "widgets") { queue { number } } }')
    return [e["number"] for e in response.json()["data"]["repository"]["queue"]]


def test_rest_and_graphql_return_the_same_queue(web: Web) -> None:
    rest = httpx.get(web.url + "/api/v1/repos/acme/widgets/queue", headers=AUTH, timeout=10)
    query = f"""query SameQueue {{
        repository(owner: "acme", name: "widgets") {{ queue {{ {QUEUE_FIELDS} }} }}
    }}"""
    response = gql(web, query)
    assert response.status_code == 200 and "errors" not in response.json()
    graphql_queue = response.json()["data"]["repository"]["queue"]
    rest_queue = [
        {
            "position": e["position"],
            "number": e["number"],
            "title": e["title"],
            "author": e["author"],
            "baseRef": e["base_ref"],
            "headSha": e["head_sha"],
            "status": e["status"],
            "statusDetail": e["status_detail"],
            "enqueuedAt": e["enqueued_at"],
        }
        for e in rest.json()["entries"]
    ]
    assert graphql_queue == rest_queue
    assert [(e["baseRef"], e["position"]) for e in graphql_queue][:3] == [
        ("main", 1),
        ("main", 2),
        ("release", 1),
    ]


def test_queries_read_repositories_a_repository_and_a_pull_request_status(web: Web) -> None:
    repositories = gql(web, "{ repositories { id fullName paused queueLabel mergeMethod } }")
    assert repositories.json()["data"]["repositories"] == [
        {
            "id": str(REPO_ID + 1),
            "fullName": "acme/gadgets",
            "paused": True,
            "queueLabel": "mergequeue",
            "mergeMethod": "squash",
        },
        {
            "id": str(REPO_ID),
            "fullName": "acme/widgets",
            "paused": False,
            "queueLabel": "mergequeue",
            "mergeMethod": "squash",
        },
    ]
    status = gql(
        web,
        """query Status($number: Int!) {
            pullRequestStatus(owner: "acme", name: "widgets", number: $number) {
                number queued position baseRef status repository { fullName }
            }
            unknownPull: pullRequestStatus(owner: "acme", name: "widgets", number: 9999) {
                number
            }
            unknownRepository: repository(owner: "acme", name: "nothing") { id }
        }""",
        number=2,
    ).json()
    assert status == {
        "data": {
            "pullRequestStatus": {
                "number": 2,
                "queued": True,
                "position": 2,
                "baseRef": "main",
                "status": "waiting",
                "repository": {"fullName": "acme/widgets"},
            },
            "unknownPull": None,
            "unknownRepository": None,
        }
    }


def test_mutations_enqueue_dequeue_pause_and_resume(web: Web) -> None:
    args = 'owner: "acme", name: "widgets", number: 10'
    enqueued = gql(web, f"mutation {{ enqueue({args}) {{ number queued position }} }}")
    assert enqueued.json() == {"data": {"enqueue": {"number": 10, "queued": True, "position": 3}}}
    assert 10 in queued_numbers(web)
    dequeued = gql(web, f"mutation {{ dequeue({args}) {{ queued lastOutcome lastReason }} }}")
    assert dequeued.json()["data"]["dequeue"] == {
        "queued": False,
        "lastOutcome": "dequeued",
        "lastReason": "api",
    }
    assert 10 not in queued_numbers(web)
    paused = gql(web, 'mutation { pause(owner: "acme", name: "widgets") { fullName paused } }')
    assert paused.json()["data"]["pause"] == {"fullName": "acme/widgets", "paused": True}
    rest = httpx.get(web.url + "/api/v1/repos/acme/widgets", headers=AUTH, timeout=10)
    assert rest.json()["paused"] is True
    resumed = gql(web, 'mutation { resume(owner: "acme", name: "widgets") { paused } }')
    assert resumed.json()["data"]["resume"] == {"paused": False}


def test_domain_errors_come_back_as_graphql_errors_with_a_code(web: Web) -> None:
    response = gql(
        web,
        """mutation {
            again: enqueue(owner: "acme", name: "widgets", number: 1) { number }
            closed: enqueue(owner: "acme", name: "widgets", number: 40) { number }
            notQueued: dequeue(owner: "acme", name: "widgets", number: 11) { number }
            unknown: pause(owner: "acme", name: "nothing") { paused }
            zero: enqueue(owner: "acme", name: "widgets", number: 0) { number }
            fine: enqueue(owner: "acme", name: "widgets", number: 12) { queued }
        }""",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {
        "again": None,
        "closed": None,
        "notQueued": None,
        "unknown": None,
        "zero": None,
        "fine": {"queued": True},
    }
    errors = {e["path"][0]: (e["extensions"]["code"], e["message"]) for e in body["errors"]}
    assert errors == {
        "again": ("ALREADY_QUEUED", "pull request #1 is already queued"),
        "closed": ("NOT_OPEN", "pull request #40 is closed"),
        "notQueued": ("NOT_QUEUED", "pull request #11 is not queued"),
        "unknown": ("NOT_FOUND", "repository acme/nothing is not known"),
        "zero": ("BAD_INPUT", "number must be a positive pull request number, got 0"),
    }
    too_big = gql(
        web, 'mutation { enqueue(owner: "acme", name: "widgets", number: 2147483648) { number } }'
    )
    assert too_big.status_code == 400 and "data" not in too_big.json()


def test_an_over_deep_query_is_rejected_before_execution(web: Web) -> None:
    nested = "number"
    for _ in range(5):
        nested = f"repository {{ queue {{ {nested} }} }}"
    response = gql(
        web,
        f'mutation Deep {{ enqueue(owner: "acme", name: "widgets", number: 13) {{ {nested} }} }}',
    )
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "message": "'Deep' nests 12 levels deep; at most 8 are allowed",
                "locations": [{"line": 1, "column": 1}],
                "extensions": {"code": "QUERY_TOO_DEEP"},
            }
        ]
    }
    assert 13 not in queued_numbers(web)  # the mutation's resolver never ran
    # Depth through fragments counts the same.
    fragments = """
        query ViaFragments { repository(owner: "acme", name: "widgets") { ...A } }
        fragment A on Repository { queue { repository { ...B } } }
        fragment B on Repository { queue { repository { queue { repository { queue {
            repository { name } } } } } } }
    """
    assert gql(web, fragments).json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_DEEP"


def test_an_over_costly_query_is_rejected_before_execution(web: Web) -> None:
    numbers = range(14, 29)
    fields = " ".join(
        f'n{n}: enqueue(owner: "acme", name: "widgets", number: {n}) '
        f"{{ number repository {{ queue {{ number }} }} }}"
        for n in numbers
    )
    response = gql(web, f"mutation Costly {{ {fields} }}")
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["message"].startswith("The query exceeds the maximum cost of 200.")
    assert not set(numbers) & set(queued_numbers(web))


def test_introspection_is_off_by_default_and_on_with_the_setting(
    web: Web, start_web: StartWeb, sqlite_url: str
) -> None:
    introspection = {"query": get_introspection_query()}
    refused = post(web, introspection)
    assert refused.status_code == 400
    assert "introspection is disabled" in refused.json()["errors"][0]["message"]
    assert gql(web, "{ __typename }").json() == {"data": {"__typename": "Query"}}

    on = start_web(DATABASE_URL=sqlite_url, API_TOKENS=TOKEN, GRAPHQL_INTROSPECTION="true")
    allowed = post(on, introspection)
    assert allowed.status_code == 200, allowed.text
    types = {t["name"] for t in allowed.json()["data"]["__schema"]["types"]}
    assert {"Query", "Mutation", "Repository", "QueueEntry", "PullRequestStatus"} <= types
    # graphql-core's own rule still stops introspection built to blow up.
    deep = "{ __schema { types { fields { type { fields { type { fields { type { fields {"
    deep += " name } } } } } } } } } }"
    assert post(on, {"query": deep}).status_code == 400


def test_graphql_requires_a_bearer_token_at_exactly_post_graphql(web: Web) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = post(web, {"query": "{ repositories { id } }"}, headers=headers)
        assert response.status_code == 401
        assert response.json().keys() == {"detail"}
    # Answered at the exact path, not redirected (httpx does not follow redirects).
    assert post(web, {"query": "{ repositories { id } }"}).status_code == 200
    assert web.get("/graphql").status_code == 405


def test_requests_are_counted_by_operation_name_and_outcome(web: Web) -> None:
    before = counts(web)
    for _ in range(3):
        gql(web, "query CountedRead { repositories { id } }")
    gql(
        web,
        'mutation CountedFail { dequeue(owner: "acme", name: "widgets", number: 29) { queued } }',
    )
    gql(web, "{ repositories { id } }")  # anonymous
    after = counts(web)

    def delta(key: tuple[str, str]) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert delta(("CountedRead", "success")) == 3
    assert delta(("CountedFail", "error")) == 1
    assert delta(("other", "success")) == 1


def test_malformed_requests_count_as_errors(web: Web) -> None:
    before = counts(web).get(("other", "error"), 0)
    bad = [
        httpx.post(web.url + "/graphql", content=b"{not json", headers=AUTH, timeout=10),
        post(web, [{"query": "{ repositories { id } }"}]),
        post(web, {"variables": {}}),
        post(web, {"query": "{ repositories { id "}),
        post(web, {"query": "{ nothing }"}),
        post(web, {"query": "query Named { repositories { id } }", "operationName": "Other"}),
    ]
    assert [r.status_code for r in bad][:5] == [400, 400, 400, 400, 400]
    assert all("errors" in r.json() for r in bad)
    assert counts(web)[("other", "error")] - before == len(bad)


def test_operation_name_labels_stay_bounded(start_web: StartWeb, sqlite_url: str) -> None:
    web = start_web(DATABASE_URL=sqlite_url, API_TOKENS=TOKEN, SERVE_PROMETHEUS_ENDPOINT="true")
    with httpx.Client(base_url=web.url, headers=AUTH, timeout=10) as client:
        for i in range(200):
            client.post("/graphql", json={"query": f"query Op{i:03d} {{ repositories {{ id }} }}"})
    series = counts(web)
    names = {name for name, _ in series}
    assert names == {f"Op{i:03d}" for i in range(50)} | {"other"}
    assert series[("other", "success")] == 150


def test_failures_inside_the_service_answer_without_internals(start_web: StartWeb) -> None:
    web = start_web(
        DATABASE_URL="sqlite+aiosqlite:////nonexistent/directory/mergequeue.db",
        API_TOKENS=TOKEN,
    )
    response = gql(web, "{ repositories { id } }")
    assert response.status_code == 200  # the request itself was fine
    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": "database unavailable",
                "locations": [{"line": 1, "column": 3}],
                "path": ["repositories"],
                "extensions": {"code": "UNAVAILABLE"},
            }
        ],
    }


def test_mutations_wake_the_repositorys_queue(
    start_web: StartWeb, sqlite_url: str, redis_url: str
) -> None:
    repo_id = REPO_ID + 7
    seed(sqlite_url, repo_id=repo_id, owner="acme", name="woken", paused=True)
    client = redis.Redis.from_url(redis_url)
    keys = [f"arq:job:evaluate:{repo_id}", f"mergequeue:dirty:{repo_id}"]
    client.delete(*keys)
    try:
        web = start_web(DATABASE_URL=sqlite_url, API_TOKENS=TOKEN, REDIS_URL=redis_url)
        response = gql(web, 'mutation { resume(owner: "acme", name: "woken") { paused } }')
        assert response.json() == {"data": {"resume": {"paused": False}}}
        assert client.exists(*keys) == 2
    finally:
        # No worker of a later test should evaluate a repository it has never seen.
        client.zrem("arq:queue", f"evaluate:{repo_id}")
        client.delete(*keys)
        client.close()
