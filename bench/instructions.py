"""Instructions per request of the request-instrumentation apps, counted by callgrind.

`python -m bench.instructions [APP ...]` prints, for each app factory of `bench.apps`
(default: every variant of scenario 1), how many instructions one request costs, and how
many more than the uninstrumented app. Unlike a timing, the count does not depend on what
the host does meanwhile, so it tells small differences apart that wrk cannot; it does not
see cache misses, which end to end make the instrumentation's share larger.

Each app is driven in-process through uvicorn's own httptools protocol with a fake
transport (no sockets, no kernel), under `valgrind --tool=callgrind`, twice: the
difference between a short and a long run, divided by the difference in requests,
leaves out start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REQUEST = b"GET /items/42 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
WARMUP = 500


class _Transport(asyncio.Transport):
    """Counts writes; the response is done at its second (status and headers, body)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.done: asyncio.Future[None] | None = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes += 1
        if self.done is not None and self.writes % 2 == 0:
            self.done.set_result(None)
            self.done = None

    def is_closing(self) -> bool:
        return False


async def _serve(factory: str, requests: int) -> None:
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    module, name = factory.split(":")
    app = getattr(importlib.import_module(module), name)()
    config = Config(app=app, http="httptools", access_log=False, lifespan="off")
    config.load()
    protocol = HttpToolsProtocol(config, ServerState(), {})
    transport = _Transport()
    protocol.connection_made(transport)
    loop = asyncio.get_running_loop()
    for _ in range(WARMUP + requests):
        transport.done = loop.create_future()
        protocol.data_received(REQUEST)
        await transport.done


def _count(factory: str, requests: int, workdir: Path) -> int:
    # Imported here, not at the top: the process callgrind runs only serves, and need not
    # import the whole harness first.
    from tests.support.processes import ROOT

    out = workdir / f"callgrind.{os.getpid()}.{requests}"
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.instructions",
            "--serve",
            factory,
            str(requests),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind:\n{done.stderr}")
    return int(found.group(1))


def per_request(factory: str, short: int, long: int) -> int:
    with tempfile.TemporaryDirectory() as workdir:
        first = _count(factory, short, Path(workdir))
        second = _count(factory, long, Path(workdir))
    return round((second - first) / (long - short))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("apps", nargs="*", help="names of scenario 1's variants (default: all)")
    parser.add_argument("--requests", type=int, default=2000, help="requests in the long run")
    parser.add_argument("--serve", nargs=2, metavar=("FACTORY", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        import uvloop

        uvloop.install()
        asyncio.run(_serve(args.serve[0], int(args.serve[1])))
        return 0
    from bench.instrumentation import VARIANTS as APPS

    if shutil.which("valgrind") is None:
        print("bench.instructions: valgrind is not installed", file=sys.stderr)
        return 2
    chosen = args.apps or list(APPS)
    unknown = [name for name in chosen if name not in APPS]
    if unknown:
        parser.error(f"unknown app(s): {', '.join(unknown)}; known: {', '.join(APPS)}")
    short = max(1, args.requests // 5)
    names = ["none", *[name for name in chosen if name != "none"]]
    # One callgrind per core: counts do not depend on what runs beside them.
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        runs = {name: pool.submit(per_request, APPS[name], short, args.requests) for name in names}
        counts = {name: run.result() for name, run in runs.items()}
    print("| app | instructions per request | over none |")
    print("|---|---|---|")
    for name in names:
        extra = counts[name] - counts["none"]
        over = "" if name == "none" else f"{extra:+,} ({extra / counts['none']:+.1%})"
        print(f"| {name} | {counts[name]:,} | {over} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
