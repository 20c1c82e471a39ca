"""Uploaded corpora kept by content digest (embspace.vocab.store) and the tokenizer's normalizer report."""

from __future__ import annotations

import hashlib
import os

import pytest
from tokenizer_factory import byte_level_tokenizer, minilm_tokenizer

from embspace import settings
from embspace.errors import EmbspaceError
from embspace.settings import SettingReader
from embspace.vocab import CorpusError, CorpusStore, corpus_digest, is_digest_prefix, normalizer_report
from embspace.vocab.store import LOCK_FILE


def stored_files(directory) -> set[str]:
    return {p.name for p in directory.iterdir() if p.name != LOCK_FILE}


def test_a_corpus_is_kept_under_its_digest_and_found_by_a_prefix(tmp_path):
    store = CorpusStore(tmp_path, budget_bytes=10_000)
    data = b"kot\npies\n"
    digest = hashlib.sha256(data).hexdigest()
    kept = store.put(data, "moje notatki.txt")
    assert kept.digest == digest == corpus_digest(data) and kept.short == digest[:16]
    assert stored_files(tmp_path) == {f"{digest}.txt", f"{digest}.json"}
    found = CorpusStore(tmp_path, budget_bytes=10_000).find(digest[:16])  # another store object: state is on disk
    assert found.read_bytes() == data and found.name == "moje notatki.txt" and found.fmt == "txt"
    assert store.find("0" * 16) is None
    assert store.find(digest[:8]) is None  # too short to name a corpus
    assert not any(name.startswith(".") and name.endswith(".tmp") for name in os.listdir(tmp_path))  # atomic


def test_the_uploaded_name_is_never_a_path(tmp_path):
    store = CorpusStore(tmp_path / "corpora", budget_bytes=10_000)
    kept = store.put(b"a b c\n", "../../escape/evil.txt")
    assert kept.path.parent == tmp_path / "corpora"
    assert not (tmp_path / "escape").exists()
    assert store.find(kept.short).name == "../../escape/evil.txt"  # metadata only
    with pytest.raises(CorpusError, match="suffix"):
        store.put(b"x", "notes.exe")


def test_least_recently_used_corpora_are_evicted_to_fit_the_budget(tmp_path):
    store = CorpusStore(tmp_path, budget_bytes=250)
    first, second = store.put(b"1" * 100, "a.txt"), store.put(b"2" * 100, "b.txt")
    os.utime(first.path, ns=(1, 1))
    os.utime(second.path, ns=(2, 2))
    assert store.find(first.short) is not None  # used again: now the most recent
    third = store.put(b"3" * 100, "c.txt")  # 300 bytes > 250: the least recently used (second) goes
    assert store.find(second.short) is None
    assert store.find(first.short) is not None and store.find(third.short) is not None
    assert sum(store.usage().values()) <= 250
    assert f"{second.digest}.json" not in stored_files(tmp_path)  # its metadata went with it


def test_a_corpus_over_the_whole_budget_is_not_kept(tmp_path):
    store = CorpusStore(tmp_path, budget_bytes=10)
    assert store.put(b"x" * 11, "big.txt") is None
    assert store.usage() == {}


def test_eviction_deletes_only_corpus_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    store = CorpusStore(tmp_path, budget_bytes=0)
    store.put(b"", "empty.txt")
    store.evict()
    assert "notes.txt" in stored_files(tmp_path)


def test_the_corpus_budget_is_small_when_hosted_and_may_be_set(tmp_path):
    hosted = SettingReader.of({"EMBSPACE_HOSTED": "1"})
    assert settings.corpus_store_bytes(hosted) == 200_000_000
    assert settings.corpus_store_bytes(SettingReader.of({})) == 2_000_000_000
    assert settings.corpus_store_bytes(SettingReader.of({"EMBSPACE_CORPUS_BYTES": "50MB"})) == 50_000_000
    with pytest.raises(EmbspaceError, match="EMBSPACE_CORPUS_BYTES"):
        settings.corpus_store_bytes(SettingReader.of({"EMBSPACE_CORPUS_BYTES": "lots"}))
    reader = SettingReader.of({"EMBSPACE_DATA_DIR": str(tmp_path)})
    assert settings.corpus_store_dir(reader) == tmp_path / "corpora"


def test_digest_prefixes():
    assert is_digest_prefix("0123456789abcdef")
    assert not is_digest_prefix("0123456789ABCDEF") and not is_digest_prefix("../../etc/passwd0000")


def test_the_bundled_tokenizer_lowercases_and_strips_polish_accents():
    report = normalizer_report(minilm_tokenizer(), "polish")
    assert report.lowercases and report.strips_accents and report.normalizer == "BertNormalizer"
    assert dict(report.mapped) == {"ą": "a", "ć": "c", "ę": "e", "ń": "n", "ó": "o", "ś": "s", "ź": "z", "ż": "z"}
    assert report.kept == ("ł",)  # ł has no accent to strip: "żółw" is read as "zołw"
    assert report.summary() == "The tokenizer lowercases and strips accents."
    assert "ó→o" in report.letters_summary() and "ł stays" in report.letters_summary()


def test_a_byte_level_tokenizer_keeps_every_letter():
    report = normalizer_report(byte_level_tokenizer(), "polish")
    assert not report.lowercases and not report.strips_accents and report.normalizer == ""
    assert report.mapped == () and report.letters_summary() == ""
    assert report.summary() == "The tokenizer keeps case and accents."


def test_a_sequence_normalizer_is_read_part_by_part():
    from tokenizers import Tokenizer, models, normalizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents()])
    report = normalizer_report(tokenizer, "german")
    assert report.strips_accents and not report.lowercases
    assert report.normalizer == "Sequence(NFD, StripAccents)"
    assert ("Ä", "A") in report.mapped and ("ä", "a") in report.mapped  # case kept, accents gone
