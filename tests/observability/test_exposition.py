"""observability/exposition.py and listener.py: negotiation, basic auth, the listener."""

from __future__ import annotations

import base64

import httpx
import pytest

from observability.exposition import basic_auth_ok, render
from observability.listener import MetricsListener


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_text_format_by_default_and_openmetrics_when_asked() -> None:
    _, plain = render(None)
    assert plain.startswith("text/plain; version=0.0.4")
    body, negotiated = render("application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    assert negotiated.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (None, False),
        ("", False),
        (_basic("prom", "secret"), True),
        (_basic("prom", "wrong"), False),
        (_basic("other", "secret"), False),
        (_basic("prom", "secret").replace("Basic", "basic"), True),
        ("Bearer secret", False),
        ("Basic !!!not-base64", False),
        ("Basic " + base64.b64encode(b"promsecret").decode(), False),
    ],
)
def test_basic_auth_accepts_only_the_configured_pair(header: str | None, ok: bool) -> None:
    assert basic_auth_ok(header, ("prom", "secret")) is ok


def test_no_credentials_configured_means_open() -> None:
    assert basic_auth_ok(None, None)


def test_listener_serves_metrics_path_only_with_auth_and_stops() -> None:
    listener = MetricsListener(host="127.0.0.1", port=0, credentials=("prom", "secret"))
    listener.start()
    url = f"http://127.0.0.1:{listener.port}"
    try:
        denied = httpx.get(url + "/metrics")
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"].startswith("Basic ")
        assert httpx.get(url + "/metrics", auth=("prom", "nope")).status_code == 401
        ok = httpx.get(url + "/metrics", auth=("prom", "secret"))
        assert ok.status_code == 200 and "python_info" in ok.text
        assert httpx.get(url + "/other", auth=("prom", "secret")).status_code == 404
        assert httpx.head(url + "/metrics", auth=("prom", "secret")).status_code == 200
    finally:
        listener.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/metrics", timeout=2)
