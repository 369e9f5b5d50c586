"""Schemathesis against the running web process, REST and GraphQL.

REST: generated from the app's own `/openapi.json` with a valid bearer token, against a
seeded repository (so 200s, 404s, 409s and 422s are all reached); every answer must be
documented, match its schema and never be a 5xx; run by the `st` CLI, as a developer
would. GraphQL: queries and mutations generated from the schema file the app serves, sent
to `POST /graphql`: no 5xx and no INTERNAL error. Both bounded in examples and time.

Left out: `allow_header_conformance`. A 405 lists in `Allow` only the methods of the
first route on that path (Starlette's router), e.g. `GET` for `/api/v1/repos/{o}/{r}`
which also takes PATCH. Known limit, noted in SECURITY.md. And
`positive_data_acceptance`: it wants a 2xx for every schema-valid request, but enqueueing
a pull request the queue does not know is rightly a 404 or 409, and an unsigned webhook
a 401.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import hypothesis_graphql
import pytest
from hypothesis import HealthCheck, given, settings

from tests.e2e.conftest import StartWeb, Web
from tests.support.seed import Pull, seed

GRAPHQL_EXAMPLES = 300
TOKEN = "schemathesis-token-0123456789abcdef"
ST = str(Path(sys.executable).parent / "st")
GRAPHQL_SCHEMA = Path(__file__).resolve().parents[2] / "api" / "graphql" / "schema.graphql"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "missing_required_header",
        "ignored_auth",
    ]
)


@pytest.fixture
def web(start_web: StartWeb, sqlite_url: str, redis_url: str) -> Web:
    seed(
        sqlite_url,
        repo_id=1,
        owner="acme",
        name="widgets",
        pulls=[Pull(1, queued=True), Pull(2, queued=True), Pull(3)],
    )
    return start_web(
        DATABASE_URL=sqlite_url,
        REDIS_URL=redis_url,
        API_TOKENS=TOKEN,
        # So the webhook operation answers its documented 401, not "disabled" (503).
        GITHUB_WEBHOOK_SECRET="schemathesis-webhook-secret",
    )


def _st(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The config file, written by each test, is found in the working directory.
    result = subprocess.run(
        [ST, "run", *args, "--no-color", "--generation-database", "none"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )
    print(result.stdout[-3000:])
    return result


def test_rest_api_answers_match_its_openapi_document(web: Web, tmp_path: Path) -> None:
    # The seeded repository's name, so generated requests reach the handlers' logic
    # rather than stopping at "unknown repository".
    (tmp_path / "schemathesis.toml").write_text('[parameters]\nowner = "acme"\nrepo = "widgets"\n')
    result = _st(
        f"{web.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--checks",
        CHECKS,
        "--max-examples",
        "15",
        "--max-time",
        "20",
        # One worker: CPython 3.11.7's ast.parse is not safe across threads (gh-106905,
        # "AST constructor recursion depth mismatch"), and hypothesis parses lambdas'
        # source while generating; two workers crashed schemathesis itself once in CI.
        "--workers",
        "1",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Traceback" not in web.process.output()


def test_graphql_api_never_answers_5xx_nor_an_internal_error(web: Web) -> None:
    # schemathesis's own GraphQL check counts every error in a 200 as a server error,
    # the API's documented NOT_FOUND or BAD_INPUT included; so its generator
    # (hypothesis-graphql) is driven here, with the API's own notion of a failure.
    schema = GRAPHQL_SCHEMA.read_text()
    seen: dict[int, int] = {}
    with httpx.Client(
        base_url=web.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ) as client:

        @settings(
            max_examples=GRAPHQL_EXAMPLES,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(query=hypothesis_graphql.from_schema(schema))
        def check(query: str) -> None:
            response = client.post("/graphql", json={"query": query})
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            assert response.status_code in (200, 400), (query, response.text)
            codes = (
                {e.get("extensions", {}).get("code") for e in response.json()["errors"]}
                if ("errors" in response.json())
                else set()
            )
            assert not codes & {"INTERNAL", "UNAVAILABLE"}, (query, response.text)

        check()
    print(f"GraphQL answers by status: {seen}")
    assert seen.get(200, 0) > GRAPHQL_EXAMPLES // 2
    assert "Traceback" not in web.process.output()
