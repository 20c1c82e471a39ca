"""Tours: the session's draft (reorder, notes, title), saved tours, JSON, links; or a tour presented stop by stop."""

import streamlit as st

from dashboard import presenter, state, tour_editor, tour_store_ui, tour_ui
from embspace.tours import TourError

settings = state.current()
opened = tour_ui.opened()  # the tour in the address (?tour=...&stop=3), read by the entry point

if isinstance(opened, TourError):
    st.title("Tour")
    st.error(str(opened), icon=":material/link_off:")
    st.button("Back to the tour editor", on_click=tour_ui.stop_presenting)
elif opened is not None:
    tour, number = opened
    try:
        presenter.present(settings, tour, number)
    except TourError as err:  # a stop the model lacks: one line naming it
        st.error(str(err), icon=":material/error:")
elif tour_ui.embedded():
    st.info("Open a tour's link (`/tours?tour=...`) to show it here.")
else:
    st.title("Tours")
    st.caption(
        "A tour is an ordered list of views with notes, for a lab meeting or a talk. Add stops with "
        "**Add to tour** on the neuron, W_VO and W_QK pages; reorder them and write their notes here."
    )
    draft = tour_ui.draft()
    if draft is None:
        st.info(
            "This session has no tour yet: press **Add to tour** on a view, import a tour file or open a saved one."
        )
    else:
        st.button("New tour", icon=":material/note_add:", key="tour_new", on_click=tour_editor.replace_draft,
                  args=(None,))  # fmt: skip
        tour_editor.stops_editor(draft)
        st.subheader("Present and share")
        tour_editor.sharing(draft)
    st.subheader("Saved tours")
    tour_store_ui.saved_tours(draft)
    st.subheader("Import")
    tour_editor.importer()
