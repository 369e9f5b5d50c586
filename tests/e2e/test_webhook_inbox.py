"""docs/operations.md 3: the webhook inbox on the real web and worker processes."""

from __future__ import annotations

import json
import socket
import uuid

import httpx
import pytest
from sqlalchemy import select

from mergequeue.models import DeliveryState, WebhookDelivery
from tests.e2e.conftest import StartWeb, Web
from tests.support import webhooks
from tests.support.db import rows
from tests.support.metrics import samples

SECRET_ENV = {"GITHUB_WEBHOOK_SECRET": webhooks.SECRET}


@pytest.fixture(scope="module")
def database_url(module_database_url: str) -> str:
    # One database and one web process per database kind for the whole module; tests
    # look only at their own deliveries.
    return module_database_url


@pytest.fixture(scope="module")
def web(start_module_web: StartWeb, module_database_url: str, module_redis_url: str) -> Web:
    return start_module_web(
        DATABASE_URL=module_database_url,
        REDIS_URL=module_redis_url,
        SERVE_PROMETHEUS_ENDPOINT="true",
        **SECRET_ENV,
    )


def _stored(url: str, delivery: str) -> list[WebhookDelivery]:
    return [r[0] for r in rows(url, select(WebhookDelivery).where(WebhookDelivery.id == delivery))]


def test_signed_delivery_is_stored_before_the_answer(web: Web, database_url: str) -> None:
    delivery = str(uuid.uuid4())
    response = webhooks.deliver(
        web.url, "pull_request", webhooks.fixture("pull_request.opened"), delivery
    )
    assert response.status_code == 202
    # No worker runs: whatever is in the database was written before the answer.
    [stored] = _stored(database_url, delivery)
    assert (stored.id, stored.event, stored.action) == (delivery, "pull_request", "opened")
    assert stored.installation_id == 957387
    assert stored.repository_full_name == "Codertocat/Hello-World"
    assert stored.state == DeliveryState.RECEIVED
    assert json.loads(stored.payload) == webhooks.fixture("pull_request.opened")


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=", "sha1=abc", "sha256=" + "0" * 64, "wrong-secret"],
)
def test_bad_or_missing_signature_is_401_and_stores_nothing(
    web: Web, database_url: str, signature: str | None
) -> None:
    body = json.dumps(webhooks.fixture("pull_request.opened")).encode()
    headers = webhooks.headers("pull_request", body)
    if signature is None:
        del headers["X-Hub-Signature-256"]
    elif signature == "wrong-secret":
        headers["X-Hub-Signature-256"] = webhooks.sign(body, "not-the-secret")
    else:
        headers["X-Hub-Signature-256"] = signature
    response = httpx.post(web.url + "/api/webhook", content=body, headers=headers)
    assert response.status_code == 401
    assert _stored(database_url, headers["X-GitHub-Delivery"]) == []


def test_a_tampered_body_is_401(web: Web, database_url: str) -> None:
    body = json.dumps(webhooks.fixture("pull_request.opened")).encode()
    headers = webhooks.headers("pull_request", body)
    response = httpx.post(web.url + "/api/webhook", content=body + b" ", headers=headers)
    assert response.status_code == 401
    assert _stored(database_url, headers["X-GitHub-Delivery"]) == []


@pytest.mark.parametrize(
    ("change", "body"),
    [
        ("no-event", b"{}"),
        ("no-delivery", b"{}"),
        ("bad-delivery", b"{}"),
        ("ok", b"{not json"),
        ("ok", b"[1, 2, 3]"),
        ("ok", b"\xff\xfe{}"),
        ("ok", b"[" * 100_000 + b"]" * 100_000),
    ],
)
def test_malformed_deliveries_are_400_and_store_nothing(
    web: Web, database_url: str, change: str, body: bytes
) -> None:
    headers = webhooks.headers("pull_request", body)
    if change == "no-event":
        del headers["X-GitHub-Event"]
    elif change == "no-delivery":
        del headers["X-GitHub-Delivery"]
    elif change == "bad-delivery":
        headers["X-GitHub-Delivery"] = "../../etc/passwd"
    response = httpx.post(web.url + "/api/webhook", content=body, headers=headers)
    assert response.status_code == 400
    assert set(response.json()) == {"detail"}
    assert _stored(database_url, headers.get("X-GitHub-Delivery", "")) == []


