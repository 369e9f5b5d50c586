"""Charts drawn on the server as inline SVG: no JavaScript, styled by the page's CSS.

Each chart is an `<svg role="img">` with a title and a one-sentence description (what a
screen reader announces); the page puts the same numbers in a table beside it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import timedelta
from html import escape

from markupsafe import Markup

from api.pages.data import DailyMerge, DepthPoint

WIDTH = 640
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 28, 28


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (axis tops)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _grid(top: float, label: str, ident: str) -> list[str]:
    parts = []
    plot_h = HEIGHT - TOP - BOTTOM
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + plot_h * (1 - fraction)
        value = top * fraction
        text = f"{value:g}" if value < 10 else f"{round(value):d}"
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{text}</text>'
        )
    parts.append(f'<text class="axis-label" x="4" y="14" id="{ident}-unit">{escape(label)}</text>')
    return parts


def _frame(ident: str, title: str, description: str, body: Sequence[str]) -> Markup:
    return Markup(
        f'<svg class="chart" id="{ident}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" preserveAspectRatio="xMidYMid meet" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(description)}</desc>' + "".join(body) + "</svg>"
    )


def duration_minutes(minutes: float) -> str:
    if minutes < 1:
        return "under a minute"
    if minutes < 90:
        return f"{round(minutes)} min"
    return f"{minutes / 60:.1f} h"


def time_to_merge(days: Sequence[DailyMerge]) -> Markup:
    """Bars: each day's median time from queueing to landing."""
    waits = [d.median_minutes for d in days if d.median_minutes is not None]
    hours = bool(waits) and max(waits) >= 90
    scale = 60.0 if hours else 1.0
    top = _nice_ceiling(max(waits, default=0) / scale)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(days))
    body = _grid(top, "hours" if hours else "minutes", "ttm")
    for i, day in enumerate(days):
        x = LEFT + i * slot
        if day.median_minutes is not None:
            h = max(1.0, plot_h * (day.median_minutes / scale) / top)
            label = (
                f"{day.day:%b %d}: median {duration_minutes(day.median_minutes)}, "
                f"{day.merged} merged"
            )
            body.append(
                f'<rect class="bar" x="{x + slot * 0.15:.1f}" y="{TOP + plot_h - h:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{h:.1f}"><title>{escape(label)}</title></rect>'
            )
        if i % 2 == (len(days) - 1) % 2:
            body.append(
                f'<text class="tick" x="{x + slot / 2:.1f}" y="{HEIGHT - 8}" '
                f'text-anchor="middle">{day.day:%d %b}</text>'
            )
    merged = sum(d.merged for d in days)
    if waits:
        overall = sorted(waits)[len(waits) // 2]
        description = (
            f"{merged} pull requests merged over {len(days)} days; the daily median time "
            f"to merge ranged from {duration_minutes(min(waits))} to "
            f"{duration_minutes(max(waits))} (typical day: {duration_minutes(overall)})."
        )
    else:
        description = f"No pull request merged in the last {len(days)} days."
    return _frame("ttm", "Median time to merge, per day", description, body)


def queue_depth(points: Sequence[DepthPoint]) -> Markup:
    """An area: how many pull requests waited in the queue, over the same days."""
    peak = max((p.depth for p in points), default=0)
    top = _nice_ceiling(peak) if peak > 0 else 1.0
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    body = _grid(top, "pull requests", "depth")
    if len(points) >= 2:
        start, end = points[0].at, points[-1].at
        span = max(1.0, (end - start).total_seconds())

        def xy(point: DepthPoint) -> tuple[float, float]:
            x = LEFT + plot_w * (point.at - start).total_seconds() / span
            y = TOP + plot_h * (1 - point.depth / top)
            return x, y

        # A step line: the depth holds until the next sample.
        coords: list[tuple[float, float]] = []
        for previous, point in itertools.pairwise(points):
            x0, y0 = xy(previous)
            x1, _ = xy(point)
            coords += [(x0, y0), (x1, y0)]
        coords.append(xy(points[-1]))
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        base = TOP + plot_h
        body.append(
            f'<polygon class="area" points="{LEFT:.1f},{base:.1f} {line} '
            f'{coords[-1][0]:.1f},{base:.1f}"/>'
        )
        body.append(f'<polyline class="line" points="{line}"/>')
        days = int(span // 86400)
        for n in range(days + 1):
            at = start + timedelta(days=n)
            if (days - n) % 2 == 0:
                x = LEFT + plot_w * (at - start).total_seconds() / span
                body.append(
                    f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 8}" '
                    f'text-anchor="middle">{at:%d %b}</text>'
                )
    now = points[-1].depth if points else 0
    description = (
        f"Queue depth over the last days: at most {peak} pull requests waiting at once; "
        f"{now} waiting now."
    )
    return _frame("depth", "Queue depth", description, body)
