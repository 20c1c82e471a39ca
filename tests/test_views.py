"""embspace.views: the one registry of view kinds, their sides and their addresses."""

from urllib.parse import parse_qs, urlparse

import pytest

from embspace.compute.heads import HEAD_KINDS
from embspace.errors import EmbspaceError
from embspace.views import HEAD_VIEW_KINDS, SEARCH_KINDS, VIEW_KINDS, view_kind, view_side


def test_search_kinds_keep_their_contract_names_and_order():
    """`--json` output and atlases hold these strings: they must not change."""
    assert SEARCH_KINDS == ("neuron-K", "neuron-V", "vo-row", "vo-col", "qk-row", "qk-col")
    assert HEAD_VIEW_KINDS == ("vo", "qk")


@pytest.mark.parametrize(
    ("kind", "page", "unit"), [("neuron", "neurons", "neuron"), ("vo", "vo", "head"), ("qk", "qk", "head")]
)
def test_address_opens_the_kinds_page_on_the_unit(kind, page, unit):
    address = VIEW_KINDS[kind].address(3, 7, k="20", token="Ġking")
    parsed = urlparse(address)
    assert parsed.path == f"/{page}"
    assert parse_qs(parsed.query) == {"layer": ["3"], unit: ["7"], "k": ["20"], "token": ["Ġking"]}


def test_a_side_names_its_kind():
    assert view_kind("vo-row") is VIEW_KINDS["vo"]
    assert view_side("neuron-V").kind == "neuron"
    assert view_side("qk-col").side == "col"


def test_unknown_names_are_refused_with_the_valid_ones():
    with pytest.raises(EmbspaceError, match="neuron, vo, qk"):
        view_kind("ov")
    with pytest.raises(EmbspaceError, match="vo-row"):
        view_side("vo")


def test_head_kinds_are_the_registrys_head_views():
    """The maths of a head kind (embspace.compute.heads) names and titles itself from the registry."""
    assert tuple(HEAD_KINDS) == ("vo", "qk")
    assert [(head.name, head.title) for head in HEAD_KINDS.values()] == [("vo", "W_VO"), ("qk", "W_QK")]
    assert all(head.view is VIEW_KINDS[name] for name, head in HEAD_KINDS.items())
    assert HEAD_KINDS["vo"].header(3, 1).startswith("W_VO layer 3, head 1: rows = attended-to token")


def test_every_kind_has_its_sides_in_order():
    assert [side.side for side in VIEW_KINDS["neuron"].sides] == ["K", "V"]
    assert all([side.side for side in VIEW_KINDS[name].sides] == ["row", "col"] for name in HEAD_VIEW_KINDS)


def test_the_views_own_layer_and_unit_win_over_shared_settings():
    """Shared sidebar settings may still carry the previous view's layer: the address names this view's."""
    shared = {"layer": "0", "head": "1", "k": "10"}
    assert VIEW_KINDS["vo"].params(4, 2, **shared) == {"layer": 4, "head": 2, "k": "10"}
