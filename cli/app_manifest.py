"""`mergequeue app-manifest`: the GitHub App manifest, to create the App in one click.

GitHub's manifest flow: POST the manifest (a form field) to `/settings/apps/new` (or an
organization's); GitHub shows the App pre-filled, creates it on one click and redirects
to `redirect_url?code=...`; that code, exchanged within an hour
(`POST /app-manifests/{code}/conversions`, no credentials), gives the App's id, private
key and webhook secret: `--exchange CODE`.

The permissions and events are the README's "Using the queue" list (a test keeps them
equal). `installation` and `installation_repositories` are not in `default_events`:
GitHub sends them to every App and refuses a manifest that subscribes to them.
"""

from __future__ import annotations

import argparse
import html
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from cli._output import OK, CommandError, UsageError, add_json_option, emit

PERMISSIONS: dict[str, str] = {
    "pull_requests": "write",
    "contents": "write",
    "issues": "write",
    "checks": "write",
    "statuses": "read",
    "administration": "read",
    "metadata": "read",
    # Optional: only to cancel the GitHub Actions runs of dropped parallel-mode builds.
    "actions": "write",
}
EVENTS: tuple[str, ...] = (
    "pull_request",
    "check_run",
    "check_suite",
    "status",
    "push",
    "issue_comment",
)
# Delivered to every App without a subscription (and refused in a manifest).
ALWAYS_DELIVERED: tuple[str, ...] = ("installation", "installation_repositories")


def base_url(value: str) -> str:
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(/[^\s?#]*)?", value):
        raise argparse.ArgumentTypeError(f"expected a URL such as https://HOST, got {value!r}")
    return value.rstrip("/")


def manifest(*, url: str, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "url": url,
        "description": "Self-hosted merge queue: label a pull request and it is merged in turn.",
        "hook_attributes": {"url": f"{url}/api/webhook", "active": True},
        "redirect_url": f"{url}/",
        "public": False,
        "default_permissions": dict(PERMISSIONS),
        "default_events": list(EVENTS),
    }


def create_url(*, github: str, organization: str | None) -> str:
    if organization:
        return f"{github}/organizations/{quote(organization, safe='')}/settings/apps/new"
    return f"{github}/settings/apps/new"


def form(*, action: str, manifest_json: str) -> str:
    """An HTML page whose button posts the manifest to GitHub (the one click)."""
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8"><title>Create the mergequeue '
        "GitHub App</title></head><body>\n"
        f'<form action="{html.escape(action)}" method="post">\n'
        f'<input type="hidden" name="manifest" value="{html.escape(manifest_json)}">\n'
        '<button type="submit">Create the GitHub App on GitHub</button>\n'
        "</form>\n</body></html>\n"
    )


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "app-manifest",
        help="the GitHub App manifest, and the page that creates the App in one click",
        description="Print the GitHub App manifest for this service (permissions, events, "
        "webhook URL) and the address to post it to; --html writes a page whose button "
        "creates the App on GitHub. After creating it GitHub redirects to URL/?code=...: "
        "--exchange CODE (within an hour) prints the new App's id, private key and "
        "webhook secret.",
    )
    parser.add_argument(
        "--url", type=base_url, help="where the service is reached, e.g. https://mq.example.com"
    )
    parser.add_argument("--name", default="mergequeue", help="the App's name (unique on GitHub)")
    parser.add_argument("--org", metavar="ORGANIZATION", help="create it for this organization")
    parser.add_argument(
        "--github-url",
        type=base_url,
        default="https://github.com",
        help="GitHub's web address (GitHub Enterprise Server: https://HOST)",
    )
    parser.add_argument("--html", metavar="FILE", help="write the one-click page to FILE")
    parser.add_argument("--exchange", metavar="CODE", help="exchange the redirect's code")
    parser.add_argument(
        "--api-url",
        type=base_url,
        default="https://api.github.com",
        help="GitHub's API for --exchange (GitHub Enterprise Server: https://HOST/api/v3)",
    )
    add_json_option(parser)
    parser.set_defaults(run=run, needs_settings=False)


async def run(args: argparse.Namespace, settings: Any) -> int:
    if args.exchange:
        return await _exchange(args)
    if not args.url:
        raise UsageError("app-manifest needs --url https://HOST (or --exchange CODE)")
    document = manifest(url=args.url, name=args.name)
    action = create_url(github=args.github_url, organization=args.org)
    page = form(action=action, manifest_json=json.dumps(document))
    if args.html:
        _write(args.html, page)
    emit(
        args.json,
        {"manifest": document, "create_url": action, "html": page},
        lambda: "\n".join(
            [
                json.dumps(document, indent=2),
                "",
                f"Post it as the form field `manifest` to {action}"
                + (
                    f": open {args.html} in a browser and press the button."
                    if args.html
                    else " (--html FILE writes a page that does it in one click)."
                ),
            ]
        ),
    )
    return OK


def _write(path: str, text: str) -> None:
    # A small local file, written once by a command line: blocking is harmless here.
    Path(path).write_text(text, encoding="utf-8")


async def _exchange(args: argparse.Namespace, transport: Any = None) -> int:
    found = await exchange(args.exchange, api_url=args.api_url, transport=transport)
    emit(
        args.json,
        found,
        lambda: "\n".join(
            [
                f"GITHUB_APP_ID={found['id']}",
                f"GITHUB_WEBHOOK_SECRET={found.get('webhook_secret') or ''}",
                "GITHUB_APP_PRIVATE_KEY (keep it in a Secret):",
                str(found.get("pem", "")).strip(),
                f"The App: {found.get('html_url', '')}; install it on your repositories.",
            ]
        ),
    )
    return OK


async def exchange(
    code: str, *, api_url: str, transport: httpx.AsyncBaseTransport | None = None
) -> dict[str, Any]:
    """The new App's credentials for the manifest flow's `code` (valid for an hour)."""
    url = f"{api_url}/app-manifests/{quote(code, safe='')}/conversions"
    async with httpx.AsyncClient(transport=transport, timeout=30) as client:
        response = await client.post(url, headers={"Accept": "application/vnd.github+json"})
    if response.status_code != 201:
        raise CommandError(
            f"GitHub refused the code ({response.status_code}): it is valid for an hour, once"
        )
    body: dict[str, Any] = response.json()
    return body
