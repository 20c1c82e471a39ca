"""The tour file: `{"schema": 1, "model", "revision"?, "title", "stops": [...]}`, its checks and its compact form.

A stop is `{"kind": "neuron"|"vo"|"qk", "layer", "index", "note" (markdown), "k"?, "filters"?}`; `filters`
holds the CLI's options by their long names without dashes (`{"only-ascii": true, "alphabet": "polish"}`).
Every error names the stop it is about ("stop 3: ...") so a bad file is fixed in one go.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from embspace.errors import EmbspaceError
from embspace.views import VIEW_KIND_NAMES, VIEW_KINDS

TOUR_SCHEMA = 1
MAX_STOPS = 200
MAX_NOTE_CHARS = 20_000
MAX_TITLE_CHARS = 200
MAX_K = 1000
# A stop's filters: the CLI option (tour file key) -> (the dashboard's address parameter, its type).
FILTER_OPTIONS: Mapping[str, tuple[str, type]] = MappingProxyType(
    {
        "only-ascii": ("ascii", bool),
        "only-alnum": ("alnum", bool),
        "alphabet": ("alphabet", str),
        "keep-special": ("special", bool),
        "exclude-same": ("same", bool),
        "exclude-fuzzy": ("fuzzy", bool),
        "negative": ("negative", bool),
        "embedding": ("embedding", str),
    }
)
_ADDRESS_PREFIX = "1."  # the compact form's own version, so a later encoding can be told apart


class TourError(EmbspaceError):
    """A tour file or address that cannot be used; the message names the stop (1-based) when one is at fault."""


@dataclass(frozen=True)
class TourStop:
    """One view of a tour, with the settings it is shown under and the presenter's note."""

    kind: str  # "neuron", "vo", "qk"
    layer: int
    index: int  # neuron or head
    note: str = ""  # markdown
    k: int | None = None  # rows per table; None: the viewer's own setting
    filters: Mapping[str, bool | str] = field(default_factory=dict)  # FILTER_OPTIONS keys

    def address_params(self) -> dict[str, str | int]:
        """The query parameters that open this stop's view in the dashboard (layer, unit, k and filters)."""
        extra: dict[str, str | int] = {} if self.k is None else {"k": self.k}
        for option, value in self.filters.items():
            param, kind = FILTER_OPTIONS[option]
            extra[param] = int(value) if kind is bool else value
        return VIEW_KINDS[self.kind].params(self.layer, self.index, **extra)

    def to_json(self) -> dict[str, Any]:
        """The stop as written in a tour file (optional keys left out when unset)."""
        item: dict[str, Any] = {"kind": self.kind, "layer": self.layer, "index": self.index, "note": self.note}
        if self.k is not None:
            item["k"] = self.k
        if self.filters:
            item["filters"] = dict(self.filters)
        return item


@dataclass(frozen=True)
class Tour:
    """A titled, ordered list of stops on one model."""

    title: str
    model: str  # as the sidebar and CLI take it: a preset, hub id or directory
    stops: tuple[TourStop, ...]
    revision: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The tour file's object (schema 1)."""
        doc: dict[str, Any] = {"schema": TOUR_SCHEMA, "model": self.model}
        if self.revision:
            doc["revision"] = self.revision
        return {**doc, "title": self.title, "stops": [stop.to_json() for stop in self.stops]}

    def check_model(self, n_layers: int, n_heads: int, d_ff: int) -> None:
        """TourError naming the first stop that the model (of these sizes) does not have."""
        for number, stop in enumerate(self.stops, start=1):
            units = d_ff if stop.kind == "neuron" else n_heads
            unit = VIEW_KINDS[stop.kind].unit
            if not 0 <= stop.layer < n_layers:
                raise TourError(f"stop {number}: layer {stop.layer} is not in the model (layers 0-{n_layers - 1}).")
            if not 0 <= stop.index < units:
                raise TourError(f"stop {number}: {unit} {stop.index} is not in the model ({unit}s 0-{units - 1}).")


