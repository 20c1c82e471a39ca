"""The kinds of view embspace shows (an FFN neuron, a head's W_VO or W_QK), their sides and their addresses.

One place for these facts: the pages, search, annotations, the atlas, the CLI and every link read them here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlencode

from embspace.errors import EmbspaceError

LAYER_PARAM = "layer"  # the address parameter of a view's layer


@dataclass(frozen=True)
class ViewSide:
    """One side of a view that a token can stand on (a neuron's K or V, a head's row or column)."""

    kind: str  # the view kind's name: "neuron", "vo", "qk"
    side: str  # "K", "V", "row", "col"
    label: str  # a short phrase for CLI tables: "FFN neurons reading it (K)"
    meaning: str  # a sentence for the dashboard: "FFN neuron: the token triggers it (K·E)"

    @property
    def name(self) -> str:
        """The search kind, e.g. "vo-row" (a `--json` key and an atlas value: never change it)."""
        return f"{self.kind}-{self.side}"


@dataclass(frozen=True)
class ViewKind:
    """A kind of view: its name, title, the page that shows it and the address parameter naming its unit."""

    name: str  # "neuron", "vo", "qk"
    title: str  # "FFN neuron", "W_VO", "W_QK"
    page: str  # the page's url_path: "neurons", "vo", "qk"
    unit: str  # the address parameter naming the unit: "neuron" or "head"
    sides: tuple[ViewSide, ...]

    @property
    def is_head(self) -> bool:
        return self.unit == "head"

    def params(self, layer: int, index: int, /, **extra: str | int) -> dict[str, str | int]:
        """The query parameters that open this view on (layer, index), plus `extra` (sidebar settings, token)."""
        return {**extra, LAYER_PARAM: int(layer), self.unit: int(index)}

    def address(self, layer: int, index: int, /, **extra: str | int) -> str:
        """The view's address inside the app, e.g. "/vo?layer=5&head=7"."""
        return f"/{self.page}?" + urlencode(self.params(layer, index, **extra))


# The facts, one row each. A kind: (name, title, page url_path, unit: the address parameter naming a head or neuron).
_KIND_ROWS = (
    ("neuron", "FFN neuron", "neurons", "neuron"),
    ("vo", "W_VO", "vo", "head"),
    ("qk", "W_QK", "qk", "head"),
)
# A side: (kind, side, label for CLI tables, meaning for the dashboard), in each kind's order.
_SIDE_ROWS = (
    ("neuron", "K", "FFN neurons reading it (K)", "FFN neuron: the token triggers it (K·E)"),
    ("neuron", "V", "FFN neurons writing it (V)", "FFN neuron: it promotes the token (V·E)"),
    ("vo", "row", "W_VO heads, as attended-to token (row)", "W_VO row: the head reads (attends to) the token"),
    ("vo", "col", "W_VO heads, as output token (column)", "W_VO column: the head writes the token"),
    ("qk", "row", "W_QK heads, as query token (row)", "W_QK row: the token as the query"),
    ("qk", "col", "W_QK heads, as key token (column)", "W_QK column: the token as the key"),
)

VIEW_KINDS: Mapping[str, ViewKind] = MappingProxyType(
    {
        name: ViewKind(name, title, page, unit, tuple(ViewSide(*row) for row in _SIDE_ROWS if row[0] == name))
        for name, title, page, unit in _KIND_ROWS
    }
)
VIEW_KIND_NAMES: tuple[str, ...] = tuple(VIEW_KINDS)  # ("neuron", "vo", "qk")
HEAD_VIEW_KINDS: tuple[str, ...] = tuple(name for name, kind in VIEW_KINDS.items() if kind.is_head)  # ("vo", "qk")
VIEW_SIDES: Mapping[str, ViewSide] = MappingProxyType(
    {side.name: side for kind in VIEW_KINDS.values() for side in kind.sides}
)
SEARCH_KINDS: tuple[str, ...] = tuple(VIEW_SIDES)  # ("neuron-K", "neuron-V", "vo-row", "vo-col", "qk-row", "qk-col")


def view_kind(name: str) -> ViewKind:
    """The view kind named `name` ("vo") or owning the side `name` ("vo-row"); EmbspaceError naming the valid ones."""
    if name in VIEW_SIDES:
        return VIEW_KINDS[VIEW_SIDES[name].kind]
    if name in VIEW_KINDS:
        return VIEW_KINDS[name]
    raise EmbspaceError(
        f"view kind must be one of {', '.join(VIEW_KINDS)} (or a side: {', '.join(VIEW_SIDES)}), not {name!r}."
    )


def view_side(name: str) -> ViewSide:
    """The side named `name` ("vo-row"); EmbspaceError naming the valid ones."""
    if name not in VIEW_SIDES:
        raise EmbspaceError(f"side must be one of {', '.join(VIEW_SIDES)}, not {name!r}.")
    return VIEW_SIDES[name]
