"""embspace.views: the one registry of view kinds, their sides and their addresses."""

from urllib.parse import parse_qs, urlparse

import pytest

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