def parse_tour(doc: Any) -> Tour:
    """The Tour a tour file's JSON object describes; TourError naming what is wrong (and which stop)."""
    if not isinstance(doc, dict):
        raise TourError("a tour file holds one JSON object with schema, model, title and stops.")
    if doc.get("schema") != TOUR_SCHEMA:
        raise TourError(f"tour schema must be {TOUR_SCHEMA}, not {doc.get('schema')!r}.")
    model, title, stops = doc.get("model"), doc.get("title", ""), doc.get("stops")
    if not isinstance(model, str) or not model.strip():
        raise TourError('the tour names no model ("model": a preset, hub id or directory).')
    if not isinstance(title, str) or len(title) > MAX_TITLE_CHARS:
        raise TourError(f"the tour's title must be text of at most {MAX_TITLE_CHARS} characters.")
    revision = doc.get("revision")
    if revision is not None and not isinstance(revision, str):
        raise TourError("the tour's revision must be text (a branch, tag or commit).")
    if not isinstance(stops, list) or len(stops) > MAX_STOPS:
        raise TourError(f"the tour's stops must be a list of at most {MAX_STOPS}.")
    parsed = tuple(parse_stop(item, number) for number, item in enumerate(stops, start=1))
    return Tour(title.strip(), model.strip(), parsed, revision or None)


def parse_stop(item: Any, number: int) -> TourStop:
    """One stop of a tour file; TourError "stop N: ..." when it cannot be shown."""
    if not isinstance(item, dict):
        raise TourError(f"stop {number}: must be an object with kind, layer, index and note.")
    kind = item.get("kind")
    if kind not in VIEW_KIND_NAMES:
        raise TourError(f"stop {number}: kind must be one of {', '.join(VIEW_KIND_NAMES)}, not {kind!r}.")
    layer, index, k = item.get("layer"), item.get("index"), item.get("k")
    for name, value in (("layer", layer), ("index", index)):
        if not _is_int(value) or value < 0:
            raise TourError(f"stop {number}: {name} must be a whole number >= 0, not {value!r}.")
    if k is not None and (not _is_int(k) or not 1 <= k <= MAX_K):
        raise TourError(f"stop {number}: k must be a whole number from 1 to {MAX_K}, not {k!r}.")
    note = item.get("note", "")
    if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
        raise TourError(f"stop {number}: note must be markdown text of at most {MAX_NOTE_CHARS:,} characters.")
    filters = item.get("filters")
    return TourStop(kind, layer, index, note, k, parse_filters({} if filters is None else filters, number))


def parse_filters(filters: Any, number: int) -> dict[str, bool | str]:
    """A stop's filters, checked against FILTER_OPTIONS (unticked switches left out)."""
    if not isinstance(filters, dict):
        raise TourError(f'stop {number}: filters must be an object of CLI options, e.g. {{"only-ascii": true}}.')
    parsed: dict[str, bool | str] = {}
    for option, value in filters.items():
        if option not in FILTER_OPTIONS:
            raise TourError(f"stop {number}: unknown filter {option!r}; known: {', '.join(FILTER_OPTIONS)}.")
        kind = FILTER_OPTIONS[option][1]
        if not isinstance(value, kind):
            raise TourError(f"stop {number}: filter {option!r} must be {kind.__name__}, not {value!r}.")
        if value is not False:
            parsed[option] = value
    return parsed


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_tour(path: str | Path) -> Tour:
    """The tour in a JSON file; TourError when it cannot be read or parsed."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TourError(f"cannot read the tour file {str(path)!r}: {exc}") from exc
    return parse_tour(doc)


def encode_address(tour: Tour) -> str:
    """The whole tour as one URL-safe word (minified JSON, zlib, base64url): a link opens it with no database."""
    raw = json.dumps(tour.to_json(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return _ADDRESS_PREFIX + base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode("ascii").rstrip("=")


def decode_address(text: str) -> Tour:
    """The tour `encode_address` wrote; TourError when the text is cut short or not a tour."""
    if not text.startswith(_ADDRESS_PREFIX):
        raise TourError("this tour link is not one embspace wrote (or is cut short): ask for the link again.")
    body = text[len(_ADDRESS_PREFIX) :]
    try:
        raw = zlib.decompressobj().decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), 2_000_000)
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, zlib.error) as exc:
        raise TourError("this tour link is damaged or cut short: ask for the link again.") from exc
    return parse_tour(doc)
