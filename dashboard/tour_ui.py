"""Tours in the dashboard: the session's tour draft, "Add to tour" on every view, the tour in the address.

The draft (a `Tour`) lives in st.session_state until it is saved (pages/tours.py). A tour in the address
(`/tours?tour=<encode_address(tour)>&stop=3`) needs no database: before the sidebar is drawn, `open_address`
puts the stop's model, k and filters into the sidebar's keys, so the tables of the stop obey exactly the
sidebar settings the stop names, computed by the same code as its own view.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import streamlit as st

from dashboard import urlstate
from dashboard.state import ViewSettings
from embspace import VIEW_KINDS
from embspace.tours import (
    FILTER_OPTIONS,
    MAX_NOTE_CHARS,
    MAX_STOPS,
    Tour,
    TourError,
    TourStop,
    decode_address,
    encode_address,
)

TOUR_PARAM = "tour"  # the address parameter holding the whole tour (encode_address)
STOP_PARAM = "stop"  # the address parameter naming the stop shown, 1-based
TOURS_PAGE = "tours"  # the /tours page's url_path
UNTITLED = "Untitled tour"
_DRAFT = "_tour_draft"  # session key: this session's draft Tour
_SEEDED = "_tour_seeded"  # session key: (tour word, stop) whose settings the sidebar was last given
_OPENED = "_tour_opened"  # session key: this run's (Tour, stop) or the TourError of the address
_ADDED = "_tour_added"  # session key: the toast of the last "Add to tour"
# The sidebar's default for each tour filter's address parameter: a stop without the filter shows it so.
SIDEBAR_DEFAULTS: dict[str, bool | str] = {
    param: ("latin" if param == "alphabet" else "auto" if param == "embedding" else False)
    for param, _ in FILTER_OPTIONS.values()
}


def tour_filters(settings: ViewSettings, embedding: str = "auto") -> dict[str, bool | str]:
    """The tour filters (FILTER_OPTIONS keys) of the sidebar's settings; unticked switches left out.

    `embedding` is the sidebar's choice ("auto", "input", ...), kept as chosen. The alphabet is kept only
    with "letters and digits only", the one filter it belongs to. A corpus filter has no tour key."""
    vocab, pairs = settings.vocab_filter, settings.pair_filter
    switches = {
        "only-ascii": vocab.only_ascii,
        "only-alnum": vocab.only_alnum,
        "keep-special": not vocab.exclude_special,
        "exclude-same": pairs.exclude_same,
        "exclude-fuzzy": pairs.exclude_fuzzy,
        "negative": settings.negative,
    }
    filters: dict[str, bool | str] = {option: True for option, ticked in switches.items() if ticked}
    if vocab.only_alnum and isinstance(vocab.alphabet, str):
        filters["alphabet"] = vocab.alphabet
    if embedding != "auto":
        filters["embedding"] = embedding
    return filters


def sidebar_values(tour: Tour, stop: TourStop) -> dict[str, Any]:
    """{sidebar key: value} that shows `stop` as its tour says: model, revision, k and every filter."""
    values: dict[str, Any] = {"model": tour.model, "revision": tour.revision or "", **SIDEBAR_DEFAULTS}
    if stop.k is not None:
        values["k"] = stop.k
    for option, value in stop.filters.items():
        values[FILTER_OPTIONS[option][0]] = value
    return values


def draft() -> Tour | None:
    """This session's tour draft (None before the first stop or import)."""
    return st.session_state.get(_DRAFT)


def set_draft(tour: Tour | None) -> None:
    st.session_state[_DRAFT] = tour


def with_stop(tour: Tour | None, settings: ViewSettings, stop: TourStop) -> Tour:
    """`tour` (a new untitled one on this model when None) with `stop` appended; TourError when it cannot take it."""
    info = settings.model.info
    if tour is None:
        tour = Tour(UNTITLED, info.source, (), info.revision)
    if (tour.model, tour.revision) != (info.source, info.revision):
        raise TourError(f"the tour {tour.title!r} is on {tour.model}, not {info.source}: save it and start a new one.")
    if len(tour.stops) >= MAX_STOPS:
        raise TourError(f"a tour holds at most {MAX_STOPS} stops.")
    return replace(tour, stops=(*tour.stops, stop))


