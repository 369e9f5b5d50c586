"""No input to any route gives a 5xx.

Property-based, in-process (httpx's ASGI transport against the real app on PostgreSQL,
which refuses NUL in text): every route of the app with hostile strings in its path
parameters and hostile, deeply nested JSON in its body; GraphQL with hostile variables,
literals and nesting; signed webhook deliveries with out-of-range values. Schemathesis
(tests/reliability/test_schemathesis.py) generates from the schema; these strategies go
where the schema does not: NUL, lone surrogates, control characters, nesting past the
parser's recursion limit. The real processes get a short check of the same classes in
tests/reliability/test_hostile_web.py.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from mergequeue.settings import load_settings
from tests.support import webhooks
from tests.support.seed import Pull, seed

TOKEN = "hostile-inputs-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
# Bounded: the whole module runs in a few seconds.
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

HOSTILE_CHARACTERS = ["\x00", "\ud800", "\udfff", "\x1b", "\n", "\u202e", "\ufeff", "/", "%"]
hostile_text = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=()), max_size=20),
    st.lists(st.one_of(st.sampled_from(HOSTILE_CHARACTERS), st.text(max_size=5)), max_size=6).map(
        "".join
    ),
    st.sampled_from(["", "a" * 300, "acme", "widgets", "..", "."]),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63) - 1]),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, hostile_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)
    ),
    max_leaves=12,
)
SETTINGS_FIELDS = [
    "queue_label",
    "merge_method",
    "required_checks",
    "ci_timeout_seconds",
    "queue_mode",
    "max_parallel_builds",
    "batch_size",
    "batch_wait_seconds",
    "notify_webhook_url",
    "failure_depth",
    "status_comments",
    "flaky_retries",
    "number",
    "priority",
    "reason",
    "from",
    "until",
]
# The whole-number settings and the range each must be stored in.
NUMBER_SETTINGS = {
    "ci_timeout_seconds": (60, 86400),
    "max_parallel_builds": (1, 32),
    "batch_size": (1, 20),
    "batch_wait_seconds": (0, 3600),
    "failure_depth": (0, 8),
    "flaky_retries": (0, 3),
}
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(SETTINGS_FIELDS), json_values, max_size=4).map(
        lambda v: json.dumps(v).encode()
    ),
    # Nesting on either side of the parser's recursion limit.
    st.integers(min_value=1, max_value=60_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=60_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.binary(max_size=64),
)


@dataclass
class App:
    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    routes: list[tuple[str, str]]

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, url, **kwargs))


@pytest.fixture(scope="module")
def app(postgres_databases: Any, module_redis_url: str) -> Iterator[App]:
    url = postgres_databases.fresh()
    seed(url, repo_id=1, owner="acme", name="widgets", pulls=[Pull(1, queued=True), Pull(2)])
    application = create_app(
        load_settings(
            {
                "DATABASE_URL": url,
                "REDIS_URL": module_redis_url,
                "API_TOKENS": TOKEN,
                "GITHUB_WEBHOOK_SECRET": webhooks.SECRET,
                "SERVE_PROMETHEUS_ENDPOINT": "true",
            }
        )
    )
    # Every documented operation, plus the two the OpenAPI description leaves out.
    routes = [
        (method.upper(), path)
        for path, operations in application.openapi()["paths"].items()
        for method in operations
    ]
    routes += [("POST", "/graphql"), ("GET", "/debug/metrics")]
    loop = asyncio.new_event_loop()
    lifespan = application.router.lifespan_context(application)
    loop.run_until_complete(lifespan.__aenter__())
    # Raising: an exception in the app fails the test with its own traceback.
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=True)
    client = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")
    try:
        yield App(loop, client, routes)
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(lifespan.__aexit__(None, None, None))
        loop.close()
        postgres_databases.drop(url)


def _fill(path: str, values: list[str]) -> str:
    parameters = iter(values)
    return re.sub(
        r"\{[^}]+\}", lambda _: quote(next(parameters), safe="", errors="surrogatepass"), path
    )


@PROPERTY
@given(data=st.data())
def test_no_route_answers_5xx_to_hostile_paths_and_bodies(app: App, data: st.DataObject) -> None:
    method, path = data.draw(st.sampled_from(app.routes))
    count = path.count("{")
    plausible = st.sampled_from(["acme", "widgets", "1", "2"])
    values = data.draw(st.lists(st.one_of(plausible, hostile_text), min_size=count, max_size=count))
    body = data.draw(bodies) if method in {"POST", "PATCH", "PUT"} else b""
    response = app.request(method, _fill(path, values), content=body, headers=AUTH)
    assert response.status_code < 500, (method, path, values, body[:200], response.text[:300])


@PROPERTY
@given(field=st.sampled_from(["queue_label", "required_checks", "queue_mode"]), text=hostile_text)
def test_settings_strings_are_stored_or_refused_with_422(app: App, field: str, text: str) -> None:
    value: Any = [text] if field == "required_checks" else text
    # ensure_ascii: a lone surrogate travels as the JSON escape a client would send.
    body = json.dumps({field: value}, ensure_ascii=True).encode()
    response = app.request("PATCH", "/api/v1/repos/acme/widgets", content=body, headers=AUTH)
    assert response.status_code in {200, 422}, (text, response.text[:300])


@PROPERTY
@given(
    field=st.sampled_from(sorted(NUMBER_SETTINGS)),
    # Around every range's ends too, where off-by-one mistakes live; and max_parallel_builds'
    # "auto", near misses of it, and "auto" where it means nothing.
    value=st.one_of(
        st.integers(min_value=-2, max_value=86402),
        st.sampled_from(["auto", "AUTO", " auto", "auto\x00"]),
        json_values,
    ),
)
def test_settings_numbers_are_stored_in_range_or_refused_with_422(
    app: App, field: str, value: Any
) -> None:
    body = json.dumps({field: value}, ensure_ascii=True).encode()
    response = app.request("PATCH", "/api/v1/repos/acme/widgets", content=body, headers=AUTH)
    assert response.status_code in {200, 422}, (value, response.text[:300])
    if response.status_code == 200:
        low, high = NUMBER_SETTINGS[field]
        stored = response.json()[field]
        if value == "auto" and field == "max_parallel_builds":
            assert stored == "auto"
        else:
            assert isinstance(stored, int) and low <= stored <= high, (value, stored)


graphql_strings = hostile_text.map(lambda s: json.dumps(s, ensure_ascii=True))


@PROPERTY
@given(
    variables=st.one_of(
        json_values,
        st.integers(min_value=1, max_value=60_000).map(
            lambda n: json.loads("[" * min(n, 900) + "]" * min(n, 900))
        ),
    ),
    literal=graphql_strings,
    nesting=st.integers(min_value=0, max_value=60_000),
)
def test_graphql_answers_4xx_or_200_to_hostile_requests(
    app: App, variables: Any, literal: str, nesting: int
) -> None:
    queries = [
        "query Q($o: String!, $n: String!) { repository(owner: $o, name: $n) { name } }",
        f"{{ repository(owner: {literal}, name: {literal}) {{ name }} }}",
        f'mutation {{ updateRepositorySettings(owner: "acme", name: "widgets", '
        f"settings: {{queueLabel: {literal}}}) {{ queueLabel }} }}",
    ]
    for query in queries:
        request = {"query": query, "variables": {"o": variables, "n": literal}}
        body = json.dumps(request, ensure_ascii=True).encode()
        response = app.request("POST", "/graphql", content=body, headers=AUTH)
        assert response.status_code < 500, (query, response.text[:300])
    deep = b'{"query": "{ repositories { name } }", "extensions": ' + b"[" * nesting
    deep += b"]" * nesting + b"}"
    response = app.request("POST", "/graphql", content=deep, headers=AUTH)
    assert response.status_code < 500


GRAPHQL_SETTINGS = [
    "queueLabel",
    "mergeMethod",
    "requiredChecks",
    "ciTimeoutSeconds",
    "queueMode",
    "maxParallelBuilds",
    "batchSize",
    "batchWaitSeconds",
    "notifyWebhookUrl",
    "failureDepth",
    "statusComments",
    "flakyRetries",
]
UPDATE_SETTINGS = (
    "mutation U($s: RepositorySettingsInput!) {"
    ' updateRepositorySettings(owner: "acme", name: "widgets", settings: $s) {'
    " queueMode maxParallelBuilds batchSize batchWaitSeconds ciTimeoutSeconds"
    " notifyWebhookUrl failureDepth statusComments flakyRetries flakyRetriesInEffect } }"
)


@PROPERTY
@given(
    settings_input=st.one_of(
        st.dictionaries(st.sampled_from(GRAPHQL_SETTINGS), json_values, max_size=4),
        json_values,
    )
)
def test_graphql_settings_input_answers_4xx_or_200_and_stores_only_in_range_values(
    app: App, settings_input: Any
) -> None:
    request = {"query": UPDATE_SETTINGS, "variables": {"s": settings_input}}
    body = json.dumps(request, ensure_ascii=True).encode()
    response = app.request("POST", "/graphql", content=body, headers=AUTH)
    assert response.status_code < 500, (settings_input, response.text[:300])
    repository = (response.json().get("data") or {}).get("updateRepositorySettings")
    if repository is not None:
        assert repository["queueMode"] in {"serial", "parallel"}
        assert 1 <= repository["maxParallelBuilds"] <= 32
        assert 1 <= repository["batchSize"] <= 20
        assert 0 <= repository["batchWaitSeconds"] <= 3600
        assert 60 <= repository["ciTimeoutSeconds"] <= 86400
        url = repository["notifyWebhookUrl"]
        assert url is None or url.startswith(("http://", "https://"))
        assert 0 <= repository["failureDepth"] <= 8
        assert isinstance(repository["statusComments"], bool)
        assert 0 <= repository["flakyRetries"] <= 3
        assert isinstance(repository["flakyRetriesInEffect"], bool)


@PROPERTY
@given(value=st.one_of(st.sampled_from([True, False, None, 0, 1, "true"]), json_values))
def test_status_comments_is_stored_as_a_boolean_or_refused_with_422(app: App, value: Any) -> None:
    body = json.dumps({"status_comments": value}, ensure_ascii=True).encode()
    response = app.request("PATCH", "/api/v1/repos/acme/widgets", content=body, headers=AUTH)
    assert response.status_code in {200, 422}, (value, response.text[:300])
    if response.status_code == 200:
        assert response.json()["status_comments"] is (value is not False)


# Dates and times around the ends of what Python, the drivers and the columns can hold,
# with offsets that push them over the edge when turned into UTC.
hostile_datetimes = st.one_of(
    st.none(),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),  # no timezone
    st.sampled_from(
        [
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59.999999Z",
            "0001-01-01T00:00:00Z",
            "2999-01-01T00:00:00Z",
            "2999-02-30T00:00:00Z",
            "2999-01-01T24:00:00Z",
            "2999-01-01",
            "now",
            "",
        ]
    ),
    numbers,
    hostile_text,
)


@PROPERTY
@given(
    reason=st.one_of(hostile_text, st.text(max_size=600), json_values),
    start=hostile_datetimes,
    end=hostile_datetimes,
)
def test_freezes_are_stored_or_refused_with_422(
    app: App, reason: Any, start: Any, end: Any
) -> None:
    request: dict[str, Any] = {"reason": reason}
    if start is not None:
        request["from"] = start
    if end is not None:
        request["until"] = end
    body = json.dumps(request, ensure_ascii=True).encode()
    response = app.request("PUT", "/api/v1/repos/acme/widgets/freeze", content=body, headers=AUTH)
    assert response.status_code in {200, 422}, (request, response.text[:300])
    if response.status_code == 200:
        stored = response.json()
        assert stored["freeze_reason"] == reason.strip() and stored["freeze_reason"]
        assert "\x00" not in stored["freeze_reason"]
        if stored["frozen_from"] and stored["frozen_until"]:
            window = [datetime.fromisoformat(stored[k]) for k in ("frozen_from", "frozen_until")]
            assert window[0] < window[1]
    lifted = app.request("DELETE", "/api/v1/repos/acme/widgets/freeze", headers=AUTH)
    assert lifted.status_code == 200 and lifted.json()["freeze_reason"] is None


FREEZE = (
    "mutation F($r: String!, $f: DateTime, $u: DateTime) {"
    ' freezeQueue(owner: "acme", name: "widgets", reason: $r, from: $f, until: $u) {'
    " frozen freezeReason frozenFrom frozenUntil } }"
)


@PROPERTY
@given(reason=st.one_of(hostile_text, json_values), start=hostile_datetimes, end=hostile_datetimes)
def test_graphql_freezes_answer_4xx_or_200(app: App, reason: Any, start: Any, end: Any) -> None:
    request = {"query": FREEZE, "variables": {"r": reason, "f": start, "u": end}}
    body = json.dumps(request, ensure_ascii=True).encode()
    response = app.request("POST", "/graphql", content=body, headers=AUTH)
    assert response.status_code < 500, (request, response.text[:300])
    app.request("DELETE", "/api/v1/repos/acme/widgets/freeze", headers=AUTH)


@PROPERTY
@given(
    priority=st.one_of(st.sampled_from(["urgent", "normal", "URGENT", ""]), json_values),
    number=st.one_of(st.sampled_from([1, 2, 3]), numbers),
)
def test_priority_changes_answer_200_404_or_422(app: App, priority: Any, number: Any) -> None:
    body = json.dumps({"priority": priority}, ensure_ascii=True).encode()
    response = app.request(
        "PATCH", f"/api/v1/repos/acme/widgets/queue/{number}", content=body, headers=AUTH
    )
    assert response.status_code in {200, 404, 422}, (priority, number, response.text[:300])
    if response.status_code == 200:
        assert response.json()["priority"] == priority


@PROPERTY
@given(
    action=hostile_text,
    full_name=hostile_text,
    number=numbers,
    constant=st.sampled_from(["", "Infinity", "-Infinity", "NaN", "1e400", str(2**64)]),
)
def test_signed_deliveries_with_out_of_range_values_are_never_5xx(
    app: App, action: str, full_name: str, number: Any, constant: str
) -> None:
    payload = {"action": action, "repository": {"full_name": full_name}, "number": number}
    body = json.dumps(payload, ensure_ascii=True).encode()
    if constant:
        body = body[:-1] + b', "extra": ' + constant.encode() + b"}"
    response = app.request(
        "POST", "/api/webhook", content=body, headers=webhooks.headers("pull_request", body)
    )
    assert response.status_code in {202, 400}, response.text


@PROPERTY
@given(signature=st.binary(max_size=80), prefix=st.sampled_from([b"", b"sha256="]))
def test_every_malformed_signature_header_is_401(app: App, signature: bytes, prefix: bytes) -> None:
    # Header bytes: httpx sends these as-is (non-ASCII included), as an attacker could.
    value = (prefix + signature).replace(b"\r", b"").replace(b"\n", b"").strip()
    headers = {**webhooks.headers("status", b"{}"), "X-Hub-Signature-256": value}  # type: ignore[dict-item]
    if not value:
        del headers["X-Hub-Signature-256"]
    response = app.request("POST", "/api/webhook", content=b"{}", headers=headers)
    assert response.status_code == 401, response.text
