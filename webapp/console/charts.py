"""Charts drawn on the server as inline SVG, one value per label (a day) for each series.

The console's Content-Security-Policy allows no inline style, so shapes carry classes only
(`grid`, `bar`, `line`, `point`, `swatch`) and the console's stylesheet colours them: each
series is drawn in a group of class `series-0`, `series-1`…, whose fill and stroke its shapes
inherit, all but a line's fill (`fill="none"`, which a rule on the group cannot override). Each
bar and point has a <title> with its value, shown on hover; a None value is a gap."""
from __future__ import annotations

import math

from markupsafe import Markup, escape

Series = list[tuple[str, list[float | None]]]

WIDTH, HEIGHT = 320, 200  # the viewBox; the SVG takes the width of its container
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 170  # the plot area's edges: y labels left of it, day labels and legend below
GRIDLINES = 4  # at most, above the zero line


def bar_chart(labels: list[str], series: Series, *, stacked: bool = False, title: str, unit: str = "") -> Markup:
    """Bars for each label: one beside the other per series, or `stacked` into one."""
    columns = list(zip(*(values for _, values in series)))  # the values at each label
    heights = [sum(v or 0 for v in column) for column in columns] if stacked else [v or 0 for c in columns for v in c]
    step, top = _y_scale(max(heights, default=0))
    slot = _slot(labels)
    bar_width = slot * 0.6 if stacked else slot * 0.8 / max(len(series), 1)
    stack = [0.0] * len(labels)  # where each label's next stacked bar starts
    groups = []
    for j, (name, values) in enumerate(series):
        bars = []
        for i, value in enumerate(values[:len(labels)]):
            if value is None:
                continue
            x = LEFT + slot * i + (slot * 0.2 if stacked else slot * 0.1 + bar_width * j)
            low = stack[i] if stacked else 0.0
            y_top, y_low = _y(low + value, top), _y(low, top)
            bars.append(f'<rect class="bar" x="{x:.2f}" y="{y_top:.2f}" width="{bar_width:.2f}" '
                        f'height="{y_low - y_top:.2f}">{_tip(labels[i], name, value, unit)}</rect>')
            stack[i] = low + value
        groups.append(_group(j, bars))
    return _svg(title, labels, [name for name, _ in series], step, top, unit, groups)


def line_chart(labels: list[str], series: Series, *, title: str, unit: str = "") -> Markup:
    """A line for each series through its value at each label, broken where a value is None."""
    peak = max((v for _, values in series for v in values if v is not None), default=0)
    step, top = _y_scale(peak)
    slot = _slot(labels)
    groups = []
    for j, (name, values) in enumerate(series):
        points = [(LEFT + slot * (i + 0.5), _y(value, top)) if value is not None else None
                  for i, value in enumerate(values[:len(labels)])]
        lines = [f'<polyline class="line" fill="none" points="{" ".join(f"{x:.2f},{y:.2f}" for x, y in run)}"/>'
                 for run in _runs(points)]
        dots = [f'<circle class="point" cx="{point[0]:.2f}" cy="{point[1]:.2f}" r="3">'
                f'{_tip(labels[i], name, values[i], unit)}</circle>'
                for i, point in enumerate(points) if point is not None]
        groups.append(_group(j, lines + dots))
    return _svg(title, labels, [name for name, _ in series], step, top, unit, groups)


def _svg(title: str, labels: list[str], names: list[str], step: float, top: float, unit: str,
         marks: list[str]) -> Markup:
    """The chart around its marks: title, y gridlines with their values, day labels, legend."""
    slot, legend_slot = _slot(labels), _slot(names)
    grid = [f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.2f}" y2="{y:.2f}"/>'
            f'<text x="{LEFT - 4}" y="{y + 4:.2f}" text-anchor="end">{_value(k * step, unit)}</text>'
            for k in range(round(top / step) + 1) for y in [_y(k * step, top)]]
    days = [f'<text x="{LEFT + slot * (i + 0.5):.2f}" y="{BOTTOM + 14}" text-anchor="middle">{escape(label)}</text>'
            for i, label in enumerate(labels)]
    legend = [f'<rect class="swatch series-{j}" x="{x:.2f}" y="{HEIGHT - 12}" width="10" height="10"/>'
              f'<text x="{x + 14:.2f}" y="{HEIGHT - 3}">{escape(name)}</text>'
              for j, name in enumerate(names) for x in [LEFT + legend_slot * j]]
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
                  f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
                  f'{"".join(grid + days + marks + legend)}</svg>')


def _group(number: int, shapes: list[str]) -> str:
    return f'<g class="series-{number}">{"".join(shapes)}</g>'


def _y_scale(peak: float) -> tuple[float, float]:
    """A round step between gridlines (1, 2 or 5 times a power of ten) and the top of the y axis,
    the first gridline at or above `peak`; all zero: a 0 to 1 axis."""
    if peak <= 0:
        return 1, 1
    power = 10 ** math.floor(math.log10(peak / GRIDLINES))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= peak / GRIDLINES)
    return step, step * math.ceil(round(peak / step, 9))


def _slot(items: list) -> float:
    """The width given to each of these across the plot (each day, each legend entry)."""
    return (WIDTH - LEFT - RIGHT) / max(len(items), 1)


def _y(value: float, top: float) -> float:
    return BOTTOM - value / top * (BOTTOM - TOP)


def _runs(points: list[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """The stretches of points between gaps, each of two points or more (a line needs two)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if point is None:
            runs.append([])
        else:
            runs[-1].append(point)
    return [run for run in runs if len(run) > 1]


def _tip(label: str, name: str, value: float, unit: str) -> str:
    return f"<title>{escape(label)} · {escape(name)}: {_value(value, unit)}</title>"


def _value(value: float, unit: str) -> str:
    """A number as people read it (1,250; 0.3; 12.5), with its unit, escaped."""
    number = f"{value:,.3f}".rstrip("0").rstrip(".")
    return str(escape(f"{number} {unit}" if unit else number))
