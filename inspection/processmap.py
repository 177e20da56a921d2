"""The process map: the directly-follows edges of ``dossier inspect flow`` drawn as a directed graph.

Graphviz lays it out (the ``graphviz`` package writes DOT; Graphviz's ``dot``
program, a system package, turns it into SVG). A directly-follows graph of
twenty-odd event types and fifty edges is exactly what ``dot``'s layered
layout is made for; a layout of our own would draw crossings ``dot`` avoids.
DOT needs no program; SVG does, and without it :class:`GraphvizMissingError`
says how to install it.

Edges carry the count and the median (p90) waiting time in working hours, as
``flow`` computes them (:func:`inspection.process.edges`); the thickness
follows the count and the colour the median wait. The graph's caption states
the data it was computed on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import click
import graphviz

#: Colours from short to long median waits (green to red, after ColorBrewer RdYlGn).
WAIT_COLOURS: Final = ("#1a9850", "#91cf60", "#d9a400", "#fc8d59", "#d73027")
WAIT_BOUNDS_WH: Final = (1.0, 4.0, 8.0, 24.0)  # working hours: < 1, < 4, < 8 (a day), < 24 (3 days), longer
INSTALL_HINT: Final = (
    "drawing the process map needs Graphviz's `dot` program, which is not installed: "
    "install it (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz), "
    "or use --format dot and draw it elsewhere"
)


class GraphvizMissingError(RuntimeError):
    """Graphviz's ``dot`` is not on PATH."""


def wait_colour(median_wh: float) -> str:
    for bound, colour in zip(WAIT_BOUNDS_WH, WAIT_COLOURS, strict=False):
        if median_wh < bound:
            return colour
    return WAIT_COLOURS[-1]


def caption(computed_on: Mapping[str, Any]) -> str:
    """One line saying what the map was computed on."""
    parts = [f"{computed_on.get('events', 0):,} events of {computed_on.get('dossiers', 0):,} dossiers"]
    if computed_on.get("store"):
        parts.append(str(computed_on["store"]))
    if computed_on.get("last_recorded_at"):
        parts.append(f"last recorded {str(computed_on['last_recorded_at'])[:19]}")
    filters = {k: computed_on[k] for k in ("unit", "unit_level", "procedure", "from", "to") if computed_on.get(k)}
    if filters:
        parts.append(" ".join(f"--{k.replace('_', '-')} {v}" for k, v in filters.items()))
    return "computed on " + "; ".join(parts)


def process_graph(edges: Sequence[Mapping[str, Any]], computed_on: Mapping[str, Any]) -> graphviz.Digraph:
    """The directly-follows graph of ``edges`` (rows of ``flow --view edges``)."""
    graph = graphviz.Digraph("process_map", comment=caption(computed_on))
    graph.attr(rankdir="TB", label=caption(computed_on), labelloc="t", fontname="Helvetica", fontsize="11")
    graph.attr("node", shape="box", style="rounded,filled", fillcolor="#eef3fb", color="#4a6fa5",
               fontname="Helvetica", fontsize="10")  # fmt: skip
    graph.attr("edge", fontname="Helvetica", fontsize="9", arrowsize="0.6")
    most = max((int(e["count"]) for e in edges), default=1)
    starts = {str(e["from_type"]) for e in edges} - {str(e["to_type"]) for e in edges}
    for name in sorted({str(e["from_type"]) for e in edges} | {str(e["to_type"]) for e in edges}):
        graph.node(name, name, id=f"node-{name}", **({"fillcolor": "#d6e4f5"} if name in starts else {}))
    for e in edges:
        count, median, p90 = int(e["count"]), float(e["median_wh"]), float(e["p90_wh"])
        graph.edge(
            str(e["from_type"]),
            str(e["to_type"]),
            label=f"{count:,}\n{median:g} wh (p90 {p90:g})",
            penwidth=f"{0.6 + 4.4 * math.sqrt(count / most):.2f}",
            color=wait_colour(median),
            id=f"edge-{e['from_type']}-{e['to_type']}",
            tooltip=f"{e['from_type']} → {e['to_type']}: {count:,} times; waiting median {median:g}, "
            f"p90 {p90:g}, mean {float(e['mean_wh']):g} working hours",
        )
    return graph


def to_dot(edges: Sequence[Mapping[str, Any]], computed_on: Mapping[str, Any]) -> str:
    return str(process_graph(edges, computed_on).source)


def to_svg(edges: Sequence[Mapping[str, Any]], computed_on: Mapping[str, Any]) -> str:
    """The map as a standalone SVG document (raises GraphvizMissingError without ``dot``)."""
    try:
        return str(process_graph(edges, computed_on).pipe(format="svg", encoding="utf-8"))
    except graphviz.ExecutableNotFound as exc:
        raise GraphvizMissingError(INSTALL_HINT) from exc
    except graphviz.CalledProcessError as exc:
        raise GraphvizMissingError(f"Graphviz's dot failed to draw the process map: {exc.stderr!r}") from exc


def inline_svg(svg: str) -> str:
    """An SVG document as an element for an HTML page: no XML prolog or DOCTYPE, scaled to the page's width."""
    body = svg[svg.index("<svg") :]
    return re.sub(r'<svg width="[^"]*" height="[^"]*"', '<svg class="process-map" width="100%"', body, count=1)


def drawn(edges: Sequence[Mapping[str, Any]], computed_on: Mapping[str, Any], fmt: str) -> str:
    """``flow --format dot|svg``: the map as DOT text or an SVG document; without ``dot``, one sentence (exit 1)."""
    if fmt == "dot":
        return str(to_dot(edges, computed_on))
    try:
        return to_svg(edges, computed_on)
    except GraphvizMissingError as exc:
        raise click.ClickException(str(exc)) from None