def add_stop(settings: ViewSettings, kind: str, layer: int, index: int, slot: str) -> None:
    """The "Add" button's callback: append the view as it is shown now, with the typed note."""
    note = str(st.session_state.get(f"{slot}:note") or "")
    embedding = str(st.session_state.get("embedding") or "auto")
    stop = TourStop(kind, int(layer), int(index), note, settings.k, tour_filters(settings, embedding))
    try:
        tour = with_stop(draft(), settings, stop)
    except TourError as err:
        st.session_state[_ADDED] = (f"Not added: {err}", ":material/error:")
        return
    set_draft(tour)
    st.session_state[f"{slot}:note"] = ""
    st.session_state[_ADDED] = (f"Added: stop {len(tour.stops)} of '{tour.title}'", ":material/playlist_add_check:")


def add_to_tour(settings: ViewSettings, kind: str, layer: int, index: int) -> None:
    """A small "Add to tour" popover (an optional note, then Add) for the view shown; none in a frame."""
    message = st.session_state.pop(_ADDED, None)
    if message is not None:
        st.toast(message[0], icon=message[1])
    if embedded():
        return
    slot = f"_tour_add:{kind}"
    current = draft()
    stops = len(current.stops) if current else 0
    count = f" ({stops} stop{'s' if stops != 1 else ''})" if stops else ""
    with st.popover(f"Add to tour{count}", icon=":material/playlist_add:"):
        unit = VIEW_KINDS[kind].unit
        st.caption(f"Adds layer {layer}, {unit} {index} with the sidebar's k and filters to this session's tour.")
        st.text_area("Note for this stop (markdown)", key=f"{slot}:note", max_chars=MAX_NOTE_CHARS)
        st.button("Add", key=f"{slot}:add", on_click=add_stop, args=(settings, kind, layer, index, slot))
        st.page_link(f"pages/{TOURS_PAGE}.py", label="Open the tour", icon=":material/tour:")


def embedded() -> bool:
    """Whether the app is shown in a frame of another page (`?embed=true`): no sidebar, no editing."""
    return bool(st.context.is_embedded)


def hide_sidebar_when_embedded() -> None:
    """In a frame, hide the sidebar (its settings still come from the address) and its toggle."""
    if embedded():
        st.html(
            "<style>[data-testid='stSidebar'], [data-testid='stSidebarCollapsedControl'], "
            "[data-testid='stExpandSidebarButton'] {display: none !important;}</style>"
        )


def open_address(url_path: str) -> None:
    """On /tours, read the tour and stop in the address and give the sidebar the stop's settings (when the
    stop changed): called by the entry point before the sidebar is drawn. Other pages drop both parameters."""
    st.session_state.pop(_OPENED, None)
    if url_path != TOURS_PAGE:
        return
    word = str(urlstate.url_param(TOUR_PARAM, "")).strip()
    if not word:
        return
    number = int(urlstate.url_param(STOP_PARAM, 1, urlstate.Bounds(min_value=1)))
    try:
        tour = decode_address(word)
    except TourError as err:
        st.session_state[_OPENED] = err
        return
    if not tour.stops:
        st.session_state[_OPENED] = TourError("this tour link has no stops.")
        return
    number = min(number, len(tour.stops))
    st.session_state[STOP_PARAM] = number
    st.session_state[_OPENED] = (tour, number)
    if st.session_state.get(_SEEDED) != (word, number):
        st.session_state[_SEEDED] = (word, number)
        st.session_state.update(sidebar_values(tour, tour.stops[number - 1]))


def opened() -> tuple[Tour, int] | TourError | None:
    """This run's tour from the address and its stop (1-based), the TourError it gave, or None."""
    return st.session_state.get(_OPENED)


def present(tour: Tour, number: int = 1) -> None:
    """Callback: show `tour` from stop `number` (the address then holds the whole tour)."""
    st.session_state[TOUR_PARAM] = encode_address(tour)
    st.session_state[STOP_PARAM] = number


def go_to_stop(number: int) -> None:
    """Callback of Previous / Next."""
    st.session_state[STOP_PARAM] = number


def stop_presenting() -> None:
    """Callback: back to the tour editor (the address drops the tour)."""
    st.session_state[TOUR_PARAM] = ""
    st.session_state[STOP_PARAM] = 1


def presenter_link(tour: Tour, base_url: str = "", *, stop: int = 1, embed: bool = False) -> str:
    """The presenter link of `tour` (at `stop`), e.g. "http://host/tours?tour=1.eJy...&stop=2&embed=true"."""
    params = f"{TOUR_PARAM}={encode_address(tour)}" + (f"&{STOP_PARAM}={stop}" if stop != 1 else "")
    return f"{base_url.rstrip('/')}/{TOURS_PAGE}?{params}" + ("&embed=true" if embed else "")
