"""The dashboard's pages, in navigation order, each with a stable address (url_path): the one list of them.

The navigation (`pages()`) and the Start page's links (`linked_pages()`) both read `PAGES`, so a page
added here is in both. The view pages take their address and title from the registry (embspace.views).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from embspace import VIEW_KINDS, ViewKind


@dataclass(frozen=True)
class PageEntry:
    """One page: its address, its navigation title and icon, and the line the Start page links it with."""

    url_path: str  # the page's address, and its file's stem: Streamlit's legacy pages/ mode agrees
    title: str  # in the navigation
    icon: str
    summary: str  # the Start page's link text ("" for the Start page itself)

    @property
    def script(self) -> str:
        return f"pages/{self.url_path}.py"


NEURON, VO, QK = (VIEW_KINDS[name] for name in ("neuron", "vo", "qk"))
START = PageEntry("about", "Start", ":material/home:", "")
PAGES: tuple[PageEntry, ...] = (
    START,
    PageEntry(
        NEURON.page,
        f"{NEURON.title}s",
        ":material/hub:",
        f"**{NEURON.title}s**: the tokens a neuron reacts to (K) and promotes (V)",
    ),
    PageEntry(
        VO.page,
        f"Heads: {VO.title}",
        ":material/edit_note:",
        f"**{VO.title}**: when a head attends to token a, which token b it writes",
    ),
    PageEntry(
        QK.page,
        f"Heads: {QK.title}",
        ":material/manage_search:",
        f"**{QK.title}**: which key tokens a query token attends to",
    ),
    PageEntry(
        "directions",
        "Singular directions",
        ":material/call_split:",
        "**Singular directions**: each direction of a head's OV / QK or a layer's FFN, read in the vocabulary",
    ),
    PageEntry(
        "overview",
        "Copying scores",
        ":material/grid_on:",
        "**Copying scores**: every head at a glance; click one to open it",
    ),
    PageEntry(
        "search",
        "Token search",
        ":material/search:",
        "**Token search**: where in the whole model a word is read, written or paired",
    ),
    PageEntry(
        "compare",
        "Compare models",
        ":material/compare_arrows:",
        "**Compare models**: what fine-tuning changed, unit by unit, read in the vocabulary",
    ),
    PageEntry(
        "annotations",
        "Annotations",
        ":material/label:",
        "**Annotations**: every label and note on this model's views; export and import",
    ),
    PageEntry(
        "tours",
        "Tours",
        ":material/tour:",
        "**Tours**: views in order with notes, presented one at a time, shared as one link",
    ),
)


def pages() -> list[st.Page]:
    """The st.navigation list."""
    return [
        st.Page(page.script, title=page.title, icon=page.icon, url_path=page.url_path, default=page is START)
        for page in PAGES
    ]


def linked_pages() -> tuple[PageEntry, ...]:
    """Every page but the Start page, in navigation order: what the Start page links to."""
    return tuple(page for page in PAGES if page is not START)


def view_page(kind: ViewKind) -> PageEntry:
    """The page that shows views of this kind (e.g. for st.switch_page(view_page(kind).script))."""
    (page,) = (page for page in PAGES if page.url_path == kind.page)
    return page
