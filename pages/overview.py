"""Copying score of every head as a layer x head heatmap; a click on a cell opens that head's W_VO page."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import annotations_ui, atlas_view, cache, page_list, pickers, render, settings_line, state, urlstate
from embspace import VIEW_KINDS

VO = VIEW_KINDS["vo"]  # a click opens the head's W_VO

settings = state.current()
model = settings.model

st.title("Copying score of every head")
st.caption(
    "Each cell is one attention head's copying score Σλ / Σ|λ| over the eigenvalues λ of its W_VO "
    "(Elhage et al. 2021): red, near +1, the head copies the token it attends to into the output; "
    "blue, near −1, it suppresses it; white, neither. **Click a cell** to open that head's W_VO page."
)

atlas = atlas_view.page_atlas(model, "heads")
scores = None if atlas is None else atlas_view.stored_copying_scores(model, atlas)
if scores is None:
    scores = cache.copying_score_grid(model)
else:
    st.caption(f"From the atlas in `{atlas.directory}`.")
broken = [f"layer {layer} head {head}" for layer, head in np.argwhere(np.isnan(scores))]
if broken:
    st.warning(
        f"{len(broken)} head(s) have NaN or Inf weights and no copying score (blank cells): {', '.join(broken)}.",
        icon=":material/warning:",
    )
settings_line.show(settings, filtered=False)
heatmap = render.copying_heatmap(scores, annotations_ui.head_labels(model, "vo"))
event = st.plotly_chart(
    heatmap, key="copying_heatmap", on_select="rerun", selection_mode="points", theme=None, config=render.PLOT_CONFIG
)
clicked = render.clicked_cell(event)
if clicked is not None:
    layer, head = clicked
    pickers.show_unit(layer, VO, head)
    params = VO.params(layer, head, **urlstate.current_params())
    st.switch_page(page_list.view_page(VO).script, query_params={key: str(value) for key, value in params.items()})

stem = "copying-scores"
render.html_download(heatmap, stem, settings_line.file_suffix(settings, filtered=False))
layers, heads = scores.shape
frame = pd.DataFrame(
    {
        "layer": [layer for layer in range(layers) for _ in range(heads)],
        "head": [head for _ in range(layers) for head in range(heads)],
        "copying_score": scores.ravel(),
    }
)
with st.expander("All scores as a table"):
    render.table(
        frame.sort_values("copying_score", ascending=False),
        stem,
        settings_line.about(settings, filtered=False, view="overview"),
    )
