"""docs/operations.md 3 (health) and the logging promises, on the real web process."""

from __future__ import annotations

import json

import httpx

from tests.e2e.conftest import StartWeb
from tests.support.request_ids import is_generated

CLOSED_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
TOKEN = "log-secret-token-abcdef0123"


def test_healthz_answers_while_the_process_serves(start_web: StartWeb) -> None:
    web = start_web(DATABASE_URL=CLOSED_POSTGRES)
    assert web.get("/healthz").json() == {"status": "ok"}


def test_readyz_is_200_when_the_database_answers(start_web: StartWeb, database_url: str) -> None:
    web = start_web(DATABASE_URL=database_url)
    assert web.get("/readyz").status_code == 200


def test_readyz_is_503_with_a_reason_when_the_database_is_down(start_web: StartWeb) -> None:
    web = start_web(DATABASE_URL=CLOSED_POSTGRES)
    response = web.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"].startswith("database unavailable")


def test_api_answers_503_not_500_when_the_database_is_down(start_web: StartWeb) -> None:
    web = start_web(DATABASE_URL=CLOSED_POSTGRES, API_TOKENS=TOKEN)
    response = web.get("/api/v1/repos", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable"}


def test_logs_are_json_lines_carrying_the_request_id(start_web: StartWeb, sqlite_url: str) -> None:
    web = start_web(DATABASE_URL=sqlite_url)
    response = web.get("/healthz", headers={"X-Request-ID": "req-from-proxy-1234"})
    assert response.headers["x-request-id"] == "req-from-proxy-1234"
    generated = web.get("/readyz").headers["x-request-id"]
    web.process.stop()
    records = [
        json.loads(line) for line in web.process.output().splitlines() if line.startswith("{")
    ]
    assert records, web.process.output()
    ids = {r.get("request_id") for r in records if r["logger"] == "uvicorn.access"}
    assert {"req-from-proxy-1234", generated} <= ids
    assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)


def test_an_untrustworthy_request_id_is_replaced(start_web: StartWeb, sqlite_url: str) -> None:
    web = start_web(DATABASE_URL=sqlite_url)
    response = web.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert response.headers["x-request-id"] != "bad id\twith spaces"
    assert is_generated(response.headers["x-request-id"])


def test_secrets_never_reach_the_logs(start_web: StartWeb, sqlite_url: str) -> None:
    web = start_web(
        DATABASE_URL=sqlite_url,
        API_TOKENS=TOKEN,
        GITHUB_WEBHOOK_SECRET="whsec-very-secret-999",
        PROMETHEUS_BASIC_AUTH_USERNAME="prom",
        PROMETHEUS_BASIC_AUTH_PASSWORD="basic-pass-777",
        SERVE_PROMETHEUS_ENDPOINT="true",
        LOG_LEVEL="DEBUG",
    )
    web.get("/api/v1/repos", headers={"Authorization": f"Bearer {TOKEN}"})
    web.get("/api/v1/repos", headers={"Authorization": "Bearer wrong"})
    httpx.get(web.url + "/debug/metrics", auth=("prom", "basic-pass-777"))
    web.process.stop()
    output = web.process.output()
    for secret in (TOKEN, "whsec-very-secret-999", "basic-pass-777"):
        assert secret not in output
