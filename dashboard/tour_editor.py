"""The /tours editor: the session's draft stop by stop (move, remove, notes, title), import / export as JSON,
the presenter link (the whole tour in the address) and the link for a frame.

Widgets are keyed by the draft's revision, bumped by every change of order or content from outside a
widget (a move, an import, an opened tour), so each note box shows its own stop's note after a move.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from urllib.parse import urlsplit

import streamlit as st

from dashboard import tour_ui
from dashboard.presenter import stop_heading
from embspace.tours import MAX_NOTE_CHARS, Tour, TourError, TourStop, parse_tour

_REVISION = "_tour_revision"  # session key: bumped when the draft changes outside its widgets
_IMPORT_MESSAGE = "_tour_import_message"


def revision() -> int:
    return int(st.session_state.get(_REVISION, 0))


def replace_draft(tour: Tour | None) -> None:
    """Set the draft from outside its widgets (a move, an import, an opened tour): widgets start afresh."""
    tour_ui.set_draft(tour)
    st.session_state[_REVISION] = revision() + 1


def moved(stops: tuple[TourStop, ...], position: int, delta: int) -> tuple[TourStop, ...]:
    """`stops` with the one at `position` (0-based) moved `delta` places (-1 up, +1 down), within bounds."""
    target = min(max(position + delta, 0), len(stops) - 1)
    order = list(stops)
    order.insert(target, order.pop(position))
    return tuple(order)


def move_stop(position: int, delta: int) -> None:
    tour = tour_ui.draft()
    replace_draft(replace(tour, stops=moved(tour.stops, position, delta)))


def remove_stop(position: int) -> None:
    tour = tour_ui.draft()
    replace_draft(replace(tour, stops=tour.stops[:position] + tour.stops[position + 1 :]))


def note_changed(position: int, key: str) -> None:
    """A note box's callback: the stop's note is the box's text."""
    tour = tour_ui.draft()
    stops = list(tour.stops)
    stops[position] = replace(stops[position], note=str(st.session_state.get(key) or ""))
    tour_ui.set_draft(replace(tour, stops=tuple(stops)))


def title_changed(key: str) -> None:
    tour_ui.set_draft(replace(tour_ui.draft(), title=str(st.session_state.get(key) or "").strip()))


def filters_text(stop: TourStop) -> str:
    """ "k 30 · only-ascii · alphabet polish": the settings a stop is shown with."""
    parts = ([] if stop.k is None else [f"k {stop.k}"]) + [
        option if value is True else f"{option} {value}" for option, value in stop.filters.items()
    ]
    return " · ".join(parts) or "the viewer's own settings"


def stops_editor(tour: Tour) -> None:
    """The title, then each stop: its view and settings, ↑ ↓ ✕, its note (markdown)."""
    rev = revision()
    title_key = f"_tour_title:{rev}"
    st.text_input("Title", value=tour.title, key=title_key, on_change=title_changed, args=(title_key,), max_chars=200)
    st.caption(f"Model: `{tour.model}`" + (f" @ {tour.revision}" if tour.revision else ""))
    for position, stop in enumerate(tour.stops):
        with st.container(border=True):
            heading, up, down, remove = st.columns([3, 1, 1, 1], vertical_alignment="center")
            heading.markdown(f"**{position + 1}. {stop_heading(stop)}**  \n{filters_text(stop)}")
            up.button("Up", key=f"_tour_up:{rev}:{position}", icon=":material/arrow_upward:",
                      on_click=move_stop, args=(position, -1), disabled=position == 0)  # fmt: skip
            down.button("Down", key=f"_tour_down:{rev}:{position}", icon=":material/arrow_downward:",
                        on_click=move_stop, args=(position, 1), disabled=position == len(tour.stops) - 1)  # fmt: skip
            remove.button("Remove", key=f"_tour_remove:{rev}:{position}", icon=":material/delete:",
                          on_click=remove_stop, args=(position,))  # fmt: skip
            note_key = f"_tour_note:{rev}:{position}"
            st.text_area(
                f"Note for stop {position + 1} (markdown)",
                value=stop.note,
                key=note_key,
                max_chars=MAX_NOTE_CHARS,
                on_change=note_changed,
                args=(position, note_key),
            )


def base_url() -> str:
    """The app's address without the page ("http://host:8501"), "" when the browser did not say it."""
    url = st.context.url
    if not url:
        return ""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    path = path[: -len(f"/{tour_ui.TOURS_PAGE}")] if path.endswith(f"/{tour_ui.TOURS_PAGE}") else path
    return f"{parts.scheme}://{parts.netloc}{path}"


def file_name(tour: Tour) -> str:
    """The export's file name: the title as a slug ("Copy heads in MiniLM" -> "copy-heads-in-minilm.json")."""
    slug = re.sub(r"[^a-z0-9]+", "-", (tour.title or tour_ui.UNTITLED).lower()).strip("-")
    return f"{slug or 'tour'}.json"


def sharing(tour: Tour) -> None:
    """Present, the presenter link (copy button), the link for a frame, and the JSON export."""
    present, export = st.columns(2)
    present.button("Present", icon=":material/slideshow:", type="primary", key="tour_present",
                   on_click=tour_ui.present, args=(tour,), disabled=not tour.stops)  # fmt: skip
    export.download_button(
        "Export JSON",
        data=json.dumps(tour.to_json(), indent=2, ensure_ascii=False),
        file_name=file_name(tour),
        mime="application/json",
        icon=":material/download:",
        key="tour_export",
    )
    if not tour.stops:
        return
    base = base_url()
    st.markdown("**Presenter link** (the whole tour is in it: it opens with no database)")
    st.code(tour_ui.presenter_link(tour, base), language=None, wrap_lines=True)
    st.markdown("**In a frame of another page** (no sidebar, no editing)")
    frame = tour_ui.presenter_link(tour, base, embed=True)
    st.code(f'<iframe src="{frame}" width="100%" height="800"></iframe>', language="html", wrap_lines=True)


def import_file(key: str) -> None:
    """The uploader's callback: the uploaded tour file becomes the draft (or a message says what is wrong)."""
    upload = st.session_state.get(key)
    if upload is None:
        return
    try:
        tour = parse_tour(json.loads(upload.getvalue().decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        st.session_state[_IMPORT_MESSAGE] = f"{upload.name} is not a JSON tour file: {err}"
        return
    except TourError as err:
        st.session_state[_IMPORT_MESSAGE] = f"{upload.name}: {err}"
        return
    replace_draft(tour)
    st.session_state[_IMPORT_MESSAGE] = f"Imported {upload.name}: {len(tour.stops)} stops."


def importer() -> None:
    """Import a tour file (JSON, as `embspace tour` and Export write it) as the session's draft."""
    key = f"_tour_import:{revision()}"
    st.file_uploader("Import a tour (JSON)", type=["json"], key=key, on_change=import_file, args=(key,))
    message = st.session_state.pop(_IMPORT_MESSAGE, None)
    if message is not None:
        (st.success if message.startswith("Imported") else st.error)(message)
