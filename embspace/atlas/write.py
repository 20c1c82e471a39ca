"""Write a unit's Parquet tables atomically: what the serial build and the Ray driver both call."""

from __future__ import annotations

import functools
from pathlib import Path

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.parquet as pq

from embspace.compute.ffn_scan import SCAN_VECTORS
from embspace.files import write_atomic

# Rows per Parquet row group in the neuron table: its min/max statistics let a one-neuron read skip the rest.
NEURONS_PER_ROW_GROUP = 32
# Rows per row group in the tokens and svd tables (sorted by token_id): a token's rows sit in one or two groups.
TOKEN_ROWS_PER_ROW_GROUP = 8192


def row_group_size(relative: str, table: pa.Table) -> int | None:
    """Rows per row group for the partition at `relative` (None: pyarrow's default)."""
    if relative.startswith("neurons"):
        return NEURONS_PER_ROW_GROUP * len(SCAN_VECTORS) * max(1, int(pa.compute.max(table["rank"]).as_py() or 1))
    if relative.startswith(("tokens", "svd")):
        return TOKEN_ROWS_PER_ROW_GROUP
    return None


def write_unit(directory: Path, tables: dict[str, pa.Table]) -> None:
    """Each table to a hidden temporary name, then renamed: a killed build never leaves a half file
    under the final name (readers skip names starting with '.'; `build.remove_stale_temporaries` sweeps them)."""
    for relative, table in tables.items():
        group = row_group_size(relative, table)
        write_atomic(
            directory / relative, functools.partial(pq.write_table, table, compression="zstd", row_group_size=group)
        )