def test_body_over_25_mib_is_413_before_it_is_read(web: Web) -> None:
    # Declare 30 MiB but send only the headers: the answer must come without the body.
    with socket.create_connection(("127.0.0.1", web.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-GitHub-Event: push\r\nX-GitHub-Delivery: big-1\r\n"
            b"Content-Length: %d\r\n\r\n" % (30 * 1024 * 1024)
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")


def test_chunked_body_over_25_mib_is_413(web: Web, database_url: str) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        piece = b" " * (1024 * 1024)
        for _ in range(26):
            yield piece

    response = httpx.post(
        web.url + "/api/webhook",
        content=chunks(),
        headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "big-2"},
        timeout=30,
    )
    assert response.status_code == 413
    assert _stored(database_url, "big-2") == []


def test_no_secret_configured_refuses_deliveries_with_503(
    start_web: StartWeb, sqlite_url: str
) -> None:
    web = start_web(DATABASE_URL=sqlite_url)
    response = webhooks.deliver(web.url, "push", webhooks.fixture("push"))
    assert response.status_code == 503
    assert "GITHUB_WEBHOOK_SECRET" in response.json()["detail"]


def test_database_down_is_503(start_web: StartWeb, redis_url: str) -> None:
    web = start_web(
        DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere",
        REDIS_URL=redis_url,
        **SECRET_ENV,
    )
    response = webhooks.deliver(web.url, "push", webhooks.fixture("push"))
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable"}


def test_ping_is_200(web: Web, database_url: str) -> None:
    assert webhooks.deliver(web.url, "ping", webhooks.fixture("ping")).status_code == 200


@pytest.mark.parametrize("name", webhooks.fixture_names())
def test_every_captured_event_is_accepted(web: Web, name: str) -> None:
    response = webhooks.deliver(web.url, webhooks.event_of(name), webhooks.fixture(name))
    assert response.status_code == (200 if name == "ping" else 202)


@pytest.mark.parametrize(
    "event", ["sponsorship", "workflow_run", "merge_group", "made_up_event", "star"]
)
def test_arbitrary_other_events_are_accepted_not_5xx(web: Web, event: str) -> None:
    response = webhooks.deliver(web.url, event, {"action": "whatever", "zen": "x"})
    assert response.status_code == 202


@pytest.mark.parametrize("event", ["projects_v2", "projects_v2_item", "projects_v2_status_update"])
def test_event_names_with_digits_are_accepted(web: Web, database_url: str, event: str) -> None:
    delivery = str(uuid.uuid4())
    response = webhooks.deliver(web.url, event, {"action": "edited"}, delivery)
    assert response.status_code == 202, response.text
    assert [d.event for d in _stored(database_url, delivery)] == [event]


def test_webhook_latency_is_recorded_per_event_with_unknown_events_bounded(web: Web) -> None:
    def counts() -> dict[str, float]:
        text = web.get("/debug/metrics").text
        return {
            s.labels["event"]: s.value
            for s in samples(text)
            if s.name == "github_webhook_latency_count"
        }

    before = counts()
    webhooks.deliver(web.url, "pull_request", webhooks.fixture("pull_request.opened"))
    webhooks.deliver(web.url, "ping", webhooks.fixture("ping"))
    for i in range(20):
        webhooks.deliver(web.url, f"invented_event_{chr(97 + i)}", {"n": i})
    after = counts()
    assert after.get("pull_request", 0) - before.get("pull_request", 0) == 1
    assert after.get("ping", 0) - before.get("ping", 0) == 1
    assert after.get("other", 0) - before.get("other", 0) == 20
    assert not any(name.startswith("invented") for name in after)
