"""dashboard/urlstate.py: parsing and clamping of page-address values, and widgets declared once."""

from __future__ import annotations

import pytest
import streamlit as st

from dashboard import urlstate


@pytest.fixture(autouse=True)
def empty_session():
    """Bare-mode session state and query parameters (no AppTest), emptied around every test."""
    st.session_state.clear()
    st.query_params.clear()
    yield
    st.session_state.clear()
    st.query_params.clear()


@pytest.mark.parametrize(
    ("raw", "default", "expected"),
    [
        ("true", False, True),
        ("OFF", True, False),
        ("maybe", True, True),  # not a boolean word: the default
        ("7", 0, 7),
        ("7.9", 0, 7),
        ("abc", 3, 3),
        ("inf", 3, 3),
        ("1e999", 3, 3),
        ("0.25", 1.0, 0.25),
        ("gpt2", "", "gpt2"),
    ],
)
def test_parse_value(raw, default, expected):
    value = urlstate.parse_value(raw, default)
    assert value == expected and type(value) is type(default)


@pytest.mark.parametrize("value", [True, False, 0, 42, 2.5, "kot"])
def test_format_then_parse_round_trips(value):
    assert urlstate.parse_value(urlstate.format_value(value), value) == value


def test_bounds_clamp_numbers_and_refuse_unknown_options():
    layers = urlstate.Bounds(min_value=0, max_value=5)
    assert layers.valid(9, 0) == 5
    assert layers.valid(-3, 0) == 0
    assert layers.valid(4, 0) == 4
    alphabets = urlstate.Bounds(options=("latin", "polish"))
    assert alphabets.valid("greek", "latin") == "latin"
    assert alphabets.valid("polish", "latin") == "polish"
    assert urlstate.Bounds().valid("3", 0) == 0  # a value of the wrong type is never passed to a widget
    assert urlstate.Bounds().valid(2, 1.0) == 2  # an int is a valid float


def test_url_param_reads_the_address_once_then_the_session():
    st.query_params["layer"] = "9"
    assert (
        urlstate.url_param("layer", 0, urlstate.Bounds(min_value=0, max_value=5)) == 5
    )  # clamped to the model's last layer
    st.query_params["layer"] = "1"
    assert (
        urlstate.url_param("layer", 0, urlstate.Bounds(min_value=0, max_value=5)) == 5
    )  # the session's value wins now
    assert st.session_state["layer"] == 5


def test_publish_writes_only_values_that_differ_from_their_default():
    urlstate.begin_run()
    urlstate.url_param("k", 30)
    urlstate.url_param("ascii", False)
    st.session_state["ascii"] = True
    urlstate.publish()
    assert st.query_params.to_dict() == {"ascii": "true"}


def test_widget_declares_and_draws_with_the_same_key_and_bounds():
    """`widget` passes key, options and bounds to the draw function it is given, and declares the key."""
    drawn = []

    def draw(label, *args, **kwargs):
        drawn.append((label, args, kwargs))
        return st.session_state[kwargs["key"]]

    urlstate.begin_run()
    st.query_params["head"] = "40"
    assert urlstate.widget(draw, "Head", key="head", default=0, min_value=0, max_value=11, step=1) == 11
    assert drawn[-1] == ("Head", (), {"key": "head", "min_value": 0, "max_value": 11, "step": 1})
    assert urlstate.widget(draw, "Plot", key="dims", default=3, options=(3, 2)) == 3
    assert drawn[-1] == ("Plot", ((3, 2),), {"key": "dims"})
    st.session_state["head"] = 4
    assert urlstate.current_params() == {"head": "4"}


def test_widget_accepting_new_options_keeps_a_typed_value():
    """The model selectbox takes any typed source: its presets are not enforced on the address."""
    st.query_params["model"] = "/my/model"

    def draw(label, options, **kwargs):
        return st.session_state[kwargs["key"]]

    value = urlstate.widget(draw, "Model", key="model", default="a", options=("a", "b"), accept_new_options=True)
    assert value == "/my/model"
