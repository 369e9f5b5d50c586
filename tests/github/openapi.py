"""GitHub's published OpenAPI description (npm `@octokit/openapi`) as JSON Schema validators.

The description is OpenAPI 3.0: `nullable: true` is turned into JSON Schema's `null` type
once, then `$ref`s resolve through a `referencing` registry holding the whole document.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parents[2]
OCTOKIT = ROOT / "tools" / "node_modules" / "@octokit"
OPENAPI_FILE = OCTOKIT / "openapi" / "generated" / "api.github.com.json"
WEBHOOK_SCHEMA_FILE = OCTOKIT / "webhooks-schemas" / "schema.json"
WEBHOOK_EXAMPLES_FILE = OCTOKIT / "webhooks-examples" / "api.github.com" / "index.json"
URI = "urn:github-openapi"

# Any endpoint answers these (authentication, rate limits, validation, outages), whether or
# not its operation lists them; their body is GitHub's basic error.
GENERIC_STATUSES = frozenset({401, 403, 404, 422, 429, 500, 502, 503, 504})


def need(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/install-tools", pytrace=False)
    return path


def _nullable_to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable_to_json_schema(v) for k, v in node.items()}
    if out.pop("nullable", False) is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            return {"anyOf": [{"type": "null"}, out]}
    return out


@cache
def spec() -> dict[str, Any]:
    raw = json.loads(need(OPENAPI_FILE).read_text())
    converted: dict[str, Any] = _nullable_to_json_schema(raw)
    return converted


@cache
def _registry() -> Registry[Any]:
    registry: Registry[Any] = Registry().with_resource(URI, DRAFT202012.create_resource(spec()))
    return registry


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _deref(pointer: list[str]) -> tuple[Any, list[str]]:
    """The node at `pointer`, following a `$ref` there (components/responses)."""
    node: Any = spec()
    for token in pointer:
        node = node[token]
    while isinstance(node, dict) and "$ref" in node:
        pointer = node["$ref"].removeprefix("#/").split("/")
        pointer = [t.replace("~1", "/").replace("~0", "~") for t in pointer]
        node = spec()
        for token in pointer:
            node = node[token]
    return node, pointer


def operation(method: str, template: str) -> dict[str, Any] | None:
    op = spec()["paths"].get(template, {}).get(method.lower())
    return op if isinstance(op, dict) else None


def _validator(pointer: list[str]) -> Draft202012Validator:
    ref = f"{URI}#/" + "/".join(_escape(t) for t in pointer)
    return Draft202012Validator({"$ref": ref}, registry=_registry())


def response_errors(method: str, template: str, status: int, body: Any) -> list[str]:
    """Why `body` with `status` is not a valid answer of this operation ([] when it is)."""
    op = operation(method, template)
    if op is None:
        return [f"{method} {template} is not a GitHub operation"]
    responses = op["responses"]
    if str(status) in responses:
        response, pointer = _deref(["paths", template, method.lower(), "responses", str(status)])
        content = response.get("content", {})
        if "application/json" in content:
            pointer = [*pointer, "content", "application/json", "schema"]
        elif status >= 400 and body not in (None, b"", ""):
            # Some errors are described without a body (the merges endpoint's 404 and 409,
            # deleting a ref's 422) though GitHub answers them with its basic error.
            pointer = ["components", "schemas", "basic-error"]
        else:
            return [] if body in (None, b"", "") else [f"{status} has no body in GitHub's API"]
    elif status in GENERIC_STATUSES:
        pointer = ["components", "schemas", "basic-error"]
    else:
        return [f"{method} {template} never answers {status}"]
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
        for e in _validator(pointer).iter_errors(body)
    ]


def request_errors(method: str, template: str, body: Any) -> list[str]:
    """Why `body` is not a valid request body of this operation ([] when it is)."""
    op = operation(method, template)
    if op is None:
        return [f"{method} {template} is not a GitHub operation"]
    if "requestBody" not in op:
        return [] if body is None else [f"{method} {template} takes no body"]
    if body is None:
        return [] if not op["requestBody"].get("required") else ["request body required"]
    pointer = ["paths", template, method.lower(), "requestBody", "content"]
    pointer += ["application/json", "schema"]
    return [e.message[:300] for e in _validator(pointer).iter_errors(body)]
