"""A real Prometheus server (Debian's `prometheus`) scraping the processes under test.

    with running_prometheus(tmp_path, [ScrapeTarget("web", web.url + "/debug/metrics")]) as prom:
        prom.wait_for_scrapes()
        assert prom.query("up") ...
        assert "flask_http_request_total" in prom.metric_names()

Every scrape happens once a second, storage lives in a temporary directory, and the
server listens on a free loopback port; it is stopped when the block ends. Prometheus
asks for OpenMetrics first, as it does in production, and `exemplar_storage=True` keeps
exemplars so `exemplars()` can read them back. `rule_files` are evaluated every second
(read back with `rules()`/`alerts()`), for checking alert rules against real data.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from tests.support.processes import Process, free_port

PROMETHEUS = "prometheus"


@dataclass(frozen=True)
class ScrapeTarget:
    """One scrape job with one target: `url` is the full metrics URL, path included."""

    job: str
    url: str
    basic_auth: tuple[str, str] | None = None

    def config(self) -> dict[str, Any]:
        parts = urlsplit(self.url)
        job: dict[str, Any] = {
            "job_name": self.job,
            "scheme": parts.scheme,
            "metrics_path": parts.path or "/metrics",
            "static_configs": [{"targets": [parts.netloc]}],
        }
        if self.basic_auth is not None:
            job["basic_auth"] = {"username": self.basic_auth[0], "password": self.basic_auth[1]}
        return job


class PrometheusServer:
    def __init__(self, process: Process, port: int, jobs: Sequence[str]) -> None:
        self.process = process
        self.port = port
        self.jobs = frozenset(jobs)
        self.url = f"http://127.0.0.1:{port}"

    # -- the HTTP API ------------------------------------------------------------------

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        payload = response.json()
        if payload.get("status") != "success":
            raise AssertionError(f"Prometheus {path} {params}: {payload}")
        return payload["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result: [{"metric": {labels}, "value": [ts, "value"]}, ...]."""
        data = self.api("query", query=expr)
        if data["resultType"] != "vector":
            raise AssertionError(f"{expr!r} is a {data['resultType']}, not an instant vector")
        return list(data["result"])

    def value(self, expr: str) -> float | None:
        """The single sample `expr` evaluates to, or None when the result is empty."""
        result = self.query(expr)
        if not result:
            return None
        if len(result) > 1:
            raise AssertionError(f"{expr!r} has {len(result)} series, expected one: {result}")
        return float(result[0]["value"][1])

    def series(self, match: str) -> list[dict[str, str]]:
        """Label sets of every series matching the selector `match` (names included)."""
        return list(self.api("series", **{"match[]": match}))

    def series_exist(self, name: str) -> bool:
        return bool(self.series(name))

    def metric_names(self) -> set[str]:
        """Every metric name Prometheus knows: sample names plus metadata family names.

        Sample names carry the suffixes (`_bucket`, `_count`, `_total`...); metadata is
        keyed by family name (`flask_http_request_duration_seconds`), as dashboards and
        rules sometimes are. Both are included.
        """
        names = set(self.api("label/__name__/values"))
        names.update(self.api("metadata"))
        return names

    def metadata(self, name: str | None = None) -> dict[str, list[dict[str, str]]]:
        """Family name -> [{"type", "help", "unit"}] as scraped."""
        return dict(self.api("metadata", **({"metric": name} if name else {})))

    def targets(self) -> list[dict[str, Any]]:
        """Active targets: each has labels.job, health ("up"/"down"/"unknown"), lastError."""
        return list(self.api("targets")["activeTargets"])

    def exemplars(self, expr: str, window: float = 300.0) -> list[dict[str, Any]]:
        """Exemplars of the series `expr` selects (needs exemplar_storage=True)."""
        now = time.time()
        return list(self.api("query_exemplars", query=expr, start=now - window, end=now))

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])

    # -- waiting -----------------------------------------------------------------------

    def wait_until(
        self, predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if not self.process.alive():
                raise RuntimeError(f"prometheus exited:\n{self.process.output()}")
            time.sleep(0.2)
        raise AssertionError(f"{what} not met in {timeout}s; targets: {self.targets()}")

    def wait_for_scrapes(self, count: int = 2, timeout: float = 20.0) -> None:
        """Wait until every configured job has been scraped `count` times (up or down).

        `up` gets one sample per scrape, so counting them is exact. (The targets API is
        no guide: right after start-up it may not list every target yet.)
        """

        def scraped() -> bool:
            result = self.query("count_over_time(up[5m])")
            done = {r["metric"]["job"] for r in result if float(r["value"][1]) >= count}
            return done >= self.jobs

        self.wait_until(scraped, timeout, f"{count} scrapes of every target")


def scrape_config(
    targets: Sequence[ScrapeTarget], rule_files: Sequence[Path] = (), interval: str = "1s"
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "scrape_configs": [target.config() for target in targets],
    }
    if rule_files:
        config["rule_files"] = [str(path) for path in rule_files]
    return config


@contextmanager
def running_prometheus(
    workdir: Path,
    targets: Sequence[ScrapeTarget],
    *,
    rule_files: Sequence[Path] = (),
    exemplar_storage: bool = False,
    timeout: float = 30.0,
) -> Iterator[PrometheusServer]:
    """Start Prometheus in `workdir`, wait until it is ready, stop it afterwards."""
    binary = shutil.which(PROMETHEUS)
    if binary is None:
        raise RuntimeError("prometheus is not installed (Debian package `prometheus`)")
    port = free_port()
    home = workdir / f"prometheus-{port}"
    home.mkdir(parents=True)
    config_file = home / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(scrape_config(targets, rule_files)))
    argv = [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    if exemplar_storage:
        argv.append("--enable-feature=exemplar-storage")
    process = Process(f"prometheus:{port}", argv, {}, home / "prometheus.log")
    try:
        process.wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=timeout)
        server = PrometheusServer(process, port, [target.job for target in targets])
        server.wait_until(
            lambda: httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200,
            timeout,
            "readiness",
        )
        yield server
    finally:
        process.stop()
