"""Throughput: how many pull requests a day's queue lands, per mode, against a model limit.

A discrete-event simulation of a working day, deterministic and in process: the real
engine, planner and executor (`mergequeue.queue.engine.evaluate`) on the fake GitHub's git
model and scripted CI (`tests.queue.harness.Harness`: `MemoryGitHub` over `FakeGitHub`,
the memory store), with a simulated clock and no sleeps.

- Pull requests arrive as a Poisson process, `arrivals_per_hour` an hour for `day` (8 h),
  each opened on the base branch's head and labelled at once; then nobody acts and the
  queue drains. Each touches its own file; a bad one (probability `bad`) also adds a file
  under `bad/`, which the CI's bad paths fail: every build containing it fails.
- CI runs on the queue's staging branches (`mergequeue/*`) and, in serial mode, on the pull
  requests' heads (serial mode tests and merges a head brought up to date). Each run takes
  `ci` (30 min) times a uniform factor within +-`spread` (20%), drawn when it starts; the
  simulation keeps an event queue of (time, run) and completes the run then
  (`FakeGitHub.complete_ci` for its sha). A run that contains no bad file fails by flake
  with probability `flake`: every tree holds `ci/flaky`, a flaky path of the scripted CI,
  so each run draws its flake from the CI's seed, its commit and its attempt.
- The engine is evaluated when a webhook would wake it (a label; a check run completing,
  also on a dropped build's branch) and at the reconciliation deadline it records
  (`repository.deadline_at`: a batch's wait, a build's CI timeout), as production does.
  Should the queue hold entries with nothing scheduled, a quiet reconciliation a minute
  later is simulated and counted (`stalls`: none is expected).

Modes are rows of `MODES`; add a row (any repository setting the planner reads) to compare
another configuration. `python -m bench.throughput` prints the table; `--plot PATH` also
draws landed per hour against the arrival rate (`docs/throughput.png`).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import math
import random
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mergequeue.models import QueueEntryState
from tests.queue.harness import FULL_NAME, T0, Harness

FLAKY_PATH = "ci/flaky"


@dataclass(frozen=True)
class Inputs:
    """What the day brings; the same for every mode."""

    arrivals_per_hour: float
    day: timedelta = timedelta(hours=8)
    ci: timedelta = timedelta(minutes=30)
    spread: float = 0.2
    bad: float = 0.05
    flake: float = 0.02

    @property
    def ci_hours(self) -> float:
        return self.ci.total_seconds() / 3600

    @property
    def warm_up(self) -> timedelta:
        """Landings before this are left out of the rate: nothing can land before a first
        CI run has finished."""
        return min(2 * self.ci, self.day / 2)


@dataclass(frozen=True)
class Mode:
    """One configuration: the repository settings it sets, and the builds at once (k) and
    batch size (b) its limit is modelled with."""

    name: str
    settings: dict[str, Any]
    builds: int = 1
    batch: int = 1


def parallel(builds: int, batch: int = 1, **more: Any) -> Mode:
    name = f"parallel, {builds} builds" + (f", batch {batch}" if batch > 1 else "")
    if more.get("failure_depth"):
        name += f", failure depth {more['failure_depth']}"
    settings = {
        "queue_mode": "parallel",
        "max_parallel_builds": builds,
        "batch_size": batch,
        **more,
    }
    return Mode(name, settings, builds, batch)


# Add a row to compare another configuration (e.g. the planner's failure depth).
MODES: tuple[Mode, ...] = (
    Mode("serial", {"queue_mode": "serial"}),
    parallel(4),
    parallel(8),
    parallel(12),
    parallel(16),
    parallel(4, batch=4),
    parallel(8, batch=4),
    parallel(8, failure_depth=2),
    parallel(8, failure_depth=4),
    parallel(16, failure_depth=2),
    # `auto`: sized from the measured builds; modelled at its cap's nominal 8.
    Mode("parallel, auto", {"queue_mode": "parallel", "max_parallel_builds": 0}, 8, 1),
)


def limit(mode: Mode, inputs: Inputs, good_per_hour: float | None = None) -> float:
    """The model's landings per hour (see docs/benchmarks.md, "Throughput").

    Demand: the good pull requests that arrive (`good_per_hour` when counted, else
    lambda (1-p)) and no flake removes, times (1-f).
    Capacity, in rounds of D: the k builds of b pull requests in flight finish together; a
    build fails with q = 1 - (1-p)^b (1-f). What passed ahead of the first failure lands,
    every build behind it is made again: a round lands its passed prefix,
    b (1-q)(1-(1-q)^k)/q pull requests (k b without failures; serial is k = b = 1,
    (1-q)/D <= 1/D). A failed batch (b > 1) is bisected before its good members land:
    log2(b) more rounds when a bad pull request failed it, one when a flake did.
    """
    p, f, k, b = inputs.bad, inputs.flake, mode.builds, mode.batch
    if good_per_hour is None:
        good_per_hour = inputs.arrivals_per_hour * (1 - p)
    demand = good_per_hour * (1 - f)
    passes = (1 - p) ** b * (1 - f)
    q = 1 - passes
    if q == 0:
        return min(demand, k * b / inputs.ci_hours)
    landed_per_round = b * passes * (1 - passes**k) / q
    extra = 0.0
    if b > 1:
        with_bad = 1 - (1 - p) ** b
        extra = (with_bad * math.ceil(math.log2(b)) + (q - with_bad)) / q
    rounds = 1 + (1 - passes**k) * extra
    return min(demand, landed_per_round / rounds / inputs.ci_hours)


@dataclass
class Outcome:
    """What one simulated day did."""

    arrivals: int = 0
    bad_arrivals: int = 0
    landed: int = 0
    landed_in_window: int = 0
    window_hours: float = 0.0
    in_queue: list[float] = field(default_factory=list)  # seconds, landed pull requests
    dequeued: Counter[str] = field(default_factory=Counter)
    unfinished: int = 0  # neither landed nor dequeued with a reason after the drain
    ci_runs: int = 0
    # Parallel mode's builds by how they ended: passed (landed), failed, obsolete (dropped
    # because a build ahead failed), timed_out, conflict.
    builds: Counter[str] = field(default_factory=Counter)
    bad_landed: int = 0
    untested_trees: int = 0
    drained_after: float = 0.0  # seconds after the day's end
    evaluations: int = 0
    stalls: int = 0

    def add(self, other: Outcome) -> None:
        for name in (
            "arrivals",
            "bad_arrivals",
            "landed",
            "landed_in_window",
            "window_hours",
            "unfinished",
            "ci_runs",
            "bad_landed",
            "untested_trees",
            "evaluations",
            "stalls",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.in_queue += other.in_queue
        self.dequeued += other.dequeued
        self.builds += other.builds
        self.drained_after = max(self.drained_after, other.drained_after)

    @property
    def landed_per_hour(self) -> float:
        return self.landed_in_window / self.window_hours if self.window_hours else 0.0

    @property
    def builds_per_landed(self) -> float:
        return self.ci_runs / self.landed if self.landed else math.inf

    def in_queue_quantile(self, q: float) -> float:
        """Seconds; nearest rank."""
        if not self.in_queue:
            return math.nan
        ordered = sorted(self.in_queue)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# Event kinds, in the order they are handled at one instant.
_CI, _ARRIVE, _DEADLINE, _RECONCILE = range(4)
# Quiet reconciliations in a row that change nothing before the queue is declared stuck.
MAX_STALLS = 30
# The drain gives up this long after the day (a mode that cannot drain is reported).
MAX_DRAIN = timedelta(days=10)


class Day:
    """One mode through one seeded day."""

    def __init__(self, mode: Mode, inputs: Inputs, seed: int) -> None:
        self.mode, self.inputs, self.seed = mode, inputs, seed
        h = self.h = Harness(required=("ci",))
        h.configure(**mode.settings)
        serial = mode.settings.get("queue_mode", "serial") == "serial"
        fake = h.fake
        fake.push(full_name=FULL_NAME, branch="main", files={FLAKY_PATH: "may fail\n"})
        fake.set_ci(
            full_name=FULL_NAME,
            bad_paths=["bad/*"],
            flaky={FLAKY_PATH: inputs.flake} if inputs.flake else None,
            seed=seed,
            branches=("mergequeue/*", "feature-*") if serial else ("mergequeue/*",),
        )
        self.repo = fake.repo(FULL_NAME)
        self.initial_moves = len(self.repo.moves["main"])
        self.ci_rng = random.Random(f"{seed}:ci")
        self.events: list[tuple[float, int, int, Any]] = []
        self.sequence = 0
        self.runs_seen = 0
        self.deadlines: set[float] = set()
        self.bad: set[int] = set()
        self.evaluations = 0
        self.stalls = 0
        # When each entry left the queue, in simulated seconds (the store stamps
        # `finished_at` with the wall clock).
        self.left_at: dict[int, float] = {}
        self.now = 0.0  # seconds since T0

    # -- the event queue ---------------------------------------------------------------

    def at(self, when: float, kind: int, payload: Any = None) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (when, kind, self.sequence, payload))

    def schedule_ci(self) -> None:
        """Runs CI started since last time finish D +- spread later."""
        runs = self.h.fake.ci_runs
        spread, seconds = self.inputs.spread, self.inputs.ci.total_seconds()
        for run in runs[self.runs_seen :]:
            self.at(self.now + seconds * self.ci_rng.uniform(1 - spread, 1 + spread), _CI, run)
        self.runs_seen = len(runs)

    def schedule_deadline(self) -> None:
        deadline = self.h.repository.deadline_at
        if deadline is None:
            return
        when = max((deadline - T0).total_seconds(), self.now + 1)
        if when not in self.deadlines:
            self.deadlines.add(when)
            self.at(when, _DEADLINE)

    # -- what happens ------------------------------------------------------------------

    async def evaluate(self) -> None:
        self.evaluations += 1
        await self.h.evaluate()
        for entry in self.h.store.entries:
            if entry.state != QueueEntryState.QUEUED and entry.id not in self.left_at:
                self.left_at[entry.id] = self.now

    def arrive(self, bad: bool) -> None:
        number = len(self.repo.pulls) + 1
        files = {f"changes/{number}.txt": f"change {number}\n"}
        if bad:
            files[f"bad/{number}.txt"] = "fails CI\n"
            self.bad.add(number)
        self.h.open_pull(files=files)

    async def run(self, arrivals: Sequence[tuple[float, bool]]) -> Outcome:
        for when, bad in arrivals:
            self.at(when, _ARRIVE, bad)
        day_end = self.inputs.day.total_seconds()
        give_up = day_end + MAX_DRAIN.total_seconds()
        quiet = 0
        while self.events:
            when, kind, _, payload = heapq.heappop(self.events)
            if when > give_up:
                break
            self.now = when
            self.h.now = T0 + timedelta(seconds=when)
            wake = False
            if kind == _CI:
                if payload.status != "completed":
                    self.h.fake.complete_ci(full_name=FULL_NAME, sha=payload.sha, name="ci")
                wake = True
            elif kind == _ARRIVE:
                self.arrive(payload)
                self.schedule_ci()
                number = max(self.repo.pulls)
                await self.h.label(number)
                wake = True
            elif kind == _DEADLINE:
                self.deadlines.discard(when)
                deadline = self.h.repository.deadline_at
                wake = deadline is not None and deadline <= self.h.now
            else:
                self.stalls += 1
                wake = True
            if not wake:
                continue
            before = self._progress()
            await self.evaluate()
            self.schedule_ci()
            self.schedule_deadline()
            if not self.events and await self.h.store.queued(self.h.repository.id):
                # Nothing scheduled, yet entries are queued: production's reconciliation
                # re-reads a quiet queue after a minute.
                quiet = quiet + 1 if kind == _RECONCILE and self._progress() == before else 0
                if quiet < MAX_STALLS:
                    self.at(self.now + 60, _RECONCILE)
        return self.outcome()

    def _progress(self) -> tuple[int, int]:
        """CI runs started and entries finished: what a stuck queue does not change."""
        return len(self.h.fake.ci_runs), len(self.left_at)

    # -- what it did -------------------------------------------------------------------

    def outcome(self) -> Outcome:
        inputs, store, fake = self.inputs, self.h.store, self.h.fake
        day_end = inputs.day.total_seconds()
        window_start = inputs.warm_up.total_seconds()
        out = Outcome(
            arrivals=len(store.entries),
            bad_arrivals=len(self.bad),
            window_hours=(inputs.day - inputs.warm_up).total_seconds() / 3600,
            ci_runs=len(fake.ci_runs),
            evaluations=self.evaluations,
            stalls=self.stalls,
        )
        last = day_end
        for entry in store.entries:
            number = store.numbers[entry.id]
            if entry.state == QueueEntryState.QUEUED:
                out.unfinished += 1
                continue
            left = self.left_at[entry.id]
            last = max(last, left)
            if entry.state == QueueEntryState.MERGED:
                out.landed += 1
                out.in_queue.append(left - (entry.enqueued_at - T0).total_seconds())
                if window_start < left <= day_end:
                    out.landed_in_window += 1
            elif not entry.dequeue_reason:
                out.unfinished += 1
            elif entry.dequeue_reason == "check_failed":
                out.dequeued["bad" if number in self.bad else "flake"] += 1
            else:
                out.dequeued[entry.dequeue_reason] += 1
        out.drained_after = last - day_end
        out.builds = Counter(b.outcome or b.state.value for b in store.builds)
        out.bad_landed = sum(self.repo.pulls[n].merged for n in self.bad)
        passed = {
            run.tree_sha
            for run in fake.ci_runs
            if run.status == "completed" and run.conclusion == "success"
        }
        held = self.repo.moves["main"][self.initial_moves :]
        out.untested_trees = sum(self.repo.git.get(sha).tree_sha not in passed for sha in held)
        return out


def arrivals(inputs: Inputs, seed: int) -> list[tuple[float, bool]]:
    """(seconds, bad) of each pull request: the same for every mode of a seed."""
    rng = random.Random(f"{seed}:arrivals")
    found: list[tuple[float, bool]] = []
    rate = inputs.arrivals_per_hour / 3600
    when = rng.expovariate(rate) if rate > 0 else math.inf
    while when < inputs.day.total_seconds():
        found.append((when, rng.random() < inputs.bad))
        when += rng.expovariate(rate)
    return found


async def simulate(mode: Mode, inputs: Inputs, seeds: Iterable[int]) -> Outcome:
    total = Outcome()
    for seed in seeds:
        total.add(await Day(mode, inputs, seed).run(arrivals(inputs, seed)))
    return total


@dataclass(frozen=True)
class Result:
    mode: Mode
    inputs: Inputs
    seeds: int
    outcome: Outcome
    seconds: float  # wall time of the simulation

    @property
    def limit(self) -> float:
        """For the pull requests that did arrive (Poisson draws vary about lambda)."""
        o = self.outcome
        hours = self.seeds * self.inputs.day.total_seconds() / 3600
        return limit(self.mode, self.inputs, (o.arrivals - o.bad_arrivals) / hours)


async def measure(
    modes: Sequence[Mode], rates: Sequence[float], seeds: Sequence[int], base: Inputs
) -> list[Result]:
    results = []
    for rate in rates:
        inputs = Inputs(
            arrivals_per_hour=rate,
            day=base.day,
            ci=base.ci,
            spread=base.spread,
            bad=base.bad,
            flake=base.flake,
        )
        for mode in modes:
            started = time.perf_counter()
            outcome = await simulate(mode, inputs, seeds)
            results.append(Result(mode, inputs, len(seeds), outcome, time.perf_counter() - started))
    return results


def _minutes(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    return f"{seconds / 60:,.0f} min" if seconds < 5400 else f"{seconds / 3600:,.1f} h"


def render(results: Sequence[Result]) -> str:
    lines = [
        "| mode | λ/h | arrived (bad) | landed | landed/h | limit/h | time in queue p50 / p90 "
        "| CI builds per landed | builds passed / failed / dropped behind a failure "
        "| dequeued: bad / flake / other | bad landed "
        "| untested trees landed | not finished | drained after the day |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        o = r.outcome
        other = sum(n for reason, n in o.dequeued.items() if reason not in ("bad", "flake"))
        lines.append(
            f"| {r.mode.name} | {r.inputs.arrivals_per_hour:g} | {o.arrivals} ({o.bad_arrivals}) "
            f"| {o.landed} ({o.landed / o.arrivals:.0%}) | {o.landed_per_hour:.1f} "
            f"| {r.limit:.1f} | {_minutes(o.in_queue_quantile(0.5))} / "
            f"{_minutes(o.in_queue_quantile(0.9))} | {o.builds_per_landed:.2f} "
            f"| {_builds(o)} | {o.dequeued['bad']} / {o.dequeued['flake']} / {other} "
            f"| {o.bad_landed} "
            f"| {o.untested_trees} | {o.unfinished} | {_minutes(o.drained_after)} |"
        )
    return "\n".join(lines)


def _builds(o: Outcome) -> str:
    if not o.builds:
        return "-"
    return f"{o.builds['passed']} / {o.builds['failed']} / {o.builds['obsolete']}"


def render_sweep(results: Sequence[Result]) -> str:
    """Landed per hour (model limit) and p90 time in queue, by arrival rate and mode."""
    modes = list(dict.fromkeys(r.mode.name for r in results))
    rates = sorted({r.inputs.arrivals_per_hour for r in results})
    cell = {(r.inputs.arrivals_per_hour, r.mode.name): r for r in results}
    lines = [
        "| λ/h | " + " | ".join(modes) + " |",
        "|---:|" + "---:|" * len(modes),
    ]
    for rate in rates:
        cells = []
        for name in modes:
            r = cell.get((rate, name))
            if r is None:
                cells.append("")
                continue
            p90 = _minutes(r.outcome.in_queue_quantile(0.9))
            cells.append(f"{r.outcome.landed_per_hour:.1f} ({r.limit:.1f}), p90 {p90}")
        lines.append(f"| {rate:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bars(results: Sequence[Result]) -> list[str]:
    """The recorded run's bars, at lambda = 12/h: (what, value, met)."""
    lines = []
    at12 = {r.mode.name: r for r in results if r.inputs.arrivals_per_hour == 12}
    for r in results:
        o = r.outcome
        ok = o.bad_landed == 0 and o.untested_trees == 0 and o.unfinished == 0
        if not ok:
            lines.append(f"FAIL invariants: {r.mode.name} at {r.inputs.arrivals_per_hour:g}/h")
    eight, serial = at12.get("parallel, 8 builds"), at12.get("serial")
    if eight is not None:
        o, d = eight.outcome, eight.inputs.ci.total_seconds()
        good = o.arrivals - o.bad_arrivals
        p90 = o.in_queue_quantile(0.9)
        lines.append(
            f"{'pass' if o.landed >= 0.95 * o.arrivals else 'FAIL'} 8 builds at 12/h: landed "
            f"{o.landed}/{o.arrivals} arrivals = {o.landed / o.arrivals:.1%} (bar >= 95%; "
            f"{o.landed / good:.1%} of the {good} good ones)"
        )
        lines.append(
            f"{'pass' if p90 <= 3 * d else 'FAIL'} 8 builds at 12/h: p90 time in queue "
            f"{p90 / 60:.0f} min (bar <= 3 D = {3 * d / 60:.0f} min)"
        )
        lines.append(
            f"{'pass' if o.builds_per_landed <= 2.0 else 'FAIL'} 8 builds at 12/h: "
            f"{o.builds_per_landed:.2f} CI builds per landed pull request (bar <= 2.0)"
        )
    if serial is not None:
        o = serial.outcome
        lines.append(
            f"serial at 12/h: {o.landed_per_hour:.1f} landed/h, p90 time in queue "
            f"{_minutes(o.in_queue_quantile(0.9))}, drained {_minutes(o.drained_after)} "
            "after the day"
        )
    return lines


