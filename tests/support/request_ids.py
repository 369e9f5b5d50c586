"""The shape of a request id the web process makes itself (observability/request_id.py)."""

from __future__ import annotations

import re

_GENERATED = re.compile(r"[0-9a-f]{16}-[1-9][0-9]*")


def is_generated(request_id: str) -> bool:
    return _GENERATED.fullmatch(request_id) is not None
