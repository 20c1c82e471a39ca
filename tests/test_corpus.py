"""Reading .txt/.jsonl/.csv corpora and counting their token ids."""

from __future__ import annotations

import io
import json
from collections import Counter

import pandas as pd
import pytest
from tokenizer_factory import byte_level_tokenizer, metaspace_tokenizer, minilm_tokenizer, wordpiece_tokenizer

from embspace.vocab.corpus import (
    CorpusError,
    corpus_fields,
    corpus_token_ids,
    count_corpus_tokens,
    infer_format,
    iter_corpus_texts,
)

DOCUMENTS = [
    "Zażółć gęślą jaźń.",
    "Świętokrzyskie i łódź, kot i kota.",
    "the cat is playing with the dog",
    "NA",  # a word, not a missing value
]


def write_corpus(directory, fmt: str, documents=DOCUMENTS, field: str = "text"):
    """The same documents as a .txt, .jsonl (with an extra field) or .csv/.tsv file."""
    path = directory / f"corpus.{fmt}"
    if fmt == "txt":
        path.write_text("\n".join(documents) + "\n", encoding="utf-8")
    elif fmt == "jsonl":
        lines = [json.dumps({"id": n, field: doc}, ensure_ascii=False) for n, doc in enumerate(documents)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        frame = pd.DataFrame({"id": range(len(documents)), field: documents})
        frame.to_csv(path, index=False, sep="\t" if fmt == "tsv" else ",")
    return path


def reference_counts(tokenizer, texts) -> Counter:
    """One text at a time through the transformers call: a different path from the batch encoder."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(tokenizer(text, add_special_tokens=False)["input_ids"])
    return counts


@pytest.fixture(scope="module")
def byte_level():
    return byte_level_tokenizer()


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "csv", "tsv"])
def test_every_format_reads_the_same_documents(tmp_path, fmt):
    assert list(iter_corpus_texts(write_corpus(tmp_path, fmt))) == DOCUMENTS


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "csv"])
@pytest.mark.parametrize("make_tokenizer", [byte_level_tokenizer, wordpiece_tokenizer, metaspace_tokenizer])
def test_counts_match_a_text_by_text_reference(tmp_path, fmt, make_tokenizer):
    tokenizer = make_tokenizer()
    counts = count_corpus_tokens(tokenizer, iter_corpus_texts(write_corpus(tmp_path, fmt)), batch_size=3)
    assert counts == reference_counts(tokenizer, DOCUMENTS)
    never_in_text = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}  # [UNK] is produced by text
    assert counts and not set(counts) & never_in_text


def test_bytes_and_uploaded_files_read_like_paths(tmp_path):
    for fmt in ("txt", "jsonl", "csv"):
        data = write_corpus(tmp_path, fmt).read_bytes()
        assert list(iter_corpus_texts(data, fmt=fmt)) == DOCUMENTS
        upload = io.BytesIO(data)
        upload.name = f"upload.{fmt}"  # what Streamlit's UploadedFile offers
        assert list(iter_corpus_texts(upload)) == DOCUMENTS


def test_txt_whole_file_bom_and_crlf(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("\ufeffpierwsza linia\r\n\r\ndruga linia\r\n".encode())
    assert list(iter_corpus_texts(path)) == ["pierwsza linia", "druga linia"]
    assert list(iter_corpus_texts(path, per_line=False)) == ["pierwsza linia\n\ndruga linia\n"]


def test_jsonl_custom_field_and_null_values(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"tekst": "kot"}\n\n{"tekst": null}\n{"tekst": "pies"}\n', encoding="utf-8")
    assert list(iter_corpus_texts(path, field="tekst")) == ["kot", "pies"]
    assert corpus_fields(path) == ["tekst"]


def test_csv_custom_column_skips_empty_cells(tmp_path):
    path = tmp_path / "corpus.csv"
    path.write_text("zdanie,autor\nkot,A\n,B\nNA,C\n", encoding="utf-8")
    assert list(iter_corpus_texts(path, field="zdanie")) == ["kot", "NA"]


def test_corpus_fields_for_the_ui_picker(tmp_path):
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"id": 1, "text": "a"}\n{"id": 2, "title": "b", "text": "c"}\n', encoding="utf-8")
    assert corpus_fields(jsonl) == ["id", "text", "title"]
    assert corpus_fields(write_corpus(tmp_path, "csv")) == ["id", "text"]
    assert corpus_fields(write_corpus(tmp_path, "tsv")) == ["id", "text"]
    assert corpus_fields(write_corpus(tmp_path, "txt")) == []


# --- errors, raised at the call rather than on first read -----------------------------------------


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nie_ma.jsonl"
    with pytest.raises(FileNotFoundError, match="nie_ma.jsonl.*does not exist"):
        iter_corpus_texts(missing)


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("jsonl", r"no field 'text'; its fields: 'id', 'content'"),
        ("csv", r"no column 'text'; its columns: 'id', 'content'"),
    ],
)
def test_missing_field_lists_the_available_ones(tmp_path, fmt, message):
    """A JSONL file without the field, or a CSV file without the column, names the ones it has."""
    path = write_corpus(tmp_path, fmt, field="content")
    with pytest.raises(ValueError, match=message):
        iter_corpus_texts(path)


def test_jsonl_field_missing_on_a_later_line_names_the_line(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"text": "a"}\n{"body": "b"}\n', encoding="utf-8")
    texts = iter_corpus_texts(path)
    with pytest.raises(CorpusError, match="line 2 has no field 'text'; its fields: 'body'"):
        list(texts)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "a"}\nnot json\n', "line 2 is not valid JSON"),
        ('["a", "b"]\n', "line 1 is a list"),
        ('{"text": 5}\n', "holds int, not text"),
    ],
)
def test_bad_jsonl_lines(tmp_path, content, message):
    path = tmp_path / "corpus.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CorpusError, match=message):
        list(iter_corpus_texts(path))


def test_format_errors(tmp_path):
    odd = tmp_path / "corpus.parquet"
    odd.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"\.csv.*\.jsonl.*\.txt"):
        iter_corpus_texts(odd)
    with pytest.raises(ValueError, match="fmt="):
        iter_corpus_texts(b"kot\n")
    with pytest.raises(ValueError, match="Unknown corpus format 'xml'"):
        iter_corpus_texts(b"kot\n", fmt="xml")
    with pytest.raises(ValueError, match="no fields"):
        iter_corpus_texts(write_corpus(tmp_path, "txt"), field="text")
    with pytest.raises(CorpusError, match="not UTF-8"):
        list(iter_corpus_texts("zażółć".encode("cp1250"), fmt="txt"))
    assert infer_format("a/b/Korpus.JSONL") == "jsonl"


# --- counting --------------------------------------------------------------------------------------


def test_counting_ignores_the_tokenizers_padding_and_truncation():
    """MiniLM's tokenizer.json pads and truncates to 128; a corpus count must do neither."""
    tokenizer = minilm_tokenizer()
    long_text = " ".join(["playing with the dog"] * 100)  # 400+ tokens
    padding, truncation = tokenizer.backend_tokenizer.padding, tokenizer.backend_tokenizer.truncation
    assert padding is not None and truncation is not None
    counts = count_corpus_tokens(tokenizer, [long_text, "kot"])
    # the caller's tokenizer is left as it was
    assert (tokenizer.backend_tokenizer.padding, tokenizer.backend_tokenizer.truncation) == (padding, truncation)
    assert counts == reference_counts(tokenizer, [long_text, "kot"])
    assert sum(counts.values()) > 400
    assert tokenizer.pad_token_id not in counts and tokenizer.cls_token_id not in counts


def test_batch_size_does_not_change_counts(byte_level):
    texts = DOCUMENTS * 7
    assert count_corpus_tokens(byte_level, texts, batch_size=1) == count_corpus_tokens(byte_level, texts)


def test_progress_reports_texts_done(byte_level):
    calls = []
    count_corpus_tokens(byte_level, DOCUMENTS * 5, batch_size=8, progress=lambda *args: calls.append(args))
    assert calls == [(8, 20), (16, 20), (20, 20)]
    calls.clear()
    count_corpus_tokens(byte_level, (d for d in DOCUMENTS), batch_size=3, progress=lambda *a: calls.append(a))
    assert calls == [(3, None), (4, None)]


def test_counting_rejects_a_single_string(byte_level):
    with pytest.raises(TypeError, match="not one string"):
        count_corpus_tokens(byte_level, "zażółć gęślą jaźń")
    with pytest.raises(TypeError, match="must be strings"):
        count_corpus_tokens(byte_level, ["kot", 5])


def test_corpus_token_ids_top_n():
    counts = Counter({5: 10, 7: 10, 3: 2, 9: 1, 11: 0})
    assert corpus_token_ids(counts) == frozenset({5, 7, 3, 9})
    assert corpus_token_ids(counts, top_n=2) == frozenset({5, 7})
    assert corpus_token_ids(counts, top_n=3) == frozenset({5, 7, 3})
    assert corpus_token_ids(counts, top_n=100) == frozenset({5, 7, 3, 9})
    assert corpus_token_ids(Counter({8: 3, 4: 3, 2: 3}), top_n=2) == frozenset({2, 4})  # ties: lower id
    with pytest.raises(ValueError, match="at least 1"):
        corpus_token_ids(counts, top_n=0)


def test_corpus_ids_from_a_file_end_to_end(tmp_path, byte_level):
    counts = count_corpus_tokens(byte_level, iter_corpus_texts(write_corpus(tmp_path, "jsonl")))
    ids = corpus_token_ids(counts, top_n=5)
    assert len(ids) == 5
    assert ids == frozenset(i for i, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5])
