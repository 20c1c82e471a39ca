"""Two models in one vocabulary: what fine-tuning changed, head by head and neuron by neuron, and which layers
of the two correspond."""

import streamlit as st

from dashboard import cache, compare_view, render, settings_line, state, urlstate
from embspace import EmbspaceError
from embspace.compare import PARTS

settings = state.current()
base = settings.model

st.title("Compare two models")
st.caption(
    "The sidebar's model is the **base** (A); give the **tuned** model (B) below. **Diff**: each unit's change "
    "is ‖ΔW‖ / ‖W_base‖ (same architecture and tokenizer): FFN neurons' key and value vectors, heads' W_VO and "
    "W_QK circuits (compared factored), a unit's change read through the base's embedding under the sidebar's "
    "filters. **Match layers**: the correlation across the vocabulary of the two models' parameters (one "
    "tokenizer, any sizes), and the one-to-one layer matching."
)
tuned_source = urlstate.widget(st.text_input, "Tuned model (hub id or local directory)", key="tuned", default="")
if not tuned_source.strip():
    st.info("Give a tuned model to compare with the base.", icon=":material/compare_arrows:")
    st.stop()
policy = cache.hosting_policy()
section = urlstate.widget(
    st.radio, "Section", key="section", default="Diff", options=("Diff", "Match layers"), horizontal=True
)
try:
    tuned = compare_view.open_tuned(tuned_source, policy, policy.weight_budget_bytes)
    if section == "Match layers":
        part = urlstate.widget(st.selectbox, "Part", key="part", default="ffn-v", options=tuple(PARTS))
        alignment = compare_view.alignment(base, tuned, part)
    else:
        changes = compare_view.unit_changes(base, tuned)
except EmbspaceError as err:
    st.error(str(err).splitlines()[0], icon=":material/error:")
    st.stop()

if section == "Match layers":
    settings_line.show(settings, filtered=False)
    heatmap = compare_view.alignment_heatmap(alignment["similarity"], alignment["matching"], part)
    st.plotly_chart(heatmap, key="compare_align", theme=None, config=render.PLOT_CONFIG)
    st.subheader("Matched layers")
    similarity = alignment["similarity"]
    matched = [{"layer_a": a, "layer_b": b, "mean_abs_corr": similarity[a][b]} for a, b in alignment["matching"]]
    st.dataframe(matched, hide_index=True, key="compare_matching")
    st.subheader("Rows of B most correlated with one unit of A")
    unit = "neuron" if part.startswith("ffn") else "head"
    left, right = st.columns(2)
    row_layer = urlstate.widget(
        left.number_input, "Layer of A", key="a_layer", default=0, min_value=0, max_value=base.shape.n_layers - 1
    )
    count = (
        base.shape.d_ff if unit == "neuron" else (base.layer(0).W_K.shape[0] if part == "wk" else base.shape.n_heads)
    )
    row_index = urlstate.widget(
        right.number_input, f"{unit.title()} of A", key="a_index", default=0, min_value=0, max_value=count - 1
    )
    st.caption("A neuron's correlation keeps its sign; a head's is the mean |corr| of its rows with each head of B.")
    rows = compare_view.correlated_rows(base, tuned, part, int(row_layer), int(row_index), settings.k)
    stem = f"align-{part}-layer{row_layer}-{row_index}"
    view = {"view": "compare", "tuned": tuned_source.strip(), "part": part, "layer": int(row_layer)}
    render.table(rows, stem, settings_line.about(settings, filtered=False, index=int(row_index), **view))
else:
    settings_line.show(settings, filtered=False)
    kind = urlstate.widget(st.radio, "Head circuit", key="circuit", default="vo", options=("vo", "qk"), horizontal=True)
    st.caption("**Click a cell** (a head, or a neuron of the strip) or tick a row of the list to open that unit below.")
    grid = compare_view.head_grid(changes, kind, base.shape.n_layers, base.shape.n_heads)
    compare_view.clickable_chart(
        compare_view.head_heatmap(grid, kind),
        "compare_heatmap",
        compare_view.on_head_click,
        kind,
        config=render.PLOT_CONFIG,
    )
    neurons = compare_view.neuron_grid(changes, base.shape.n_layers, base.shape.d_ff)
    compare_view.clickable_chart(
        compare_view.neuron_heatmap(neurons),
        "compare_neurons",
        compare_view.on_neuron_click,
        changes,
        config=render.PLOT_CONFIG,
    )

    st.subheader("Most changed units")
    top = changes.head(200)
    st.dataframe(
        top,
        hide_index=True,
        key="compare_top",
        on_select=lambda: compare_view.on_row_click("compare_top", top),
        selection_mode="single-row",
    )
    unit_kind, layer, index = compare_view.unit_widgets(base, changes.iloc[0])
    noun = "neuron" if unit_kind.startswith("neuron") else "head"
    tables = compare_view.diff_tables(settings, tuned, unit_kind, layer, index, settings.k)
    own = compare_view.before_after(settings, tuned, unit_kind, layer, index, settings.k)
    st.subheader(f"{unit_kind} layer {layer}, {noun} {index}: tuned − base")
    settings_line.show(settings, pairs=noun == "head")
    view = {"view": "compare", "tuned": tuned_source.strip(), "unit": unit_kind, "layer": layer}
    about = settings_line.about(settings, index=index, **view)
    if tables["plus"].empty and tables["minus"].empty:
        st.info(
            "This unit is the same in both models: its change promotes and demotes nothing.", icon=":material/equal:"
        )
    vector = f"its {unit_kind[-1]} vector" if noun == "neuron" else f"its {unit_kind.upper()} circuit"
    for column, frame, stem, heading in zip(
        st.columns(4),
        (own["base"], own["tuned"], tables["plus"], tables["minus"]),
        ("before", "after", "plus", "minus"),
        (
            f"**Before**: the base's own top of {vector}",
            f"**After**: the tuned model's own top of {vector}",
            "**Promoted** (top of the difference)",
            "**Demoted** (top of its negation)",
        ),
        strict=True,
    ):
        with column:
            st.markdown(heading)
            render.table(frame, f"diff-{unit_kind}-layer{layer}-{index}-{stem}", about)
