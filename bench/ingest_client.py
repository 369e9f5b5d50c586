"""A load generator for signed webhook deliveries: `python -m bench.ingest_client ...`.

wrk cannot tell which deliveries were answered before it cut the connections at the end,
so the check "the database holds exactly as many deliveries as were answered 202" needs a
client that lets every request it sent finish. This one runs on its own core: raw HTTP/1.1
on keep-alive connections over uvloop, every request signed and serialised before the
clock starts, so it sends far faster than one web process accepts.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import uvloop

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "webhooks"
EVENTS = {"pull_request": "pull_request.synchronize", "check_run": "check_run.completed"}


def requests(count: int, secret: str, host: str) -> list[bytes]:
    """Alternating pull_request and check_run deliveries, each with its own delivery id."""
    bodies = {
        event: json.dumps(json.loads((FIXTURES / f"{name}.json").read_text())).encode()
        for event, name in EVENTS.items()
    }
    events = list(bodies)
    made = []
    for i in range(count):
        event = events[i % len(events)]
        body = bodies[event]
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        head = (
            f"POST /api/webhook HTTP/1.1\r\nHost: {host}\r\n"
            f"User-Agent: GitHub-Hookshot/bench\r\nContent-Type: application/json\r\n"
            f"X-GitHub-Event: {event}\r\nX-GitHub-Delivery: {uuid.uuid4()}\r\n"
            f"X-Hub-Signature-256: sha256={signature}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        made.append(head.encode() + body)
    return made


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def load(
    host: str, port: int, payloads: list[bytes], connections: int, seconds: float
) -> dict[str, Any]:
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    queue = iter(payloads)
    deadline = time.perf_counter() + seconds
    errors = 0

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for payload in queue:
                started = time.perf_counter()
                writer.write(payload)
                # Every request sent is answered and counted, even past the deadline.
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1
                if time.perf_counter() >= deadline:
                    return
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "answered": len(latencies),
        "seconds": elapsed,
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": errors,
        "exhausted": len(latencies) >= len(payloads),
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else 0.0,
        "p99_ms": latencies[max(0, -(-len(latencies) * 99 // 100) - 1)] * 1000
        if latencies
        else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_client")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--count", type=int, required=True, help="deliveries prepared")
    args = parser.parse_args()
    payloads = requests(args.count, args.secret, f"127.0.0.1:{args.port}")
    result = uvloop.run(load("127.0.0.1", args.port, payloads, args.connections, args.seconds))
    print("BENCH " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
