"""JSON log lines carry no terminal colour codes: uvicorn's `color_message` extra is left out
and ANSI escape sequences are stripped from every string."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from observability.logging import JsonFormatter, configure_logging

ESC = "\x1b"


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(level="INFO", fmt="json")
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_uvicorn_color_message_does_not_reach_json_lines(captured: io.StringIO) -> None:
    # What uvicorn.server logs at start-up: the plain message and a coloured copy.
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)",
        "http",
        "0.0.0.0",
        8000,
        extra={
            "color_message": "Uvicorn running on \x1b[1m%s://%s:%d\x1b[0m (Press CTRL+C to quit)"
        },
    )
    line = captured.getvalue().strip()
    assert ESC not in line and "\\u001b" not in line
    entry = json.loads(line)
    assert "color_message" not in entry
    assert entry["message"] == "Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)"


async def test_a_real_uvicorn_server_logs_json_without_colour(captured: io.StringIO) -> None:
    # uvicorn's own start-up and shutdown lines ("Started server process", "Uvicorn
    # running on ...") carry color_message; use_colors=True as on a terminal.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("no request is made")

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, use_colors=True, lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    server.should_exit = True
    await asyncio.wait_for(task, 10)
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    messages = [entry["message"] for entry in lines]
    assert any(m.startswith("Uvicorn running on http://127.0.0.1:") for m in messages), messages
    assert any(m.startswith("Started server process") for m in messages), messages
    assert ESC not in captured.getvalue() and "\\u001b" not in captured.getvalue()
    assert not any("color_message" in entry for entry in lines)


def test_ansi_sequences_are_stripped_from_messages_and_extras() -> None:
    record = logging.LogRecord(
        "arq.worker", logging.INFO, __file__, 1, "\x1b[32mok\x1b[0m job", None, None
    )
    record.detail = "\x1b[1;31mred\x1b[0m"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "ok job"
    assert entry["detail"] == "red"
