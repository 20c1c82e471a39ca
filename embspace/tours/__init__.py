"""Tours: a titled, ordered list of views (stops) with notes, that a presenter steps through.

tour (the tour file's schema, its checks, the compact address form) -> store (tours saved by name in SQLite,
versioned) -> stop_view (a stop's filters as VocabFilter / PairFilter, its table) -> static_page (one
self-contained HTML file per tour; imported by name, `embspace.tours.static_page`: it loads scikit-learn for
t-SNE, as `embspace.compute.tsne` does).
"""

from embspace.tours.stop_view import DEFAULT_STOP_K, StopFilters, StopTable, stop_filters, stop_table, stop_title
from embspace.tours.store import (
    TOURS_DB_FILE,
    Conflict,
    ReadOnlyTours,
    TourConflict,
    TourRecord,
    TourStore,
)
from embspace.tours.tour import (
    FILTER_OPTIONS,
    MAX_NOTE_CHARS,
    MAX_STOPS,
    TOUR_SCHEMA,
    Tour,
    TourError,
    TourStop,
    decode_address,
    encode_address,
    parse_tour,
    read_tour,
)

__all__ = [
    "FILTER_OPTIONS",
    "MAX_NOTE_CHARS",
    "MAX_STOPS",
    "TOUR_SCHEMA",
    "Tour",
    "TourError",
    "TourStop",
    "decode_address",
    "encode_address",
    "parse_tour",
    "read_tour",
    "TOURS_DB_FILE",
    "Conflict",
    "ReadOnlyTours",
    "TourConflict",
    "TourRecord",
    "TourStore",
    "DEFAULT_STOP_K",
    "StopFilters",
    "StopTable",
    "stop_filters",
    "stop_table",
    "stop_title",
]