def plot(results: Sequence[Result], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    modes = list(dict.fromkeys(r.mode.name for r in results))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, name in enumerate(modes):
        rows = sorted(
            (r for r in results if r.mode.name == name), key=lambda r: r.inputs.arrivals_per_hour
        )
        rates = [r.inputs.arrivals_per_hour for r in rows]
        color = colors[i % len(colors)]
        ax.plot(rates, [r.outcome.landed_per_hour for r in rows], "o-", color=color, label=name)
        ax.plot(rates, [r.limit for r in rows], "--", color=color, alpha=0.6)
    top = max(r.inputs.arrivals_per_hour for r in results)
    ax.plot([0, top], [0, top], ":", color="grey", label="arrivals (λ)")
    first = results[0].inputs
    ax.set_xlabel("pull requests arriving per hour (λ)")
    ax.set_ylabel("landed per hour")
    ax.set_title(
        f"Landed per hour, D = {first.ci_hours * 60:.0f} min ±{first.spread:.0%}, "
        f"p = {first.bad:.0%} bad, f = {first.flake:.0%} flaky; dashed: model limit",
        fontsize=9,
    )
    ax.set_xlim(0, top * 1.02)
    ax.set_ylim(0, None)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__)
    parser.add_argument("--rates", default="12", help="arrivals per hour, comma-separated")
    parser.add_argument("--seeds", type=int, default=5, help="days simulated per cell")
    parser.add_argument("--hours", type=float, default=8.0, help="length of the day")
    parser.add_argument("--ci-minutes", type=float, default=30.0)
    parser.add_argument("--bad", type=float, default=0.05)
    parser.add_argument("--flake", type=float, default=0.02)
    parser.add_argument("--modes", help="a subset of the modes, by name, separated by ';'")
    parser.add_argument("--plot", metavar="PATH", help="also draw landed/h against λ")
    args = parser.parse_args(argv)
    modes = MODES
    if args.modes:
        chosen = [name.strip() for name in args.modes.split(";")]
        modes = tuple(m for m in MODES if m.name in chosen)
        if len(modes) != len(chosen):
            parser.error(f"modes are: {'; '.join(m.name for m in MODES)}")
    rates = [float(x) for x in args.rates.split(",")]
    base = Inputs(
        arrivals_per_hour=0,
        day=timedelta(hours=args.hours),
        ci=timedelta(minutes=args.ci_minutes),
        bad=args.bad,
        flake=args.flake,
    )
    started = time.perf_counter()
    results = asyncio.run(measure(modes, rates, list(range(args.seeds)), base))
    print(
        f"{args.seeds} seeded days of {args.hours:g} h per cell; D = {args.ci_minutes:g} min "
        f"±{base.spread:.0%}, p = {args.bad:.0%}, f = {args.flake:.0%}; "
        f"{time.perf_counter() - started:.0f} s"
    )
    if len(rates) > 1:
        print()
        print("landed per hour (model limit), p90 time in queue:")
        print()
        print(render_sweep(results))
    print()
    print(render(results))
    print()
    for line in bars(results):
        print(line)
    if args.plot:
        plot(results, args.plot)
        print(f"\nwrote {args.plot}")


if __name__ == "__main__":
    main()
