"""Two models in one vocabulary: what fine-tuning changed, head by head and neuron by neuron."""

import streamlit as st

from dashboard import cache, compare_view, render, settings_line, state, urlstate
from embspace import EmbspaceError

settings = state.current()
base = settings.model

st.title("Compare two models")
st.caption(
    "The sidebar's model is the **base**; give the **tuned** model (same architecture and tokenizer) below. "
    "Each unit's change is ‖ΔW‖ / ‖W_base‖: FFN neurons' key and value vectors, heads' W_VO and W_QK "
    "circuits (compared factored). A unit's change is read through the base's embedding, under the sidebar's filters."
)
tuned_source = urlstate.widget(st.text_input, "Tuned model (hub id or local directory)", key="tuned", default="")
if not tuned_source.strip():
    st.info("Give a tuned model to compare with the base.", icon=":material/compare_arrows:")
    st.stop()
policy = cache.hosting_policy()
try:
    tuned = compare_view.open_tuned(tuned_source, policy, policy.weight_budget_bytes)
    changes = compare_view.unit_changes(base, tuned)
except EmbspaceError as err:
    st.error(str(err).splitlines()[0], icon=":material/error:")
    st.stop()

settings_line.show(settings, filtered=False)
kind = urlstate.widget(st.radio, "Head circuit", key="circuit", default="vo", options=("vo", "qk"), horizontal=True)
grid = compare_view.head_grid(changes, kind, base.shape.n_layers, base.shape.n_heads)
st.plotly_chart(compare_view.head_heatmap(grid, kind), key="compare_heatmap", theme=None, config=render.PLOT_CONFIG)
neurons = compare_view.neuron_grid(changes, base.shape.n_layers, base.shape.d_ff)
st.plotly_chart(compare_view.neuron_heatmap(neurons), key="compare_neurons", theme=None, config=render.PLOT_CONFIG)

st.subheader("Most changed units")
top = changes.head(200)
st.dataframe(top, hide_index=True, key="compare_top")
labels = [f"{row.kind} · layer {row.layer} · {row.index}" for row in top.itertuples()]
choice = st.selectbox("Unit", range(len(labels)), format_func=labels.__getitem__, key="compare_unit")
unit = top.iloc[choice]
tables = compare_view.diff_tables(settings, tuned, unit["kind"], int(unit["layer"]), int(unit["index"]), settings.k)
st.subheader(
    f"{unit['kind']} layer {unit['layer']}, {'neuron' if unit['kind'].startswith('neuron') else 'head'} {unit['index']}: tuned − base"
)
plus, minus = st.columns(2)
settings_line.show(settings, pairs=not unit["kind"].startswith("neuron"))
view = {"view": "compare", "tuned": tuned_source.strip(), "unit": unit["kind"], "layer": int(unit["layer"])}
for column, side, heading in (
    (plus, "plus", "**Promoted** (top of the difference)"),
    (minus, "minus", "**Demoted** (top of its negation)"),
):
    with column:
        st.markdown(heading)
        stem = f"diff-{unit['kind']}-layer{unit['layer']}-{unit['index']}-{side}"
        render.table(tables[side], stem, settings_line.about(settings, index=int(unit["index"]), **view))
