"""What text the API accepts: every string it takes is one the database can store.

PostgreSQL refuses NUL in text and the drivers cannot encode lone surrogates (JSON's
`"\\ud800"`); either reached the database as a 500. Names in paths are GitHub's (letters,
digits, `.`, `_`, `-`), so anything else is a 422 before a query runs; free text (labels,
check names, GraphQL strings) is refused when it holds a character no column can keep.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from fastapi import Path

# GitHub's owner and repository names: at most 39 and 100 characters of these.
NAME_PATTERN = r"^[A-Za-z0-9._-]{1,100}$"
Owner = Annotated[str, Path(pattern=NAME_PATTERN, description="repository owner")]
RepoName = Annotated[str, Path(pattern=NAME_PATTERN, description="repository name")]


def unstorable(text: str) -> str | None:
    """Why `text` cannot be stored, or None."""
    if "\x00" in text:
        return "must not contain NUL characters"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return "must not contain lone surrogates (invalid Unicode)"
    return None


def storable(text: str) -> str:
    """A pydantic validator for free text a column keeps (newlines and the like allowed)."""
    reason = unstorable(text)
    if reason is not None:
        raise ValueError(reason)
    return text


def printable(text: str) -> str:
    """A pydantic validator for names people read: no control characters at all."""
    reason = unstorable(text)
    if reason is None and any(unicodedata.category(c) == "Cc" for c in text):
        reason = "must not contain control characters"
    if reason is not None:
        raise ValueError(reason)
    return text


def first_unstorable(value: Any, *, limit: int = 100_000) -> str | None:
    """The reason a string somewhere inside a decoded JSON value cannot be stored."""
    pending = [value]
    seen = 0
    while pending and seen < limit:
        item = pending.pop()
        seen += 1
        if isinstance(item, str):
            reason = unstorable(item)
            if reason is not None:
                return reason
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


def depth(value: Any) -> int:
    """How deeply lists and objects nest in a decoded JSON value (without recursion)."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, level + 1) for child in children)
    return deepest
