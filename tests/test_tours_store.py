"""The tour store: versions, compare-and-set conflicts naming who saved last, read-only mode, reopening."""

import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest

from embspace.tours import ReadOnlyTours, Tour, TourConflict, TourError, TourStop, TourStore
from embspace.tours.store import TOURS_DB_FILE

TOUR = Tour("Copying heads", "all-MiniLM-L6-v2", (TourStop("vo", 5, 7, "a *copying* head", 10),))


def test_save_get_list_and_versions(tmp_path):
    store = TourStore.open(tmp_path, read_only=False)
    assert store.list() == [] and store.get("demo") is None
    assert store.save("demo", TOUR, author="ada") == 1
    longer = Tour(TOUR.title, TOUR.model, (*TOUR.stops, TourStop("neuron", 1, 2)))
    assert store.save("demo", longer, author="bob", base_version=1) == 2
    assert store.get("demo") == (longer, 2)
    [record] = store.list()
    assert (record.name, record.title, record.version, record.author, record.stops) == ("demo", TOUR.title, 2, "bob", 2)
    assert store.save("demo", longer, author="bob", base_version=2) == 2  # unchanged: no new version


def test_stale_save_is_refused_and_names_who_saved_last(tmp_path):
    store = TourStore.open(tmp_path, read_only=False)
    store.save("demo", TOUR, author="ada")
    store.save("demo", Tour("Second", TOUR.model, TOUR.stops), author="bob", base_version=1)
    with pytest.raises(TourConflict, match="version 2 was saved by bob"):
        store.save("demo", Tour("Third", TOUR.model, TOUR.stops), author="cy", base_version=1)
    with pytest.raises(TourConflict):
        store.save("demo", TOUR)  # a new tour under a taken name
    assert store.get("demo")[0].title == "Second"


def test_delete_compares_versions(tmp_path):
    store = TourStore.open(tmp_path, read_only=False)
    store.save("demo", TOUR)
    with pytest.raises(TourConflict):
        store.delete("demo", base_version=3)
    store.delete("demo", base_version=1)
    assert store.get("demo") is None
    with pytest.raises(TourError, match="no tour is named"):
        store.delete("demo")


def test_read_only_store_reads_but_refuses_writes(tmp_path):
    TourStore.open(tmp_path, read_only=False).save("demo", TOUR)
    store = TourStore.open(tmp_path, read_only=True)
    assert store.read_only and store.get("demo") == (TOUR, 1)
    with pytest.raises(ReadOnlyTours, match="switched off"):
        store.save("other", TOUR)
    with pytest.raises(ReadOnlyTours):
        store.delete("demo")
    assert [r.name for r in store.list()] == ["demo"]


def test_read_only_follows_the_annotations_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBSPACE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EMBSPACE_ANNOTATIONS", "readonly")
    store = TourStore.open()
    assert store.read_only and store.path == tmp_path / TOURS_DB_FILE
    assert store.list() == []  # no file yet: nothing to read, nothing created
    assert not store.path.exists()


def test_reopened_store_keeps_tours_in_wal_mode(tmp_path):
    TourStore.open(tmp_path, read_only=False).save("demo", TOUR, author="ada")
    store = TourStore.open(tmp_path, read_only=False)
    assert store.get("demo") == (TOUR, 1)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_file_that_is_not_a_database_gives_a_read_only_store(tmp_path):
    (tmp_path / TOURS_DB_FILE).write_bytes(b"not a database at all" * 100)
    store = TourStore.open(tmp_path, read_only=False)
    assert store.read_only and "cannot be written" in store.read_only_reason


def test_bad_names_are_refused(tmp_path):
    store = TourStore.open(tmp_path, read_only=False)
    for name in ("", "  ", "two\nlines", "x" * 101):
        with pytest.raises(TourError, match="name"):
            store.save(name, TOUR)


def test_two_editors_saving_at_once_one_wins(tmp_path):
    """Threads saving on the same base version: exactly one new version, every other save a TourConflict."""
    store = TourStore.open(tmp_path, read_only=False)
    store.save("demo", TOUR)

    def edit(n: int) -> str:
        try:
            store.save("demo", Tour(f"edit {n}", TOUR.model, TOUR.stops), author=f"editor {n}", base_version=1)
            return "saved"
        except TourConflict:
            return "conflict"

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(edit, range(6)))
    assert sorted(outcomes) == ["conflict"] * 5 + ["saved"]
    tour, version = store.get("demo")
    assert version == 2 and tour.title.startswith("edit ")
