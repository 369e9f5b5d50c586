"""Running wrk and reading its results from a Lua `done` hook (exact microseconds)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.machine import Pinning

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"socket_errors":%d,"non2xx":%d,'
    .. '"p50_us":%d,"p99_us":%d,"mean_us":%.1f}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    socket_errors: int
    non2xx: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def script(
    workdir: Path,
    name: str,
    *,
    headers: dict[str, str] | None = None,
    delay_ms: float | None = None,
    paths: list[str] | None = None,
) -> Path:
    """A wrk Lua script: extra headers, a fixed think time per request, rotating paths."""
    lines = [f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items()]
    if delay_ms is not None:
        lines.append(f"delay = function() return {delay_ms} end")
    if paths:
        quoted = ", ".join(f'"{p}"' for p in paths)
        lines += [
            f"local paths = {{{quoted}}}",
            "local i = 0",
            "request = function()",
            "  i = i + 1",
            "  return wrk.format(nil, paths[(i % #paths) + 1])",
            "end",
        ]
    path = workdir / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n" + _DONE)
    return path


def run(
    url: str,
    lua: Path,
    *,
    pinning: Pinning,
    duration: float,
    connections: int = 32,
    threads: int = 2,
) -> WrkResult:
    argv = [
        *pinning.load_prefix(),
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(lua),
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            data = json.loads(line.removeprefix("BENCH "))
            return WrkResult(
                requests=data["requests"],
                seconds=data["duration_us"] / 1e6,
                socket_errors=data["socket_errors"],
                non2xx=data["non2xx"],
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
            )
    raise RuntimeError(f"wrk gave no result ({done.returncode}):\n{done.stdout}\n{done.stderr}")
