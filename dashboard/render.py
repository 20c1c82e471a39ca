"""Drawing results: tables with CSV/JSON downloads, plotly figures with HTML downloads, the heatmap."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import settings_line
from dashboard.scatter_plot import figure_html
from dashboard.settings_line import FileSettings

PLOT_CONFIG = {"displaylogo": False}
SCORE_FORMAT = "%.4f"
ROW_HEIGHT = 36  # px; set explicitly so the table's frame can be sized to its rows
VISIBLE_ROWS = 30  # a longer table scrolls inside its frame


def _frame_height(rows: int) -> int:
    """Height that shows the header and up to VISIBLE_ROWS rows without scrolling (+ the frame's borders)."""
    return (min(max(rows, 1), VISIBLE_ROWS) + 1) * ROW_HEIGHT + 6


def downloads(stem: str, csv: str | Callable[[], str], json_text: str | Callable[[], str], *, suffix: str = "") -> None:
    """CSV and JSON download buttons side by side (clicking them does not rerun the page).

    csv, json_text: the text, or a function that makes it when the button is clicked (so a view that
    nobody downloads costs the server no serialisation). Files `stem-suffix.csv` / `.json` (`stem.csv`
    without a suffix); the buttons' keys are `stem-csv` / `stem-json` whatever the suffix."""
    row = st.container(horizontal=True)
    for label, data, extension, mime in (
        ("CSV", csv, "csv", "text/csv"),
        ("JSON", json_text, "json", "application/json"),
    ):
        row.download_button(
            label,
            data=data,
            file_name=f"{stem}-{suffix}.{extension}" if suffix else f"{stem}.{extension}",
            mime=mime,
            key=f"{stem}-{extension}",
            on_click="ignore",
            icon=":material/download:",
        )


def table_downloads(stem: str, frame: pd.DataFrame, about: FileSettings, *, json_rows: object = None) -> None:
    """The downloads of a table computed under the sidebar's settings, which every file carries.

    The file names end in the settings (`about.suffix`); the CSV starts with the settings as columns
    (they survive spreadsheet tools), the JSON is {"settings": ..., "rows": json_rows or the frame's
    records}."""

    def csv() -> str:
        leading = {name: value for name, value in settings_line.columns(about.record).items() if name not in frame}
        return pd.concat([pd.DataFrame(leading, index=frame.index), frame], axis=1).to_csv(index=False)

    def json_text() -> str:
        rows = json.loads(frame.to_json(orient="records", force_ascii=False)) if json_rows is None else json_rows
        return json.dumps({"settings": about.record, "rows": rows}, ensure_ascii=False, indent=1)

    downloads(stem, csv, json_text, suffix=about.suffix)  # made when clicked: most views are never downloaded


def scored_dataframe(frame: pd.DataFrame) -> None:
    """`frame` on screen, its score columns with SCORE_FORMAT, its frame sized to its rows."""
    config = {
        column: st.column_config.NumberColumn(column, format=SCORE_FORMAT)
        for column in frame.columns
        if "score" in str(column)
    }
    st.dataframe(frame, hide_index=True, column_config=config, row_height=ROW_HEIGHT, height=_frame_height(len(frame)))


def table(frame: pd.DataFrame, stem: str, about: FileSettings, *, shown: Mapping[str, str] | None = None) -> None:
    """A table with its CSV/JSON downloads (all columns); `shown` picks the columns on screen, {column: header}."""
    scored_dataframe(frame if shown is None else frame[list(shown)].rename(columns=shown))
    table_downloads(stem, frame, about)


def vector_heading(name: str, negative: bool) -> str:
    """A neuron table's column heading: "K" (its top tokens), or "K·E lowest" under most negative.

    Under most negative the K column holds the lowest scores of K·E, the tokens −K ranks highest:
    the same words as "−K", so each heading names its own sign and order."""
    return f"{name}·E lowest" if negative else name


def neuron_table(tables: Mapping[str, pd.DataFrame], k: int, stem: str, about: FileSettings) -> pd.DataFrame:
    """One wide table: rank, then token and score for each vector (K, V, −K, −V, ...), side by side."""
    negative = bool(about.record["negative"])
    wide = pd.DataFrame({"rank": np.arange(1, k + 1)})
    for name, frame in tables.items():
        top = frame.head(k).reset_index(drop=True)
        heading = vector_heading(name, negative)
        wide[heading] = top["token"].reindex(range(k))
        wide[f"{heading} score"] = top["score"].reindex(range(k))
    wide = wide.dropna(how="all", subset=[c for c in wide.columns if c != "rank"])
    scored_dataframe(wide)
    nested = {name: frame.head(k).to_dict(orient="records") for name, frame in tables.items()}
    table_downloads(stem, wide, about, json_rows=nested)
    return wide


def figure(fig: go.Figure, stem: str, *, key: str, suffix: str = "") -> None:
    """A plotly figure with its HTML download (`suffix`: the settings' file-name part)."""
    st.plotly_chart(fig, key=key, config=PLOT_CONFIG, theme=None)
    html_download(fig, stem, suffix)


def html_download(fig: go.Figure, stem: str, suffix: str = "") -> None:
    """Download button for a standalone HTML page of `fig` (built only when clicked: it is ~5 MB);
    its file is `stem-suffix.html`, its key `stem-html`."""
    st.download_button(
        "Plot as HTML",
        icon=":material/download:",
        data=lambda: figure_html(fig),
        file_name=f"{stem}-{suffix}.html" if suffix else f"{stem}.html",
        mime="text/html",
        key=f"{stem}-html",
        on_click="ignore",
    )


def copying_heatmap(scores: np.ndarray, labels: np.ndarray | None = None) -> go.Figure:
    """Layer x head heatmap of copying scores, clickable cell by cell.

    Heatmap cells cannot be selected in plotly, so an invisible scatter point sits on every
    cell centre; with hoverdistance -1 a click anywhere selects the nearest cell's point, which
    Streamlit reports as a selection event (customdata = [layer, head, score, label]). `labels`
    (object [n_layers, n_heads], "" where none): shown on hover, and a labelled cell gets a mark.
    """
    n_layers, n_heads = scores.shape
    labels = np.full(scores.shape, "", dtype=object) if labels is None else labels
    layers, heads = np.meshgrid(np.arange(n_layers), np.arange(n_heads), indexing="ij")
    fig = go.Figure(
        go.Heatmap(
            z=scores,
            x=np.arange(n_heads),
            y=np.arange(n_layers),
            zmin=-1.0,
            zmax=1.0,
            zmid=0.0,
            colorscale="RdBu_r",
            colorbar=dict(title=dict(text="copying<br>score")),
            texttemplate="%{z:.2f}",
            textfont=dict(size=13),
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=heads.ravel(),
            y=layers.ravel(),
            mode="markers",
            marker=dict(size=28, symbol="square", color="rgba(0,0,0,0)"),
            selected=dict(marker=dict(opacity=1.0)),
            unselected=dict(marker=dict(opacity=1.0)),
            customdata=np.stack([layers.ravel(), heads.ravel(), scores.ravel(), labels.ravel()], axis=1),
            hovertemplate="layer %{customdata[0]}, head %{customdata[1]}<br>copying score %{customdata[2]:.3f}"
            "<br>%{customdata[3]}<extra>click to open W_VO</extra>",
            showlegend=False,
            name="heads",
        )
    )
    labelled = np.argwhere(labels != "")
    if len(labelled):
        fig.add_trace(_label_marks(labelled))
    fig.update_layout(
        height=max(360, 60 * n_layers + 120),
        margin=dict(l=80, r=20, t=20, b=80),
        font=dict(size=16),
        hovermode="closest",
        hoverdistance=-1,
        clickmode="event+select",
        xaxis=dict(title="head", **_integer_ticks(n_heads)),
        yaxis=dict(title="layer", autorange="reversed", **_integer_ticks(n_layers)),
        plot_bgcolor="white",
    )
    return fig


def _label_marks(cells: np.ndarray) -> go.Scatter:
    """A ✎ in the corner of each labelled cell (cells: int [n, 2] of (layer, head))."""
    return go.Scatter(
        x=cells[:, 1] + 0.33,
        y=cells[:, 0] - 0.3,
        mode="text",
        text=["✎"] * len(cells),
        textfont=dict(size=14),
        hoverinfo="skip",
        showlegend=False,
        name="labelled heads",
    )


def _integer_ticks(count: int) -> dict:
    return dict(
        tickmode="array",
        tickvals=list(range(count)),
        ticktext=[str(i) for i in range(count)],
        ticks="",
        showgrid=False,
        zeroline=False,
    )


def clicked_cell(event) -> tuple[int, int] | None:
    """(layer, head) of the heatmap cell a plotly selection event points at, else None.

    The overlay point of a cell sits at x = head, y = layer (its customdata repeats them; the
    browser sends customdata as {"0": layer, "1": head, ...}, so x and y are read).
    """
    points = event["selection"]["points"] if event is not None else []
    for point in points:
        if point.get("x") is not None and point.get("y") is not None:
            return int(round(point["y"])), int(round(point["x"]))
    return None
