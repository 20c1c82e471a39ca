"""Saved tours on /tours: save the draft under a name, open or delete a saved one (embspace.tours.store).

A save is based on the version this session opened or last saved under that name, so two people saving
one tour get a conflict message instead of a silent overwrite. A read-only store says so; the draft,
its JSON export and its link keep working without it.
"""

from __future__ import annotations

import streamlit as st

from dashboard import edit_access, tour_editor, tour_ui
from embspace.tours import Tour, TourError, TourStore

_SAVED = "_tour_saved"  # session key: (name, version) the draft was last opened or saved as
_MESSAGE = "_tour_store_message"
NAME_KEY = "_tour_name"
CHOICE_KEY = "_tour_choice"


@st.cache_resource(show_spinner=False)
def store() -> TourStore:
    """The tour store in the data directory, shared by every session (a broken file opens read-only)."""
    return TourStore.open()


def saved_as() -> tuple[str, int] | None:
    return st.session_state.get(_SAVED)


def base_version(name: str) -> int | None:
    """The version a save of `name` is based on: the one this session opened or saved, else None (new)."""
    saved = saved_as()
    return saved[1] if saved and saved[0] == name else None


def save_draft() -> None:
    """The Save button's callback."""
    tour, name = tour_ui.draft(), str(st.session_state.get(NAME_KEY) or "").strip()
    access = edit_access.current()  # checked again: access may have ended since the button was drawn
    if not access.allowed:
        st.session_state[_MESSAGE] = f"Not saved: {access.reason}"
        return
    try:
        version = store().save(name, tour, author=access.author, base_version=base_version(name))
    except TourError as err:
        st.session_state[_MESSAGE] = f"Not saved: {err}"
        return
    st.session_state[_SAVED] = (name, version)
    st.session_state[_MESSAGE] = f"Saved {name!r} (version {version})."


def open_saved(name: str) -> None:
    """The Open button's callback: the saved tour becomes the draft."""
    found = store().get(name)
    if found is None:
        st.session_state[_MESSAGE] = f"Not opened: no tour is named {name!r} any more."
        return
    tour, version = found
    tour_editor.replace_draft(tour)
    st.session_state[_SAVED] = (name, version)
    st.session_state[NAME_KEY] = name
    st.session_state[_MESSAGE] = f"Opened {name!r} (version {version})."


def delete_saved(name: str, version: int) -> None:
    """The Delete button's callback (refused when someone saved it since the list was shown)."""
    access = edit_access.current()
    if not access.allowed:
        st.session_state[_MESSAGE] = f"Not deleted: {access.reason}"
        return
    try:
        store().delete(name, base_version=version)
    except TourError as err:
        st.session_state[_MESSAGE] = f"Not deleted: {err}"
        return
    if saved_as() and saved_as()[0] == name:
        st.session_state.pop(_SAVED, None)
    st.session_state[_MESSAGE] = f"Deleted {name!r}."


def saved_tours(tour: Tour | None) -> None:
    """Save the draft by name; open or delete a saved tour. Read-only: says so, and lists only."""
    tours = store()
    message = st.session_state.pop(_MESSAGE, None)
    if message is not None:
        (st.error if message.startswith("Not") else st.success)(message)
    access = edit_access.current()
    writable = access.allowed and not tours.read_only
    if not writable:
        reason = tours.read_only_reason if tours.read_only else access.reason
        st.info(f"Saving tours is off here: {reason} The draft, its JSON export and its link still work.")
    elif tour is not None:
        name_column, save_column = st.columns([3, 1], vertical_alignment="bottom")
        name_column.text_input("Save as", key=NAME_KEY, placeholder="e.g. copying heads", max_chars=100)
        save_column.button("Save", icon=":material/save:", key="tour_save", on_click=save_draft, width="stretch")
    records = tours.list()
    if not records:
        st.caption("No saved tours yet.")
        return
    labels = {record.name: f"{record.name}: {record.title or tour_ui.UNTITLED} ({record.stops} stops, "
              f"v{record.version}, {record.author or 'anonymous'})" for record in records}  # fmt: skip
    choice_column, open_column, delete_column = st.columns([4, 1, 1], vertical_alignment="bottom")
    name = choice_column.selectbox("Saved tours", list(labels), format_func=labels.get, key=CHOICE_KEY)
    open_column.button("Open", icon=":material/folder_open:", key="tour_open", on_click=open_saved, args=(name,),
                       width="stretch")  # fmt: skip
    if writable:
        version = next(record.version for record in records if record.name == name)
        delete_column.button("Delete", icon=":material/delete_forever:", key="tour_delete", on_click=delete_saved,
                             args=(name, version), width="stretch")  # fmt: skip
