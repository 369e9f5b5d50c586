"""The REST API's queue operations (enqueue, dequeue, pause, resume, a pull request's
status) on the real web process, over SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import redis

from mergequeue.models import PullRequestState
from tests.e2e.conftest import StartWeb, Web
from tests.support.seed import Pull, seed

TOKEN = "queue-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Nothing listens there: every wake-up fails at once, and the API must not care.
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
REPO_ID = 910_000_001
QUEUE = "/api/v1/repos/acme/widgets/queue"

PULLS = [
    Pull(1, queued=True),
    Pull(2, queued=True),
    *(Pull(n) for n in range(10, 30)),
    Pull(40, state=PullRequestState.CLOSED),
    Pull(41, state=PullRequestState.MERGED),
]


@pytest.fixture(scope="module")
def web(start_module_web: StartWeb, module_database_url: str) -> Web:
    seed(module_database_url, repo_id=REPO_ID, owner="acme", name="widgets", pulls=PULLS)
    seed(module_database_url, repo_id=REPO_ID + 1, owner="acme", name="gadgets")
    return start_module_web(
        DATABASE_URL=module_database_url, API_TOKENS=TOKEN, REDIS_URL=UNREACHABLE_REDIS
    )


def call(web: Web, method: str, path: str, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("headers", AUTH)
    return httpx.request(method, web.url + path, timeout=10, **kwargs)


def test_enqueue_answers_201_with_the_pull_requests_place_in_the_queue(web: Web) -> None:
    response = call(web, "POST", QUEUE, json={"number": 10})
    assert response.status_code == 201
    body = response.json()
    assert body["number"] == 10 and body["queued"] is True and body["status"] == "waiting"
    assert body["position"] >= 3 and body["base_ref"] == "main"
    queue = call(web, "GET", QUEUE).json()["entries"]
    assert [e["number"] for e in queue][:2] == [1, 2] and queue[-1]["number"] == 10


def test_enqueue_of_a_queued_or_closed_pull_request_is_409(web: Web) -> None:
    for number, detail in [
        (1, "pull request #1 is already queued"),
        (40, "pull request #40 is closed"),
        (41, "pull request #41 is merged"),
    ]:
        response = call(web, "POST", QUEUE, json={"number": number})
        assert response.status_code == 409, response.text
        assert response.json() == {"detail": detail}


def test_enqueue_into_an_unknown_repository_is_404(web: Web) -> None:
    response = call(web, "POST", "/api/v1/repos/acme/nothing/queue", json={"number": 11})
    assert response.status_code == 404
    assert response.json() == {"detail": "repository acme/nothing is not known"}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"number": "12"},
        {"number": 12.5},
        {"number": True},
        {"number": 0},
        {"number": -3},
        {"number": 2**31},
        {"number": 10**40},
        {"number": 12, "extra": 1},
        [12],
        None,
    ],
    ids=repr,
)
def test_bad_enqueue_bodies_are_422(web: Web, body: object) -> None:
    response = call(web, "POST", QUEUE, json=body)
    assert response.status_code == 422, response.text
    assert set(response.json()) == {"detail"}


def test_a_body_that_is_not_json_is_422(web: Web) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    response = call(web, "POST", QUEUE, content=b"{not json", headers=headers)
    assert response.status_code == 422 and set(response.json()) == {"detail"}


def test_dequeue_answers_the_status_with_reason_api(web: Web) -> None:
    assert call(web, "POST", QUEUE, json={"number": 12}).status_code == 201
    response = call(web, "DELETE", f"{QUEUE}/12")
    assert response.status_code == 200
    body = response.json()
    assert (body["queued"], body["last_outcome"], body["last_reason"]) == (
        False,
        "dequeued",
        "api",
    )
    assert 12 not in [e["number"] for e in call(web, "GET", QUEUE).json()["entries"]]


def test_dequeue_of_a_pull_request_not_queued_is_404(web: Web) -> None:
    for number in (13, 999):  # known but not queued; never seen
        response = call(web, "DELETE", f"{QUEUE}/{number}")
        assert response.status_code == 404
        assert response.json() == {"detail": f"pull request #{number} is not queued"}
    unknown = call(web, "DELETE", "/api/v1/repos/acme/nothing/queue/1")
    assert unknown.status_code == 404


def test_pause_and_resume_answer_the_repository(web: Web) -> None:
    paused = call(web, "POST", "/api/v1/repos/acme/gadgets/pause")
    assert paused.status_code == 200
    assert paused.json()["full_name"] == "acme/gadgets" and paused.json()["paused"] is True
    assert call(web, "GET", "/api/v1/repos/acme/gadgets").json()["paused"] is True
    # Pausing stops merging, not queueing.
    assert call(web, "POST", "/api/v1/repos/acme/gadgets/queue", json={"number": 5}).is_success
    assert call(web, "POST", "/api/v1/repos/acme/gadgets/pause").json()["paused"] is True
    resumed = call(web, "POST", "/api/v1/repos/acme/gadgets/resume")
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    assert call(web, "POST", "/api/v1/repos/acme/nothing/resume").status_code == 404


def test_pull_request_status_shows_its_position_or_how_it_left(web: Web) -> None:
    queued = call(web, "GET", "/api/v1/repos/acme/widgets/pulls/2")
    assert queued.status_code == 200
    assert queued.json() | {"enqueued_at": None} == {
        "number": 2,
        "queued": True,
        "position": 2,
        "base_ref": "main",
        "status": "waiting",
        "status_detail": None,
        "enqueued_at": None,
        "last_outcome": None,
        "last_reason": None,
        "priority": "normal",
    }
    call(web, "POST", QUEUE, json={"number": 14})
    call(web, "DELETE", f"{QUEUE}/14")
    left = call(web, "GET", "/api/v1/repos/acme/widgets/pulls/14").json()
    assert (left["queued"], left["position"], left["last_outcome"], left["last_reason"]) == (
        False,
        None,
        "dequeued",
        "api",
    )
    never = call(web, "GET", "/api/v1/repos/acme/widgets/pulls/777")
    assert never.status_code == 404
    assert never.json() == {"detail": "pull request #777 is not known in acme/widgets"}


@pytest.mark.parametrize("number", ["x", "1.5", "0", "-1", "2147483648", "9" * 40])
def test_pull_request_numbers_in_paths_that_are_not_positive_32_bit_ints_are_422(
    web: Web, number: str
) -> None:
    for method, path in [
        ("GET", f"/api/v1/repos/acme/widgets/pulls/{number}"),
        ("DELETE", f"{QUEUE}/{number}"),
    ]:
        response = call(web, method, path)
        assert response.status_code == 422, (method, path, response.text)
        assert set(response.json()) == {"detail"}


def test_every_queue_operation_requires_a_bearer_token(web: Web) -> None:
    operations = [
        ("POST", QUEUE, {"json": {"number": 15}}),
        ("DELETE", f"{QUEUE}/1", {}),
        ("POST", "/api/v1/repos/acme/widgets/pause", {}),
        ("POST", "/api/v1/repos/acme/widgets/resume", {}),
        ("GET", "/api/v1/repos/acme/widgets/pulls/1", {}),
    ]
    for method, path, kwargs in operations:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            response = call(web, method, path, headers=headers, **kwargs)
            assert response.status_code == 401, (method, path)
            assert set(response.json()) == {"detail"}
    assert call(web, "GET", "/api/v1/repos/acme/widgets/pulls/15").json()["queued"] is False
    assert call(web, "GET", "/api/v1/repos/acme/widgets").json()["paused"] is False


def test_mutations_succeed_while_redis_is_down(web: Web) -> None:
    started = time.monotonic()
    assert call(web, "POST", QUEUE, json={"number": 16}).status_code == 201
    assert call(web, "POST", "/api/v1/repos/acme/widgets/resume").status_code == 200
    assert call(web, "DELETE", f"{QUEUE}/16").status_code == 200
    assert time.monotonic() - started < 5


def test_openapi_document_lists_every_rest_operation(web: Web) -> None:
    paths = web.get("/openapi.json").json()["paths"]
    operations = {(m.upper(), p) for p, item in paths.items() for m in item}
    base = "/api/v1/repos/{owner}/{repo}"
    assert {
        ("GET", "/api/v1/repos"),
        ("GET", base),
        ("GET", f"{base}/queue"),
        ("POST", f"{base}/queue"),
        ("DELETE", f"{base}/queue/{{number}}"),
        ("POST", f"{base}/pause"),
        ("POST", f"{base}/resume"),
        ("GET", f"{base}/pulls/{{number}}"),
    } <= operations
    enqueue = paths[f"{base}/queue"]["post"]
    assert {"201", "401", "404", "409", "422"} <= set(enqueue["responses"])
    assert "requestBody" in enqueue
    assert {"200", "401", "404", "422"} <= set(
        paths[f"{base}/queue/{{number}}"]["delete"]["responses"]
    )


def test_enqueue_wakes_the_repositorys_queue(
    start_web: StartWeb, sqlite_url: str, redis_url: str
) -> None:
    repo_id = REPO_ID + 7
    seed(sqlite_url, repo_id=repo_id, owner="acme", name="woken", pulls=[Pull(3)])
    client = redis.Redis.from_url(redis_url)
    keys = [f"arq:job:evaluate:{repo_id}", f"mergequeue:dirty:{repo_id}"]
    client.delete(*keys)
    try:
        web = start_web(DATABASE_URL=sqlite_url, API_TOKENS=TOKEN, REDIS_URL=redis_url)
        response = call(web, "POST", "/api/v1/repos/acme/woken/queue", json={"number": 3})
        assert response.status_code == 201
        assert client.exists(*keys) == 2
        assert client.zscore("arq:queue", f"evaluate:{repo_id}") is not None
    finally:
        # No worker of a later test should evaluate a repository it has never seen.
        client.zrem("arq:queue", f"evaluate:{repo_id}")
        client.delete(*keys)
        client.close()
