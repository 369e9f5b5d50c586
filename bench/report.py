"""The table a run prints: one row per measured bar, ratios first, absolute numbers after."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    scenario: str
    measure: str
    value: str
    bar: str
    passed: bool | None  # None: reported, no bar
    detail: str = ""


def verdict(passed: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "-"}[passed]


def table(rows: list[Row]) -> str:
    header = ("scenario", "measure", "value", "bar", "result", "absolute numbers")
    cells = [header] + [
        (r.scenario, r.measure, r.value, r.bar, verdict(r.passed), r.detail) for r in rows
    ]
    lines = ["| " + " | ".join(c) + " |" for c in cells]
    lines.insert(1, "|" + "|".join("---" for _ in header) + "|")
    return "\n".join(lines)


def pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]
