"""How long and how often each scenario runs: the full run, and the CI smoke run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    rounds: int  # interleaved rounds of the scrape comparison; medians are reported
    pair_rounds: int  # rounds of the latency comparisons, each variant once per round
    shared_rounds: int  # rounds of the throughput comparisons on a shared core
    pair_seconds: float  # seconds of load per variant per round, in either
    duration: float  # seconds of load per measurement
    warmup: float  # seconds of load before measuring, results discarded
    ingest_seconds: float
    merges: int  # pull requests in the time-to-merge scenario
    memory_requests: int
    memory_jobs: int

    @classmethod
    def full(cls) -> Plan:
        return cls(
            rounds=5,
            pair_rounds=20,
            shared_rounds=15,
            pair_seconds=3,
            duration=10,
            warmup=2,
            ingest_seconds=10,
            merges=30,
            memory_requests=200_000,
            memory_jobs=20_000,
        )

    @classmethod
    def smoke(cls) -> Plan:
        return cls(
            rounds=1,
            pair_rounds=1,
            shared_rounds=1,
            pair_seconds=1,
            duration=1,
            warmup=1,
            ingest_seconds=1,
            merges=2,
            memory_requests=2_000,
            memory_jobs=100,
        )
