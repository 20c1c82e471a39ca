"""Tours: a titled, ordered list of views (stops) with notes, that a presenter steps through.

tour (the tour file's schema, its checks, the compact address form) -> store (tours saved by name in SQLite,
versioned) -> static_page (one self-contained HTML file per tour).
"""

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
]
