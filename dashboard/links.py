"""Links inside the app: one click, the same tab, the same session (so an uploaded corpus stays in effect).

A table of views is a row-selectable st.dataframe: ticking a row's box (left of its "open" cell) opens that
row's view with st.switch_page. (A cell click does not select in the browser, so rows are the one mechanism.) A LinkColumn would open a new tab, i.e. a new session that has lost the upload.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from dashboard import page_list
from embspace import ViewKind

_FOLLOW = "_follow_link"  # session key: the Link a table's click asked for, followed on the next run
CLICK_HINT = "Tick a row's box (left of “open”) to open its view: one click, this tab, the same settings."
OPEN_TEXT = "open →"  # the text of a link table's "open" column


@dataclass(frozen=True)
class Link:
    """Where a row leads: a page script ("pages/vo.py") and its query parameters."""

    page: str
    params: Mapping[str, str]


def view_link(kind: ViewKind, layer: int, index: int, **extra: str) -> Link:
    """The link to a view (its page, layer and unit) with `extra` parameters (the sidebar's settings)."""
    params = {key: str(value) for key, value in kind.params(layer, index, **extra).items()}
    return Link(page_list.view_page(kind).script, params)


def link_table(
    frame: pd.DataFrame,
    links: Sequence[Link],
    *,
    key: str,
    column_config: Mapping | None = None,
    hint: str = CLICK_HINT,
) -> None:
    """Show `frame` (row i leads to links[i]); a click on a row's box opens its view in this tab.

    A link chosen in the previous run is followed first, before anything else of the table is drawn.
    """
    follow_chosen_link()
    st.caption(hint)
    st.dataframe(
        frame,
        key=key,
        hide_index=True,
        column_config=dict(column_config or {}),
        on_select=functools.partial(_choose, key, tuple(links)),
        selection_mode="single-row",
    )


def follow_chosen_link() -> None:
    """st.switch_page to the link a table click chose (callbacks cannot switch pages themselves)."""
    link: Link | None = st.session_state.pop(_FOLLOW, None)
    if link is not None:
        st.switch_page(link.page, query_params=dict(link.params))


def chosen_row(selection: Mapping) -> int | None:
    """The row a dataframe selection points at (a selected row, or the row of a selected cell), or None."""
    rows = list(selection.get("rows") or [])
    cells = list(selection.get("cells") or [])
    if rows:
        return int(rows[0])
    if cells:
        return int(cells[0][0])
    return None


def _choose(key: str, links: tuple[Link, ...]) -> None:
    """on_select: remember the clicked row's link and clear the selection (Back must not reopen it)."""
    state = st.session_state.get(key) or {}
    row = chosen_row(state.get("selection", {}))
    if row is not None and 0 <= row < len(links):
        st.session_state[_FOLLOW] = links[row]
    st.session_state[key] = {"selection": {"rows": [], "columns": [], "cells": []}}
