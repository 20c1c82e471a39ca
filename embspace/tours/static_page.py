"""One self-contained HTML file per tour: every stop's heading, note, table and t-SNE plot, with no network.

    html = static_page(tour, models, k=None, labels={("vo", 5, 7): "copy head"}, progress=print)

`models(embedding)` returns the tour's model opened with that embedding (a stop's `embedding` filter, else
"auto"). Tables are plain `<table>`s (they copy into a document and read aloud); plots are plotly figures
written as JSON for `Plotly.newPlot`, drawn by plotly's own JavaScript read from the installed plotly
package's file and inlined (embspace never imports plotly). Notes are markdown, HTML escaped.
"""

from __future__ import annotations

import html
import importlib.util
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from embspace.atlas.manifest import embspace_version
from embspace.compute.tsne import tsne_coordinates
from embspace.model import EmbeddingSpaceModel
from embspace.tours.markdown_lite import render_markdown
from embspace.tours.stop_view import DEFAULT_STOP_K, StopTable, stop_filters, stop_table, stop_title
from embspace.tours.tour import Tour, TourError, TourStop

ModelsFn = Callable[[str], EmbeddingSpaceModel]  # embedding choice -> the tour's model opened with it
ProgressFn = Callable[[int, int, TourStop], None]  # (stop number, stops, stop) before each stop
Labels = Mapping[tuple[str, int, int], str]  # {(kind, layer, index): label}
GROUP_SYMBOLS = ("circle", "diamond")
PAGE_STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; }
.made { color: #555; } nav ol { columns: 2; } section { border-top: 1px solid #ccc; margin-top: 2rem; }
.position { color: #777; font-weight: normal; margin-right: .6em; }
.stop-body { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
table { border-collapse: collapse; font-size: 14px; } th, td { border: 1px solid #ddd; padding: 2px 8px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } .plot { width: 520px; height: 440px; }
"""


@dataclass(frozen=True)
class StopSection:
    """What the page shows for one stop."""

    number: int  # 1-based
    stop: TourStop
    title: str  # "L5 H7 · W_VO — label"
    table: StopTable
    coords: np.ndarray  # float64 [n, 2]: t-SNE of the table's plotted tokens


def plotly_js() -> str:
    """The text of the installed plotly package's plotly.min.js (located, never imported)."""
    spec = importlib.util.find_spec("plotly")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise TourError(
        "the static page needs plotly's JavaScript (plotly/package_data/plotly.min.js): pip install plotly."
    )


def static_page(
    tour: Tour,
    models: ModelsFn,
    *,
    k: int | None = None,
    labels: Labels | None = None,
    progress: ProgressFn | None = None,
) -> str:
    """The tour as one HTML document; TourError naming the first stop the model lacks (before any work)."""
    first = models("auto")
    shape = first.shape
    tour.check_model(shape.n_layers, shape.n_heads, shape.d_ff)
    script = plotly_js()
    sections = []
    for number, stop in enumerate(tour.stops, start=1):
        if progress is not None:
            progress(number, len(tour.stops), stop)
        sections.append(stop_section(models(stop_filters(stop).embedding), stop, number, k, labels or {}))
    return page_html(tour, first, sections, script)


def stop_section(model: EmbeddingSpaceModel, stop: TourStop, number: int, k: int | None, labels: Labels) -> StopSection:
    """The stop's table under its k (else `k`, else DEFAULT_STOP_K) and filters, and its tokens' t-SNE layout."""
    table = stop_table(model, stop, stop.k or k or DEFAULT_STOP_K)
    vectors = model.embedding_rows[table.token_ids.tolist()] if len(table.token_ids) else np.zeros((0, 1))
    coords = tsne_coordinates(vectors, dims=2, normalize=True)
    title = stop_title(stop, labels.get((stop.kind, stop.layer, stop.index)))
    return StopSection(number, stop, title, table, coords)


def figure_json(section: StopSection) -> dict:
    """The stop's scatter as a plotly figure dict: a trace per group, coloured by score, hover token + score."""
    table, coords = section.table, section.coords
    scores = table.scores
    span = {"cmin": float(scores.min()), "cmax": float(scores.max())} if len(scores) else {}
    traces = []
    for number, group in enumerate(dict.fromkeys(table.groups)):
        picked = [i for i, g in enumerate(table.groups) if g == group]
        marker = {"color": [float(scores[i]) for i in picked], "colorscale": "Viridis", "size": 9, **span}
        marker |= {"symbol": GROUP_SYMBOLS[number % len(GROUP_SYMBOLS)], "showscale": number == 0}
        traces.append(
            {
                "type": "scatter",  # SVG: draws without WebGL
                "mode": "markers",
                "name": group,
                "x": [float(coords[i, 0]) for i in picked],
                "y": [float(coords[i, 1]) for i in picked],
                "text": [table.labels[i] for i in picked],
                "marker": marker,
                "hovertemplate": "%{text}<br>score %{marker.color:.4f}<extra>" + html.escape(group) + "</extra>",
            }
        )
    layout = {
        "title": {"text": f"t-SNE of the top tokens ({len(scores)})"},
        "margin": {"l": 30, "r": 10, "t": 40, "b": 30},
        "xaxis": {"showticklabels": False},
        "yaxis": {"showticklabels": False},
        "legend": {"orientation": "h"},
    }
    return {"data": traces, "layout": layout}


def table_html(table: StopTable) -> str:
    """A plain HTML table (text escaped; score columns right-aligned)."""
    header = "".join(f'<th scope="col">{html.escape(name)}</th>' for name in table.header)
    numeric = [name == "#" or name.endswith("score") for name in table.header]
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{html.escape(cell)}</td>' if is_num else f"<td>{html.escape(cell)}</td>"
            for cell, is_num in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in table.rows
    )
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def section_html(section: StopSection, total: int) -> str:
    """One stop: its heading with its position, the note, the table and the plot's element."""
    note = render_markdown(section.stop.note)
    return (
        f'<section class="stop" id="stop-{section.number}">'
        f'<h2><span class="position">{section.number} / {total}</span>{html.escape(section.title)}</h2>'
        f'<div class="note">{note}</div>'
        f'<div class="stop-body">{table_html(section.table)}'
        f'<div class="plot" id="plot-{section.number}"></div></div></section>'
    )


def made_line(tour: Tour, model: EmbeddingSpaceModel) -> str:
    """Which model, revision and embspace version made the page (and when)."""
    revision = tour.revision or model.info.revision or "default revision"
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"Model {tour.model} ({revision}), embedding {model.info.embedding} · embspace {embspace_version()} · {made}"


def script_json(payload: object) -> str:
    """JSON safe inside a <script> element (no '</' or '<!--' can end or comment it)."""
    return json.dumps(payload, ensure_ascii=False).replace("<", "\\u003c")


def page_html(tour: Tour, model: EmbeddingSpaceModel, sections: list[StopSection], script: str) -> str:
    """The whole document: plotly's script inlined, then the title, made line, contents and every stop."""
    total = len(sections)
    script = script.replace("</script", "<\\/script")  # cannot end the element early
    title = html.escape(tour.title or "Tour")
    contents = "".join(f'<li><a href="#stop-{s.number}">{html.escape(s.title)}</a></li>' for s in sections)
    figures = {f"plot-{s.number}": figure_json(s) for s in sections}
    draw = (
        f"const figures = {script_json(figures)};\n"
        "for (const [id, fig] of Object.entries(figures)) {\n"
        "  Plotly.newPlot(id, fig.data, fig.layout, {displaylogo: false, responsive: true});\n}"
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>'
        f"<style>{PAGE_STYLE}</style>\n<script>{script}</script></head>\n"
        f'<body><h1>{title}</h1><p class="made">{html.escape(made_line(tour, model))}</p>'
        f"<nav><ol>{contents}</ol></nav>\n"
        + "\n".join(section_html(s, total) for s in sections)
        + f"\n<script>{draw}</script></body></html>\n"
    )
