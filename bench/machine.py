"""The machine a run happened on, and how processes are pinned to its cores."""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pinning:
    """Server on one core, load generator on another, when there are two and taskset."""

    server_cpu: int | None
    load_cpu: int | None

    @classmethod
    def detect(cls) -> Pinning:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2 and shutil.which("taskset"):
            return cls(server_cpu=cpus[0], load_cpu=cpus[-1])
        return cls(server_cpu=None, load_cpu=None)

    def server_prefix(self) -> list[str]:
        return [] if self.server_cpu is None else ["taskset", "-c", str(self.server_cpu)]

    def load_prefix(self) -> list[str]:
        return [] if self.load_cpu is None else ["taskset", "-c", str(self.load_cpu)]

    def describe(self) -> str:
        if self.server_cpu is None:
            return "not pinned"
        return f"server on CPU {self.server_cpu}, load generator on CPU {self.load_cpu}"


def describe() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({model}), {mem_kb / 1024 / 1024:.1f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}, "
        f"load average at start {load}"
    )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")
