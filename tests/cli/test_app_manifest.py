"""The GitHub App manifest asks for what the README says the App needs, no more."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import httpx
import pytest

from cli._output import CommandError
from cli.app_manifest import ALWAYS_DELIVERED, EVENTS, PERMISSIONS, exchange
from tests.cli.test_cli import mergequeue

README = Path(__file__).resolve().parents[2] / "README.md"


def _using_the_queue() -> str:
    text = README.read_text()
    start = text.index("## Using the queue")
    return text[start : text.index("\n## ", start + 1)]


def test_the_manifest_asks_for_the_readmes_permissions_and_events() -> None:
    section = _using_the_queue()
    permissions = dict(re.findall(r"^\| `(\w+)` \| (read|write) \|", section, re.MULTILINE))
    events_line = section[section.index("Events:") : section.index("Then:")]
    events = re.findall(r"`(\w+)`", events_line)

    status, out, _ = mergequeue("app-manifest", "--url", "https://mq.example.com", "--json")
    assert status == 0
    manifest = json.loads(out)["manifest"]
    assert manifest["default_permissions"] == permissions == PERMISSIONS
    # GitHub sends the installation events to every App and refuses them in a manifest.
    assert [*manifest["default_events"], *ALWAYS_DELIVERED] == events
    assert tuple(manifest["default_events"]) == EVENTS


def test_the_manifest_points_github_at_the_service_and_stays_private(tmp_path: Path) -> None:
    page = tmp_path / "app.html"
    status, out, _ = mergequeue(
        "app-manifest",
        "--url",
        "https://mq.example.com/",
        "--org",
        "acme",
        "--html",
        str(page),
        "--json",
    )
    assert status == 0
    printed = json.loads(out)
    manifest = printed["manifest"]
    assert manifest["url"] == "https://mq.example.com"
    assert manifest["hook_attributes"] == {
        "url": "https://mq.example.com/api/webhook",
        "active": True,
    }
    assert manifest["redirect_url"] == "https://mq.example.com/"
    assert manifest["public"] is False
    assert manifest["name"] == "mergequeue"
    assert printed["create_url"] == "https://github.com/organizations/acme/settings/apps/new"
    # The one-click page posts exactly that manifest to that address.
    written = page.read_text()
    assert written == printed["html"]
    assert 'action="https://github.com/organizations/acme/settings/apps/new"' in written
    field = re.search(r'name="manifest" value="([^"]*)"', written)
    assert field is not None and json.loads(html.unescape(field.group(1))) == manifest

    status, out, _ = mergequeue("app-manifest", "--url", "https://mq.example.com")
    assert status == 0 and "https://github.com/settings/apps/new" in out


def test_a_missing_or_malformed_url_is_a_usage_error() -> None:
    assert mergequeue("app-manifest")[0] == 2
    status, _, err = mergequeue("app-manifest", "--url", "mq.example.com")
    assert status == 2 and "expected a URL" in err


async def test_the_redirects_code_is_exchanged_for_the_apps_credentials() -> None:
    seen: list[str] = []

    def github(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url}")
        if request.url.path.endswith("/good/conversions"):
            body = {"id": 77, "pem": "-----BEGIN RSA PRIVATE KEY-----", "webhook_secret": "w"}
            return httpx.Response(201, json=body)
        return httpx.Response(404, json={"message": "Not Found"})

    transport = httpx.MockTransport(github)
    found = await exchange("good", api_url="https://api.github.com", transport=transport)
    assert found["id"] == 77 and found["webhook_secret"] == "w"
    assert seen == ["POST https://api.github.com/app-manifests/good/conversions"]
    with pytest.raises(CommandError, match="valid for an hour"):
        await exchange("stale", api_url="https://api.github.com", transport=transport)
