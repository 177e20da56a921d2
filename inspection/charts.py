"""The report's charts, as inline SVG drawn by pygal.

pygal is a maintained library made for exactly this: SVG charts from Python
values, pure Python (about 1 MB installed, against some 60 MB for matplotlib
with Pillow and fontTools), with no JavaScript needed to show them. Its one
default that reaches the network, a tooltip script from a CDN, is switched off
(``js=[]``): the report opens offline. Each chart is a few kilobytes of SVG
that the page embeds as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pygal
from pygal.style import Style

from schemas.workingtime import HCMC_TZ

OUTCOME_COLOURS: Final = {
    "early": "#1a9850",
    "on_time": "#91cf60",
    "late": "#d73027",
    "in_progress": "#4a6fa5",
    "no_budget": "#9e9e9e",
}
PAUSE_COLOUR: Final = "#f0ad4e"
DEADLINE_COLOUR: Final = "#7b1fa2"
APOLOGY_COLOUR: Final = "#1565c0"
_SCRIPT: Final = re.compile(r"<script\b[^>]*>.*?</script>|<!--.*?-->", re.DOTALL)
FONT: Final = "Helvetica, Arial, 'DejaVu Sans', sans-serif"


def _style(colours: Sequence[str] = ("#4a6fa5", "#f0ad4e", "#d73027", "#1a9850", "#7b1fa2")) -> Style:
    return Style(
        background="white",
        plot_background="white",
        font_family=FONT,
        colors=tuple(colours),
        label_font_size=11,
        major_label_font_size=11,
        legend_font_size=11,
        title_font_size=14,
        value_font_size=10,
        tooltip_font_size=11,
    )


def _config(**extra: Any) -> dict[str, Any]:
    """What every chart shares: no script from the network, no XML prolog (the SVG sits inside HTML)."""
    return {
        "js": [],
        "disable_xml_declaration": True,
        "truncate_label": -1,
        "truncate_legend": -1,
        "print_values": True,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 3,
        "explicit_size": False,
        "margin": 8,
        **extra,
    }


def _svg(chart: Any) -> str:
    """The chart's SVG without pygal's configuration script (only its tooltips read it; the page runs no script)
    and its comments (credits)."""
    return _SCRIPT.sub("", str(chart.render(is_unicode=True)))


def hbar(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    unit: str = "",
    max_value: float | None = None,
    colours: Sequence[str] | None = None,
) -> str:
    """Horizontal bars, one row per label, one bar per series; values printed on the bars."""
    fmt: Callable[[Any], str] = lambda v: "" if v is None else f"{v:,.2f}".rstrip("0").rstrip(".") + unit  # noqa: E731
    chart = pygal.HorizontalBar(
        **_config(
            title=title,
            height=max(180, 60 + 24 * len(labels) * max(1, len(series))),
            width=900,
            value_formatter=fmt,
            show_legend=len(series) > 1,
            **({"range": (0, max_value)} if max_value is not None else {}),
        ),
        style=_style(colours or ("#4a6fa5", "#f0ad4e", "#d73027", "#1a9850")),
    )
    chart.x_labels = list(labels)
    for name, values in series.items():
        chart.add(name, list(values))
    return _svg(chart)


def _local(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).astimezone(HCMC_TZ).strftime("%d/%m %H:%M")


def _day_ticks(first: datetime, last: datetime, most: int = 10) -> list[float]:
    """Local midnights between ``first`` and ``last``, at most ``most`` of them, evenly spaced in days."""
    start = first.astimezone(HCMC_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    days = (last - start).days + 1
    every = max(1, -(-days // most))
    return [(start + timedelta(days=d)).timestamp() for d in range(0, days + 1, every)]


def timeline(
    title: str,
    rows: Sequence[tuple[str, datetime, datetime, str, datetime | None]],
    pauses: Sequence[tuple[str, datetime, datetime]],
    deadlines: Sequence[tuple[str, datetime, str]],
) -> str:
    """A control sheet as a timeline: one bar per step (coloured by its result), the pauses, the deadlines.

    ``rows`` are (label, from, until, outcome, step deadline); ``pauses`` (kind, from, until); ``deadlines``
    (label, at, kind) with kind ``due`` or ``apology``. Rows run top to bottom in their order.
    """
    n = len(rows) + (1 if pauses else 0)
    bar = {"width": 14, "linecap": "butt"}
    series: list[tuple[str, list[tuple[float, float] | tuple[None, None]], str, dict[str, Any]]] = []
    y_labels = []
    step_dues: list[tuple[float, float] | tuple[None, None]] = []
    for i, (label, start, end, outcome, due) in enumerate(rows):
        y = n - i
        y_labels.append({"label": label, "value": y})
        series.append((f"#{i + 1} {outcome}", [(start.timestamp(), y), (end.timestamp(), y)],
                       OUTCOME_COLOURS.get(outcome, "#4a6fa5"), {"stroke_style": bar}))  # fmt: skip
        if due is not None:
            step_dues.append((due.timestamp(), y))
    if pauses:
        y_labels.append({"label": "clock stopped", "value": 1})
    for kind, start, end in pauses:
        series.append((f"paused: {kind}", [(start.timestamp(), 1), (end.timestamp(), 1)], PAUSE_COLOUR,
                       {"stroke_style": bar}))  # fmt: skip
    if step_dues:
        series.append(("step deadline", step_dues, "#000000", {"stroke": False, "show_dots": True, "dots_size": 5}))
    for label, at, kind in deadlines:
        dash = {"width": 2, "dasharray": "6, 4" if kind == "apology" else "none"}
        series.append((label, [(at.timestamp(), 0.3), (at.timestamp(), n + 0.7)],
                       DEADLINE_COLOUR if kind == "due" else APOLOGY_COLOUR, {"stroke_style": dash}))  # fmt: skip
    chart = pygal.XY(
        **_config(
            title=title,
            height=190 + 34 * n + 24 * -(-len(series) // 3),
            width=900,
            print_values=False,
            show_dots=False,
            stroke=True,
            range=(0, n + 1),
            show_y_guides=False,
            x_value_formatter=_local,
            x_label_rotation=30,
            classes=["pygal-chart", "timeline"],
        ),
        style=_style([colour for _, _, colour, _ in series]),
    )
    for name, values, _, options in series:
        chart.add(name, values, **options)
    chart.y_labels = y_labels
    times = [t for _, a, b, _, _ in rows for t in (a, b)] + [t for _, t, _ in deadlines]
    if times:
        chart.x_labels = _day_ticks(min(times), max(times))
    return _svg(chart)
