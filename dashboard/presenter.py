"""Presenter mode of /tours: one stop at a time in large type, "3 / 12", Previous / Next (and ← / →).

A stop is drawn by the same code as its own view (head_view's table and scatter, the neuron page's
cached tables, render), under the sidebar settings the entry point took from the stop
(tour_ui.open_address), so what the audience sees is what the stop's own link shows.
"""

from __future__ import annotations

import streamlit as st

from dashboard import cache, head_view, render, settings_line, tour_ui
from dashboard.pickers import ScatterOptions
from dashboard.state import ViewSettings
from embspace import DEFAULT_MODEL, VIEW_KINDS, neuron_vector_names
from embspace.tours import Tour, TourStop

PLOT = ScatterOptions(points=30, dims=2, normalize=False, labels=False)  # 2D reads best on a projector
# Large type for a projector: the tour's title, the stop's heading and its note.
PRESENTER_CSS = """<style>
.st-key-tour_note p, .st-key-tour_note li {font-size: 1.6rem; line-height: 1.45;}
.st-key-tour_note h1, .st-key-tour_note h2, .st-key-tour_note h3 {font-size: 2.2rem;}
.st-key-tour_heading h2 {font-size: 2.6rem;}
.st-key-tour_position p {font-size: 1.6rem; font-weight: 600; text-align: center;}
</style>"""


def stop_heading(stop: TourStop) -> str:
    """ "W_VO · layer 5, head 7" or "FFN neuron · layer 1, neuron 7"."""
    kind = VIEW_KINDS[stop.kind]
    return f"{kind.title} · layer {stop.layer}, {kind.unit} {stop.index}"


def present(settings: ViewSettings, tour: Tour, number: int) -> None:
    """The presenter's page for stop `number` (1-based) of `tour`."""
    st.html(PRESENTER_CSS)
    stop = tour.stops[number - 1]
    shape = settings.model.shape
    tour.check_model(shape.n_layers, shape.n_heads, shape.d_ff)  # a TourError names the stop the model lacks
    st.title(tour.title or tour_ui.UNTITLED)
    steps(len(tour.stops), number)
    with st.container(key="tour_heading"):
        st.header(stop_heading(stop))
    note_column, view_column = st.columns([2, 3], gap="large")
    with note_column, st.container(key="tour_note"):
        st.markdown(stop.note or "*(no note)*")
    with view_column:
        if stop.kind == "neuron":
            neuron_stop(settings, stop)
        else:
            head_stop(settings, stop)
    view = VIEW_KINDS[stop.kind].address(stop.layer, stop.index, **view_extra(tour, stop))
    st.caption(f"[Open this view]({view}) with the sidebar's settings of this stop.")
    if not tour_ui.embedded():
        st.button("Edit the tour", icon=":material/edit:", on_click=edit_tour, args=(tour,), key="tour_edit")


def view_extra(tour: Tour, stop: TourStop) -> dict[str, str | int]:
    """The stop's address parameters other than layer and unit: the model when not the default, k, filters."""
    params = stop.address_params()
    kind = VIEW_KINDS[stop.kind]
    extra = {name: value for name, value in params.items() if name not in ("layer", kind.unit)}
    model = {"model": tour.model} if tour.model != DEFAULT_MODEL else {}
    return {**model, **({"revision": tour.revision} if tour.revision else {}), **extra}


def edit_tour(tour: Tour) -> None:
    """Callback: make the presented tour the session's draft and open the editor."""
    tour_ui.set_draft(tour)
    tour_ui.stop_presenting()


def steps(count: int, number: int) -> None:
    """Previous, "3 / 12", Next; the keyboard's ← and → press them."""
    previous_column, position_column, next_column = st.columns([1, 1, 1], vertical_alignment="center")
    previous_column.button(
        "Previous",
        icon=":material/arrow_back:",
        key="tour_previous",
        shortcut="left",
        disabled=number <= 1,
        on_click=tour_ui.go_to_stop,
        args=(number - 1,),
        width="stretch",
    )
    with position_column, st.container(key="tour_position"):
        st.markdown(f"{number} / {count}")
    next_column.button(
        "Next",
        icon=":material/arrow_forward:",
        key="tour_next",
        shortcut="right",
        disabled=number >= count,
        on_click=tour_ui.go_to_stop,
        args=(number + 1,),
        width="stretch",
    )


def head_stop(settings: ViewSettings, stop: TourStop) -> None:
    """A W_VO / W_QK stop: the copying score, the top pairs table and the t-SNE of their tokens."""
    spec = head_view.PAGES[stop.kind]
    layer, head = stop.layer, stop.index
    pairs = head_view.head_pairs(settings, stop.kind, layer, head, max(settings.k, PLOT.points))
    score = cache.head_copying_score(settings.model, layer, head)
    stem = f"{stop.kind}-layer{layer}-head{head}"
    settings_line.show(settings, pairs=True)
    about = settings_line.about(settings, pairs=True, view=stop.kind, layer=layer, head=head)
    head_view.pairs_table(spec, settings, pairs, score, stem, about)
    head_view.pairs_scatter(settings, pairs, PLOT, f"Layer {layer}, head {head}", stem)


def neuron_stop(settings: ViewSettings, stop: TourStop) -> None:
    """An FFN neuron stop: its K / V (and -K, -V, U) tables and the t-SNE of K's top tokens."""
    layer, neuron, model = stop.layer, stop.index, settings.model
    vectors = neuron_vector_names(model.shape.gated_mlp)
    computed = cache.neuron_tables(settings, layer, neuron, max(settings.k, PLOT.points))
    tables = {name: computed[name] for name in vectors}
    stem = f"neuron-layer{layer}-{neuron}"
    settings_line.show(settings)
    st.subheader(head_view.capitalized(f"{settings_line.most(settings, settings.k, 'tokens')} of each vector · E"))
    render.neuron_table(
        tables, settings.k, stem, settings_line.about(settings, view="neuron", layer=layer, neuron=neuron)
    )
    top = tables[vectors[0]].head(PLOT.points)
    if len(top) == 0:
        st.info("No token passes the filters.")
        return
    title = f"Layer {layer}, neuron {neuron}: {settings_line.most(settings, len(top), 'tokens')} of {vectors[0]}·E"
    figure = cache.tokens_scatter(model, top, PLOT, title)
    render.figure(figure, f"{stem}-{vectors[0]}-tsne", key="tsne", suffix=settings_line.file_suffix(settings))
