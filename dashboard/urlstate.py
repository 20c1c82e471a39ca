"""Every view has an address: the widgets' values live in the URL's query parameters.

A widget whose value belongs in the address is drawn with `widget(draw, label, key=...,
default=..., bounds)`, which declares it (`url_param`) and draws it with the same key and
bounds, so each is written once. The first time
the key shows up in a session, or after its widget was off screen (Streamlit then forgets the
value), the value is read from the URL. At the end of every run `publish()` writes each value
declared in that run that differs from its default back to the URL, and drops the rest, so a
copied link reopens the same view.

Streamlit's `bind="query-params"` is not used: a bound key cannot be passed to
`st.switch_page(query_params=...)`, which the overview's heatmap click needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

_DECLARED = "_url_params_declared"  # session key: {widget key: default} declared in this run
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_KIND_NAMES = {bool: "true or false", int: "a whole number", float: "a number"}  # for adjustment messages


def begin_run() -> None:
    """Forget the previous run's declarations; call once at the top of the entry point."""
    st.session_state[_DECLARED] = {}


@dataclass(frozen=True)
class Bounds:
    """What a widget accepts: one of `options` (None: any), a number within [min_value, max_value]."""

    options: tuple[Any, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None

    def valid(self, value: Any, default: Any) -> Any:
        """`value` if the widget accepts it; else the nearest bound (numbers) or the default.

        The type must be the default's (an int passes for a float): a value of the wrong type is never
        passed to a widget."""
        if type(value) is not type(default) and not (isinstance(default, float) and isinstance(value, int)):
            return default
        if self.options is not None and value not in self.options:
            return default
        if self.min_value is not None and value < self.min_value:
            return type(default)(self.min_value)
        if self.max_value is not None and value > self.max_value:
            return type(default)(self.max_value)
        return value


def url_param(key: str, default: Any, bounds: Bounds | None = None) -> Any:
    """Seed `st.session_state[key]` from the URL (first sight) and keep it valid; returns the value.

    The value's type is the default's (bool, int, float or str). A value the widget would
    refuse (outside `bounds`, unparsable) becomes the default, or the nearest bound for numbers:
    e.g. layer 9 of a 6-layer model becomes 5, and a short message says so.
    After the browser's Back or Forward the address wins over the session: that is the view asked for.
    """
    st.session_state.setdefault(_DECLARED, {})[key] = default
    bounds = bounds or Bounds()
    if key in st.session_state and not history_navigation():
        value = bounds.valid(st.session_state[key], default)
    else:
        raw = st.query_params.get(key)
        value = default if raw is None else from_address(key, raw, default, bounds)
    # Assigned on every run, even when unchanged: a widget with the same key on another page has
    # another widget id, and only an explicit assignment carries the value over to it.
    st.session_state[key] = value
    return value


def from_address(key: str, raw: str, default: Any, bounds: Bounds) -> Any:
    """The value of `key=raw` from the address, valid for the widget; a toast names any change made."""
    try:
        parsed = _parse(raw, default)
    except (ValueError, OverflowError):  # "abc", and "inf" / "1e999" for an int
        parsed = None
    value = bounds.valid(default if parsed is None else parsed, default)
    if parsed is None or value != parsed:
        st.toast(adjustment_message(key, raw, value, default, bounds), icon=":material/tune:")
    return value


def adjustment_message(key: str, raw: str, value: Any, default: Any, bounds: Bounds) -> str:
    """ "layer=9 is out of range (0–5): showing layer 5", and the like for options and unreadable values."""
    shown = f"showing {key} {format_value(value)}"
    if bounds.options is not None and raw not in map(format_value, bounds.options):
        choices = ", ".join(map(format_value, bounds.options))
        return f"{key}={raw} is not one of {choices}: {shown}"
    if bounds.min_value is not None or bounds.max_value is not None:
        low = "" if bounds.min_value is None else format_value(type(default)(bounds.min_value))
        high = "" if bounds.max_value is None else format_value(type(default)(bounds.max_value))
        try:
            _parse(raw, default)
            return f"{key}={raw} is out of range ({low}–{high}): {shown}"
        except (ValueError, OverflowError):
            pass
    return f"{key}={raw} is not {_KIND_NAMES.get(type(default), 'readable')}: {shown}"


def history_navigation() -> bool:
    """Whether this run answers the browser's Back or Forward (the address is the view asked for)."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.is_history_navigation)


def widget(
    draw: Callable[..., Any],
    label: str,
    *,
    key: str,
    default: Any,
    options: Iterable[Any] | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
    **kwargs: Any,
) -> Any:
    """Draw a widget whose value lives in the page address; returns its value.

    draw: a widget function (`st.checkbox`, `st.sidebar.number_input`, `column.radio`, ...). Its
    value is declared with `url_param(key, default, Bounds(...))` first; `options` are passed as the
    widget's second argument, min_value/max_value as its bounds, `kwargs` as they are. A
    selectbox with `accept_new_options=True` takes any value, so its options are not enforced.
    """
    allowed = None if options is None or kwargs.get("accept_new_options") else tuple(options)
    url_param(key, default, Bounds(allowed, min_value, max_value))
    if options is not None:
        return draw(label, options, key=key, **kwargs)
    bounds = {name: value for name, value in (("min_value", min_value), ("max_value", max_value)) if value is not None}
    return draw(label, key=key, **bounds, **kwargs)


def parse_value(raw: str, default: Any) -> Any:
    """A query-parameter string as the default's type; the default when it does not parse."""
    try:
        return _parse(raw, default)
    except (ValueError, OverflowError):  # "abc", and "inf" / "1e999" for an int
        return default


def _parse(raw: str, default: Any) -> Any:
    """A query-parameter string as the default's type; ValueError or OverflowError when it does not parse."""
    if isinstance(default, bool):
        word = raw.strip().lower()
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise ValueError(f"not a boolean word: {raw!r}")
    if isinstance(default, int):
        return int(float(raw))
    if isinstance(default, float):
        return float(raw)
    return raw


def format_value(value: Any) -> str:
    """The query-parameter string of a widget value (inverse of `parse_value`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def current_params() -> dict[str, str]:
    """{key: value} of every value declared in this run that differs from its default."""
    declared: Mapping[str, Any] = st.session_state.get(_DECLARED, {})
    return {
        key: format_value(st.session_state[key])
        for key, default in declared.items()
        if key in st.session_state and st.session_state[key] != default
    }


def publish() -> None:
    """Make the URL's query parameters `current_params()` (no message when unchanged).

    Once per run, at its end: each write is a browser history entry, so an early partial address
    would be one more step for Back."""
    wanted = current_params()
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)
