"""2. Scrape under load: steady-rate requests, with and without a scrape every second.

The app is the real one with SERVE_PROMETHEUS_ENDPOINT on and ~1,000 extra label sets
(~20k exposition lines). The load is paced (each connection waits between requests), so
latency is the server's, not a queue the load generator built.
"""

from __future__ import annotations

import os
import threading
import time

import httpx

from bench import wrk
from bench.plan import Plan
from bench.report import Row, median, pct
from bench.services import Services
from observability.priority import background_priority

SCENARIO = "2 scrape under load"
CONNECTIONS = 16
THINK_MS = 10  # per connection: at most ~1,600 requests/s, well under capacity


class Scraper(threading.Thread):
    """Prometheus's part of the load: a scrape every `every` seconds, from the load core.

    Reading and counting a 20k-line answer costs this thread milliseconds of CPU per scrape.
    Left unpinned, the kernel may run it on the server's core, where it would compete with
    the requests being measured; at normal priority on the load core, it would delay wrk,
    whose clock measures them. So it runs there only when wrk leaves the core idle.
    """

    def __init__(self, url: str, *, cpu: int | None, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.cpu = cpu
        self.every = every
        self.durations: list[float] = []
        self.lines = 0
        self._stopping = threading.Event()

    def run(self) -> None:
        # For both calls, 0 is this thread, not the whole process.
        if self.cpu is not None:
            os.sched_setaffinity(0, {self.cpu})
        background_priority()
        with httpx.Client(timeout=30) as client:
            while not self._stopping.is_set():
                started = time.perf_counter()
                response = client.get(self.url)
                self.durations.append(time.perf_counter() - started)
                response.raise_for_status()
                self.lines = response.text.count("\n")
                self._stopping.wait(max(0.0, self.every - (time.perf_counter() - started)))

    def stop(self) -> None:
        self._stopping.set()
        self.join(60)


# The two ways the web process renders, both in a long-lived child: from a copy of the
# values the event loop sends it (single-process mode, the default; the only one with
# exemplars), or from the files (multiprocess mode, PROMETHEUS_MULTIPROC_DIR).
MODES = {"single-process mode, copied values": False, "multiprocess mode, files": True}


def run(services: Services, plan: Plan) -> list[Row]:
    rows: list[Row] = []
    for mode, multiproc in MODES.items():
        rows += measure(services, plan, mode, multiproc=multiproc)
    return rows


def measure(services: Services, plan: Plan, mode: str, *, multiproc: bool) -> list[Row]:
    env: dict[str, str] = {}
    if multiproc:
        directory = services.workdir / "scrape-multiproc"
        directory.mkdir(exist_ok=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    name = "scrape-web-multiproc" if multiproc else "scrape-web"
    base = services.web(
        name,
        "bench.apps:large_registry",
        factory=True,
        SERVE_PROMETHEUS_ENDPOINT="true",
        DATABASE_URL=f"sqlite+aiosqlite:///{services.workdir / (name + '.db')}",
        REDIS_URL=services.redis_url(),
        **env,
    )
    lua = wrk.script(services.workdir, "paced", delay_ms=THINK_MS)
    target = base + "/healthz"

    def load(duration: float) -> wrk.WrkResult:
        return wrk.run(
            target, lua, pinning=services.pinning, duration=duration, connections=CONNECTIONS
        )

    load(plan.warmup)
    quiet: list[wrk.WrkResult] = []
    scraped: list[wrk.WrkResult] = []
    scrapes: list[float] = []
    lines = 0
    for round_ in range(plan.rounds):
        for with_scrape in (round_ % 2 == 0, round_ % 2 == 1):
            if not with_scrape:
                quiet.append(load(plan.duration))
                continue
            scraper = Scraper(base + "/debug/metrics", cpu=services.pinning.load_cpu)
            scraper.start()
            try:
                scraped.append(load(plan.duration))
            finally:
                scraper.stop()
            scrapes += scraper.durations
            lines = scraper.lines

    failed = sum(r.socket_errors + r.non2xx for r in quiet + scraped)
    if failed:
        raise RuntimeError(f"scrape: {failed} failed requests")
    p99_quiet = median([r.p99_ms for r in quiet])
    p99_scraped = median([r.p99_ms for r in scraped])
    rps = median([r.rps for r in quiet + scraped])
    ratio = p99_scraped / p99_quiet
    return [
        Row(
            SCENARIO,
            f"{mode}: request p99, scraped vs not",
            pct(ratio),
            "<= 125%",
            ratio <= 1.25,
            f"{p99_scraped:.2f} vs {p99_quiet:.2f} ms at ~{rps:,.0f} req/s",
        ),
        Row(
            SCENARIO,
            f"{mode}: scrape time (median, max)",
            f"{median(scrapes) * 1000:.0f} ms",
            "",
            None,
            f"max {max(scrapes) * 1000:.0f} ms; {lines:,} lines; {len(scrapes)} scrapes",
        ),
    ]
