"""Every annotation of the opened model: search, sort, open each view; export and import as JSON."""

import json

import pandas as pd
import streamlit as st

from dashboard import annotations_ui, edit_access, links, render, state, urlstate
from embspace.annotations import ON_CONFLICT, apply_import, export_document, model_identity, parse_document, plan_import
from embspace.errors import EmbspaceError
from embspace.views import LAYER_PARAM, VIEW_KINDS

model = state.current().model
notes = annotations_ui.store()
model_id, revision = model_identity(model.info)

st.title("Annotations")
st.caption(
    "Labels and notes saved on the neuron, W_VO and W_QK pages for this model. Streamlit Community Cloud does "
    "not keep the app's disk when it sleeps: **download your set** (JSON) and import it again later."
)
access = edit_access.current()  # hosted: only the lab's editors import
if notes.read_only or not access.allowed:
    st.info(f"Annotations are read-only here: {notes.read_only_reason or access.reason}")
for warning in notes.warnings:
    st.warning(warning)

rows = annotations_ui.model_annotations(model)
shared = {k: v for k, v in urlstate.current_params().items() if k not in ("find", LAYER_PARAM)}  # the view sets layer
frame = pd.DataFrame(
    {
        "open": [links.OPEN_TEXT] * len(rows),  # first: a click on the row opens the view (same tab)
        "kind": [a.kind for a in rows],
        "layer": [a.layer for a in rows],
        "head / neuron": [a.index for a in rows],
        "label": [a.label for a in rows],
        "note": [a.note for a in rows],
        "author": [a.author or "" for a in rows],
        "updated": [a.updated for a in rows],
    }
)
targets = [links.view_link(VIEW_KINDS[a.kind], a.layer, a.index, **shared) for a in rows]
find = urlstate.widget(st.text_input, "Search labels and notes", key="find", default="")
if find:
    hit = frame["label"].str.contains(find, case=False, regex=False) | frame["note"].str.contains(
        find, case=False, regex=False
    )
    rows = [a for a, keep in zip(rows, hit, strict=True) if keep]
    targets = [target for target, keep in zip(targets, hit, strict=True) if keep]
    frame = frame[hit]
if frame.empty:
    st.info("No annotation yet: label a head or neuron on its page." if not find else "No annotation matches.")
else:
    links.link_table(frame.drop(columns="note"), targets, key="annotations_table")
    noted = [(a, target) for a, target in zip(rows, targets, strict=True) if a.note]
    if noted:
        st.subheader("Notes")
    for a, target in noted:  # rendered as markdown, as written on the view's page
        with st.container(border=True):
            where = f"{VIEW_KINDS[a.kind].title}, layer {a.layer}, {VIEW_KINDS[a.kind].unit} {a.index}"
            st.page_link(
                target.page, label=f"**{a.label or '(no label)'}** — {where}", query_params=dict(target.params)
            )
            st.markdown(a.note)

st.subheader("Export and import")
document = json.dumps(export_document(notes, model_id, revision), ensure_ascii=False, indent=1)
render.downloads("annotations", frame.drop(columns="open").to_csv(index=False), document)
upload = st.file_uploader("Import a JSON file exported from embspace", type=["json"], key="annotations_import")
if upload is not None:
    try:
        plan = plan_import(
            notes, parse_document(upload.getvalue(), source=upload.name), model_id, revision, shape=model.shape
        )
    except EmbspaceError as err:
        st.error(f"Not imported: {err}", icon=":material/error:")
        st.stop()
    st.markdown(f"**What the import would do:** {plan.summary()}")
    st.dataframe(
        pd.DataFrame(
            {
                "action": [c.action for c in plan.changes],
                "kind": [c.incoming.kind for c in plan.changes],
                "layer": [c.incoming.layer for c in plan.changes],
                "head / neuron": [c.incoming.index for c in plan.changes],
                "label in the file": [c.incoming.label for c in plan.changes],
                "label here": [c.stored.label if c.stored else "" for c in plan.changes],
            }
        ),
        hide_index=True,
    )
    if plan.conflicts:
        st.warning("Some views were edited here after that file was exported: choose what wins.")
    choice = st.radio("On conflict", ON_CONFLICT, horizontal=True, key="on_conflict")
    if st.button("Apply the import (all or nothing)", disabled=notes.read_only or not access.allowed):
        try:
            applied = apply_import(notes, plan, on_conflict=choice)
        except EmbspaceError as err:
            st.error(f"Nothing imported: {err}", icon=":material/error:")
        else:
            st.success(f"Imported {len(applied)} annotation(s).")
