"""embspace dashboard, the entry point: the page list, the shared sidebar, then the chosen page.

Run with `streamlit run app.py`. The sidebar (model, embedding, k, token filters, corpus) is
drawn here, once per run, for every page; pages read its settings with `dashboard.state.current()`.
"""

import streamlit as st

from dashboard import annotations_ui, edit_access, page_list, sidebar, state, tour_ui, urlstate
from embspace import EmbspaceError, runtime

runtime.configure()  # threads and matmul precision: once per process, never switched per call

st.set_page_config(page_title="embspace", page_icon=":material/abc:", layout="wide")

page = st.navigation(page_list.pages(), position="hidden" if tour_ui.embedded() else "sidebar")
tour_ui.hide_sidebar_when_embedded()  # in a frame: the settings still come from the address

urlstate.begin_run()
try:
    tour_ui.open_address(page.url_path)  # a tour's stop sets the sidebar's model, k and filters
    settings = sidebar.draw()
    edit_access.sidebar()  # hosted only: who may edit, sign-in or the lab's passphrase
    annotations_ui.display_name_input()
    if settings is not None:  # None: the model could not be opened, and the sidebar said why
        state.share(settings)
        page.run()
except EmbspaceError as err:  # e.g. a missing shard found only when a layer is read: a message, not a traceback
    st.error(str(err), icon=":material/error:")
finally:
    state.release()
urlstate.publish()
