"""AppTest helper for same-tab link tables (dashboard/links.py): what the browser sends when a row is clicked."""

from __future__ import annotations

import json

from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest


def click_row(at: AppTest, key: str, row: int, *, cell: str | None = None) -> AppTest:
    """Select row `row` of the selectable dataframe `key` (its checkbox, or with `cell` the cell in that
    column), as a click in the browser does, and run the app."""
    frame = next(d for d in at.dataframe if d.proto.id.endswith(f"-{key}"))
    selection = {"rows": [] if cell else [row], "columns": [], "cells": [[row, cell]] if cell else []}
    state = WidgetState(id=frame.proto.id)
    state.string_value = json.dumps({"selection": selection})
    widget_states = at._tree.get_widget_states()
    widget_states.widgets.append(state)
    return at._run(widget_states)
