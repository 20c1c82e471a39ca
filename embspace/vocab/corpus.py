"""Read a text corpus (.txt, .jsonl, .csv, .tsv) and count the token ids it uses.

The ids become `VocabFilter(allowed_ids=...)`: tables then show only tokens people actually write.
"""

from __future__ import annotations

import heapq
import io
import itertools
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sized
from pathlib import Path
from typing import Any

from embspace.errors import EmbspaceError

FORMATS = ("txt", "jsonl", "csv", "tsv")
DEFAULT_FIELD = "text"
_SUFFIX_FORMATS = {".txt": "txt", ".text": "txt", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv"}
_CSV_SEPARATORS = {"csv": ",", "tsv": "\t"}
_FIELD_SCAN_RECORDS = 1000  # JSONL records read to list the fields on offer

# A path, the file's bytes, or an uploaded file object (has .getvalue() and .name, as Streamlit's).
CorpusSource = str | os.PathLike | bytes | Any
ProgressFn = Callable[[int, int | None], None]  # (texts done, total texts or None)


class CorpusError(EmbspaceError, ValueError):
    """A corpus that cannot be read as asked (unknown format, missing field, bad line)."""


class CorpusNotFound(EmbspaceError, FileNotFoundError):
    """The corpus path does not exist."""


def infer_format(name: str | os.PathLike) -> str:
    """ "txt", "jsonl", "csv" or "tsv" from a file name's suffix."""
    suffix = Path(name).suffix.lower()
    if suffix not in _SUFFIX_FORMATS:
        known = ", ".join(sorted(_SUFFIX_FORMATS))
        raise CorpusError(
            f"Cannot tell the corpus format of {str(name)!r} from its suffix; use one of {known} or pass fmt=."
        )
    return _SUFFIX_FORMATS[suffix]


def iter_corpus_texts(
    source: CorpusSource, fmt: str | None = None, field: str | None = None, *, per_line: bool = True
) -> Iterator[str]:
    """The corpus' documents as strings, empty ones skipped.

    txt: one document per line (per_line=True) or the whole file as one document.
    jsonl: one JSON object per line, text in `field` (default "text").
    csv/tsv: text in column `field` (default "text").
    Format comes from the file suffix unless `fmt` is given (required for raw bytes).
    The file, format and field are checked before the first text is returned.
    """
    data, fmt = _open_source(source, fmt)
    if fmt == "txt":
        if field is not None:
            raise CorpusError(
                f"A .txt corpus has no fields (got field={field!r}); use a .jsonl or .csv file for fields."
            )
        return _txt_texts(data, per_line)
    field = field or DEFAULT_FIELD
    if fmt == "jsonl":
        return _jsonl_texts(data, field)
    return _csv_texts(data, fmt, field)


def corpus_fields(source: CorpusSource, fmt: str | None = None) -> list[str]:
    """The JSONL keys (of the first records) or CSV columns a text field can be picked from; [] for txt."""
    data, fmt = _open_source(source, fmt)
    if fmt == "txt":
        return []
    if fmt == "jsonl":
        fields: dict[str, None] = {}
        for _, record in itertools.islice(_jsonl_records(data), _FIELD_SCAN_RECORDS):
            fields.update(dict.fromkeys(record))
        return list(fields)
    return [str(c) for c in _csv_columns(data, fmt)]


def count_corpus_tokens(
    tokenizer: Any,
    texts: Iterable[str],
    *,
    batch_size: int = 256,
    progress: ProgressFn | None = None,
) -> Counter:
    """Counter token id -> occurrences over `texts`, without special tokens ([CLS], <s>, ...).

    Uses the fast tokenizer's batch encoding with padding and truncation switched off (some
    tokenizer.json files pad every text to 128 tokens, which would count [PAD]).
    `progress(done, total)` is called after each batch; total is None for a generator.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError("count_corpus_tokens needs an iterable of texts, not one string; wrap it in a list.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    encode = _batch_encoder(tokenizer)
    total = len(texts) if isinstance(texts, Sized) else None
    counts: Counter = Counter()
    done = 0
    iterator = iter(texts)
    while batch := list(itertools.islice(iterator, batch_size)):
        for text in batch:
            if not isinstance(text, str):
                raise TypeError(f"Corpus texts must be strings, got {type(text).__name__} at text {done + 1}.")
        counts.update(itertools.chain.from_iterable(encode(batch)))
        done += len(batch)
        if progress is not None:
            progress(done, total)
    return counts


def corpus_token_ids(counts: Counter, top_n: int | None = None) -> frozenset[int]:
    """Ids that occur in the corpus, or only the `top_n` most common (ties: lower id first)."""
    present = ((int(i), c) for i, c in counts.items() if c > 0)
    if top_n is None:
        return frozenset(i for i, _ in present)
    if top_n < 1:
        raise CorpusError(f"top_n must be at least 1, not {top_n}.")
    return frozenset(i for i, _ in heapq.nsmallest(top_n, present, key=lambda item: (-item[1], item[0])))


# --- sources ------------------------------------------------------------------------------------


def _open_source(source: CorpusSource, fmt: str | None) -> tuple[bytes | Path, str]:
    """(bytes or an existing path, format), checked."""
    name = None
    if hasattr(source, "getvalue") and not isinstance(source, (bytes, bytearray)):
        name = getattr(source, "name", None)
        source = source.getvalue()
    if isinstance(source, (bytes, bytearray, memoryview)):
        data: bytes | Path = bytes(source)
        if fmt is None:
            if name is None:
                raise CorpusError(f"Pass fmt= (one of {', '.join(FORMATS)}) to read a corpus given as bytes.")
            fmt = infer_format(name)
    else:
        data = Path(source).expanduser()
        if not data.is_file():
            what = "is a directory, not a file" if data.is_dir() else "does not exist"
            raise CorpusNotFound(f"Corpus file {str(data)!r} {what}; give the path of a .txt, .jsonl or .csv file.")
        if fmt is None:
            fmt = infer_format(data)
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise CorpusError(f"Unknown corpus format {fmt!r}; supported: {', '.join(FORMATS)}.")
    return data, fmt


def _lines(data: bytes | Path) -> Iterator[str]:
    try:
        if isinstance(data, bytes):
            yield from io.StringIO(data.decode("utf-8-sig"))
        else:
            with open(data, encoding="utf-8-sig") as handle:
                yield from handle
    except UnicodeDecodeError as err:
        where = f"{err.reason} at byte {err.start}"
        raise CorpusError(f"The corpus is not UTF-8 text ({where}); save it as UTF-8.") from err


def _txt_texts(data: bytes | Path, per_line: bool) -> Iterator[str]:
    if not per_line:
        text = "".join(_lines(data))
        return iter([text] if text.strip() else [])
    return (line.rstrip("\r\n") for line in _lines(data) if line.strip())


def _jsonl_records(data: bytes | Path) -> Iterator[tuple[int, dict]]:
    for number, line in enumerate(_lines(data), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise CorpusError(f"JSONL line {number} is not valid JSON ({err.msg}).") from err
        if not isinstance(record, dict):
            kind = type(record).__name__
            raise CorpusError(f'JSONL line {number} is a {kind}, expected an object like {{"text": ...}}.')
        yield number, record


def _jsonl_texts(data: bytes | Path, field: str) -> Iterator[str]:
    records = _jsonl_records(data)
    first = next(records, None)  # check the field now, not when the caller starts reading
    if first is None:
        return iter([])
    _jsonl_text(*first, field)
    texts = (_jsonl_text(number, record, field) for number, record in itertools.chain([first], records))
    return (text for text in texts if text)


def _jsonl_text(number: int, record: dict, field: str) -> str | None:
    if field not in record:
        available = ", ".join(repr(k) for k in record) or "none"
        raise CorpusError(f"JSONL line {number} has no field {field!r}; its fields: {available}. Pick one with field=.")
    value = record[field]
    if value is None or isinstance(value, str):
        return value
    raise CorpusError(f"JSONL line {number}: field {field!r} holds {type(value).__name__}, not text.")


def _csv_buffer(data: bytes | Path) -> Any:
    return io.BytesIO(data) if isinstance(data, bytes) else data


def _csv_columns(data: bytes | Path, fmt: str) -> list:
    import pandas as pd  # only for CSV/TSV corpora: 0.45 s off every start-up (the CLI, the export)

    try:
        return list(pd.read_csv(_csv_buffer(data), sep=_CSV_SEPARATORS[fmt], nrows=0, encoding="utf-8-sig").columns)
    except pd.errors.EmptyDataError:
        return []
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise CorpusError(f"Cannot read the corpus as {fmt.upper()}: {err}") from err


def _csv_texts(data: bytes | Path, fmt: str, field: str) -> Iterator[str]:
    columns = [str(c) for c in _csv_columns(data, fmt)]
    if field not in columns:
        available = ", ".join(repr(c) for c in columns) or "none"
        raise CorpusError(
            f"The {fmt.upper()} corpus has no column {field!r}; its columns: {available}. Pick one with field=."
        )
    return _csv_column(data, fmt, field)


def _csv_column(data: bytes | Path, fmt: str, field: str) -> Iterator[str]:
    import pandas as pd

    try:
        chunks = pd.read_csv(
            _csv_buffer(data),
            sep=_CSV_SEPARATORS[fmt],
            usecols=[field],
            dtype=str,
            keep_default_na=False,  # "NA" and "null" are words here, not missing values
            encoding="utf-8-sig",
            chunksize=10_000,
        )
        for chunk in chunks:
            yield from (text for text in chunk[field].tolist() if text)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise CorpusError(f"Cannot read the corpus as {fmt.upper()}: {err}") from err


# --- tokenising ---------------------------------------------------------------------------------


def _batch_encoder(tokenizer: Any) -> Callable[[list[str]], list[list[int]]]:
    """batch of texts -> their token ids, no special tokens, no padding, no truncation."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None and hasattr(tokenizer, "encode_batch"):
        backend = tokenizer  # already a tokenizers.Tokenizer
    if backend is None:  # a slow (pure Python) transformers tokenizer
        return lambda batch: tokenizer(batch, add_special_tokens=False, verbose=False)["input_ids"]
    # A private copy: switching padding/truncation off must not change the caller's tokenizer.
    private = type(backend).from_str(backend.to_str())
    private.no_padding()
    private.no_truncation()
    encode_batch = getattr(private, "encode_batch_fast", private.encode_batch)
    return lambda batch: [encoding.ids for encoding in encode_batch(batch, add_special_tokens=False)]
