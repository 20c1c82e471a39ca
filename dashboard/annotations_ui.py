"""Annotations in the dashboard: the label/note editor of a view, the display name, head labels for the heatmap.

The store (SQLite in the operator's data dir, see embspace.annotations) is opened once per process. A
save is based on the version the person was shown (kept in the session), so two tabs editing one view
get a conflict with both texts instead of a silent overwrite.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import edit_access
from dashboard.edit_access import AUTHOR_KEY
from embspace import EmbeddingSpaceModel
from embspace.annotations import (
    MAX_LABEL_CHARS,
    Annotation,
    AnnotationKey,
    AnnotationStore,
    Conflict,
    model_identity,
    open_store,
)
from embspace.errors import EmbspaceError

AUTHOR_HELP = "Shown with the labels you save; no account needed."


@st.cache_resource(show_spinner=False)
def store() -> AnnotationStore:
    """The annotation store, shared by every session (never raises: a broken database opens read-only)."""
    return open_store(secrets=st.secrets)


def display_name_input() -> None:
    """An optional display name in the sidebar, saved with the annotations this session writes (only where the
    session names itself: locally, or after the lab's passphrase; a signed-in editor saves as who signed in)."""
    if not edit_access.current().names_itself:
        return
    st.sidebar.text_input("Your name (optional)", key=AUTHOR_KEY, help=AUTHOR_HELP)


def editor(model: EmbeddingSpaceModel, kind: str, layer: int, index: int) -> None:
    """The saved label and note of this view, shown like a slide, and behind "Edit" a form to change
    them (saved by the button's callback, before the page reads the store, so the page shows what was
    just saved)."""
    key = AnnotationKey.for_view(model, kind, layer, index)
    notes = store()
    current = notes.get(key)
    slot = f"_annotation:{kind}:{layer}:{index}"
    version = current.version if current else 0
    if st.session_state.get(f"{slot}:base") != version:  # the form starts from what is stored now
        st.session_state[f"{slot}:base"] = version
        st.session_state[f"{slot}:label"] = current.label if current else ""
        st.session_state[f"{slot}:note"] = current.note if current else ""
    if current is not None:
        st.markdown(f":material/label: **{current.label}**")
        if current.note:
            st.markdown(current.note)
        st.caption(f"{current.author or 'anonymous'} · {current.updated} · version {current.version}")
    message = st.session_state.pop(f"{slot}:message", None)
    if message is not None:
        (st.success if message.startswith("Saved") else st.error)(message)
    access = edit_access.current()
    if notes.read_only or not access.allowed:
        st.info(f"Annotations are read-only here: {notes.read_only_reason or access.reason}")
        return
    with st.popover("Edit label" if current else "Label this view", icon=":material/edit:"):
        edit_form(model, key, slot)
    conflict_choice(model, key, slot)


def edit_form(model: EmbeddingSpaceModel, key: AnnotationKey, slot: str) -> None:
    """Label and note; beside "Save", the author's name when the session has none yet."""
    with st.form(key=f"{slot}:form", border=False):
        st.text_input("Label", key=f"{slot}:label", max_chars=MAX_LABEL_CHARS)
        st.text_area("Note (markdown)", key=f"{slot}:note")
        name_column, save_column = st.columns([2, 1], vertical_alignment="bottom")
        if edit_access.current().names_itself and not st.session_state.get(AUTHOR_KEY):
            name_column.text_input("Your name (optional)", key=f"{slot}:author", help=AUTHOR_HELP)
        save_column.form_submit_button("Save label", icon=":material/save:", on_click=submit, args=(model, key, slot))


def submit(model: EmbeddingSpaceModel, key: AnnotationKey, slot: str) -> None:
    """The form's callback: save what was typed, based on the version the form was filled from.

    A name typed beside "Save" (only where the session names itself) becomes the session's display name (the
    sidebar's field), so it is asked once."""
    state = st.session_state
    typed_name = (state.get(f"{slot}:author") or "").strip()
    if typed_name and not state.get(AUTHOR_KEY):
        state[AUTHOR_KEY] = typed_name
    save(model, key, state[f"{slot}:label"], state[f"{slot}:note"], state.get(f"{slot}:base", 0), slot)


def save(model: EmbeddingSpaceModel, key: AnnotationKey, label: str, note: str, base_version: int, slot: str) -> bool:
    """Save as the session's author (`edit_access`); on a conflict keep both texts in the session for
    `conflict_choice`. True when saved. Checked again here: a form drawn before access ended saves nothing."""
    access = edit_access.current()
    if not access.allowed:
        st.session_state[f"{slot}:message"] = f"Not saved: {access.reason}"
        return False
    try:
        store().save(
            key, label, note, author=access.author, base_version=base_version,
            shape=model.shape,
        )  # fmt: skip
    except Conflict as conflict:
        st.session_state[f"{slot}:conflict"] = conflict
        return False
    except EmbspaceError as err:
        st.session_state[f"{slot}:message"] = f"Not saved: {err}"
        return False
    st.session_state[f"{slot}:message"] = "Saved."
    return True


def conflict_choice(model: EmbeddingSpaceModel, key: AnnotationKey, slot: str) -> None:
    """After a refused save: both texts, and the choice to keep theirs or save mine over it."""
    conflict: Conflict | None = st.session_state.get(f"{slot}:conflict")
    if conflict is None:
        return
    st.warning(
        "Someone saved this view after you opened it; nothing was saved. Both texts:", icon=":material/sync_problem:"
    )
    theirs, mine = st.columns(2)
    theirs.markdown(f"**Theirs** (version {conflict.theirs.version if conflict.theirs else '—'})")
    theirs.code(f"{conflict.theirs.label}\n\n{conflict.theirs.note}" if conflict.theirs else "(deleted)", language=None)
    mine.markdown("**Yours**")
    mine.code(f"{conflict.mine.label}\n\n{conflict.mine.note}", language=None)
    keep, overwrite = st.columns(2)
    keep.button("Keep theirs", key=f"{slot}:keep", on_click=st.session_state.pop, args=(f"{slot}:conflict",))
    overwrite.button("Save mine over theirs", key=f"{slot}:mine", on_click=save_mine, args=(model, key, slot))


def save_mine(model: EmbeddingSpaceModel, key: AnnotationKey, slot: str) -> None:
    conflict: Conflict = st.session_state.pop(f"{slot}:conflict")
    theirs_version = conflict.theirs.version if conflict.theirs else 0
    save(model, key, conflict.mine.label, conflict.mine.note, theirs_version, slot)


def model_annotations(model: EmbeddingSpaceModel) -> list[Annotation]:
    """Every annotation of the opened model (stored rows, then the shipped set's), by kind, layer, index."""
    return store().list(*model_identity(model.info))


def head_labels(model: EmbeddingSpaceModel, kind: str = "vo") -> np.ndarray:
    """Labels of every head, object [n_layers, n_heads] ("" where none), for the heatmap."""
    labels = np.full((model.shape.n_layers, model.shape.n_heads), "", dtype=object)
    model_id, revision = model_identity(model.info)
    for (label_kind, layer, head), label in store().labels_for_heads(model_id, revision).items():
        if label_kind == kind and layer < labels.shape[0] and head < labels.shape[1]:
            labels[layer, head] = label
    return labels
