"""embspace dashboard, the entry point: the page list, the shared sidebar, then the chosen page.

Run with `streamlit run app.py`. The sidebar (model, embedding, k, token filters, corpus) is
drawn here, once per run, for every page; pages read it with `dashboard.sidebar.current()`.
"""

import streamlit as st

from dashboard import annotations_ui, sidebar, urlstate
from embspace import runtime
from embspace.errors import EmbspaceError

runtime.configure()  # threads and matmul precision: once per process, never switched per call

st.set_page_config(page_title="embspace", page_icon=":material/abc:", layout="wide")

# url_path = the file's stem: Streamlit's legacy pages/ mode (a fresh server's first run) agrees.
PAGES = [
    st.Page("pages/about.py", title="Start", icon=":material/home:", url_path="about", default=True),
    st.Page("pages/neurons.py", title="FFN neurons", icon=":material/hub:", url_path="neurons"),
    st.Page("pages/vo.py", title="Heads: W_VO", icon=":material/edit_note:", url_path="vo"),
    st.Page("pages/qk.py", title="Heads: W_QK", icon=":material/manage_search:", url_path="qk"),
    st.Page("pages/overview.py", title="Copying scores", icon=":material/grid_on:", url_path="overview"),
    st.Page("pages/search.py", title="Token search", icon=":material/search:", url_path="search"),
    st.Page("pages/annotations.py", title="Annotations", icon=":material/label:", url_path="annotations"),
]
page = st.navigation(PAGES)

urlstate.begin_run()
try:
    controls = sidebar.draw()
    annotations_ui.display_name_input()
    if controls is not None:  # None: the model could not be opened, and the sidebar said why
        urlstate.publish(keep_undeclared=True)  # the sidebar's part of the address, before the page's slow work
        page.run()
except EmbspaceError as err:  # e.g. a missing shard found only when a layer is read: a message, not a traceback
    st.error(str(err), icon=":material/error:")
finally:
    sidebar.release()
urlstate.publish()
