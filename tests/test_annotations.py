"""embspace.annotations.store and .records: the SQLite store, compare-and-set saves under concurrent writers,
keys of views, and bad input."""

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from annotation_fixtures import (
    MODEL,
    SHAPE,
    key,
    store_fixture,  # noqa: F401 (the `store` fixture)
    writable_store,
)

from embspace.annotations import (
    DB_FILE,
    MAX_LABEL_CHARS,
    Annotation,
    AnnotationError,
    AnnotationKey,
    AnnotationStore,
    Conflict,
    InvalidAnnotation,
    ReadOnlyStore,
    StoreBusy,
    model_identity,
)
from embspace.annotations.database import SCHEMA_SQL
from embspace.model.embedding_space import ModelInfo, open_model
from embspace.settings import AnnotationSettings, default_data_dir
from embspace.views import VIEW_KIND_NAMES, VIEW_KINDS

REPO = Path(__file__).resolve().parents[1]


def rows_of(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT kind, layer, idx, label, note, version FROM annotations ORDER BY 1, 2, 3"
        ).fetchall()


def test_save_get_list_and_versions(store):
    first = store.save(key(), "copies numbers", "digits **and** numerals", "ada", None, shape=SHAPE)
    assert (first.version, first.author, first.origin) == (1, "ada", "store")
    assert first.updated.endswith("Z")
    second = store.save(key(), "copies digits", "", None, base_version=1, shape=SHAPE)
    assert second.version == 2
    store.save(key("neuron", 0, 15), "sports", shape=SHAPE)
    got = store.get(key(revision=None))
    assert (got.label, got.note, got.version) == ("copies digits", "", 2)
    assert [(a.kind, a.layer, a.index) for a in store.list(MODEL, "")] == [("neuron", 0, 15), ("vo", 1, 2)]
    assert store.list(MODEL, "v2") == [] and store.get(key("qk", 1, 2)) is None
    assert store.labels_for_heads(MODEL, None) == {("vo", 1, 2): "copies digits"}


def test_the_database_is_sqlite_in_wal_mode_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBSPACE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("EMBSPACE_ANNOTATIONS", raising=False)
    store = AnnotationStore.open()
    store.save(key(), "x")
    assert store.path == tmp_path / "data" / DB_FILE and not store.read_only
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_default_data_dir_is_per_user_and_outside_the_repository(monkeypatch, tmp_path):
    monkeypatch.delenv("EMBSPACE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert AnnotationSettings.from_env().data_dir == default_data_dir() == tmp_path / "xdg" / "embspace"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert REPO not in default_data_dir().parents


def test_unchanged_save_makes_no_new_version(store):
    store.save(key(), "a", "n")
    assert store.save(key(), "a", "n", base_version=1).version == 1


def test_stale_save_is_a_conflict_carrying_both_texts(store):
    store.save(key(), "first names", "v1 note")
    tab_a = store.get(key())
    tab_b = store.get(key())
    store.save(key(), "first names (women)", "a's note", base_version=tab_a.version)
    with pytest.raises(Conflict) as caught:
        store.save(key(), "surnames", "b's note", base_version=tab_b.version)
    err = caught.value
    assert (err.theirs.label, err.theirs.note, err.theirs.version) == ("first names (women)", "a's note", 2)
    assert (err.mine.label, err.mine.note, err.base_version) == ("surnames", "b's note", 1)
    assert "first names (women)" in str(err) and "surnames" in str(err)
    assert rows_of(store.path) == [("vo", 1, 2, "first names (women)", "a's note", 2)]


def test_creating_what_already_exists_is_a_conflict(store):
    store.save(key(), "mine first")
    with pytest.raises(Conflict, match="someone else created it"):
        store.save(key(), "me too", base_version=None)


def test_delete_is_compare_and_set(store):
    store.save(key(), "a")
    with pytest.raises(Conflict):
        store.delete(key(), base_version=5)
    store.delete(key(), base_version=1)
    assert store.get(key()) is None


def increment(store: AnnotationStore, times: int) -> int:
    """Add 1 to the counter label `times` times, retrying on conflict; returns how many conflicts it met."""
    conflicts = 0
    for _ in range(times):
        while True:
            current = store.get(key("qk", 0, 0))
            try:
                store.save(key("qk", 0, 0), str(int(current.label) + 1), base_version=current.version)
                break
            except Conflict:
                conflicts += 1
    return conflicts


def test_threads_lose_no_update(store):
    """4 threads x 25 compare-and-set increments end at exactly 100; the races show up as conflicts."""
    store.save(key("qk", 0, 0), "0")
    conflicts = []
    threads = [threading.Thread(target=lambda: conflicts.append(increment(store, 25))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = store.get(key("qk", 0, 0))
    assert (final.label, final.version) == ("100", 101)
    assert len(conflicts) == 4


WORKER = """
import sys
from embspace.annotations.store import AnnotationStore
sys.path.insert(0, sys.argv[3])
from test_annotations import increment
store = AnnotationStore.open(sys.argv[1], read_only=False, busy_timeout=30)
print(increment(store, int(sys.argv[2])))
"""


def test_two_processes_lose_no_update(store):
    """Two OS processes increment the same row 40 times each: 80 exactly, and each stale save was a conflict."""
    store.save(key("qk", 0, 0), "0")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-c", WORKER, str(store.path.parent), "40", str(Path(__file__).parent)]
    workers = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    final = store.get(key("qk", 0, 0))
    assert (final.label, final.version) == ("80", 81)
    conflicts = sum(int(out) for out, _ in outputs)
    assert final.version - 1 + conflicts >= 80  # every attempt either landed or was reported


@pytest.mark.parametrize(
    ("bad_key", "message"),
    [
        (key("vo", 2, 0), "layer 2 is out of range: this model has layers 0..1"),
        (key("qk", 0, 4), "head 4 is out of range"),
        (key("neuron", 1, 16), "neuron 16 is out of range: this model has neurons 0..15"),
        (key("mlp", 0, 0), "kind must be one of neuron, vo, qk"),
        (key("vo", -1, 0), "layer must be a whole number >= 0"),
    ],
)
def test_views_the_model_lacks_are_refused(store, bad_key, message):
    with pytest.raises(InvalidAnnotation, match=message):
        store.save(bad_key, "x", shape=SHAPE)
    assert rows_of(store.path) == []


@pytest.mark.parametrize(
    ("label", "note", "author", "message"),
    [
        ("x" * 2**20, "", None, "label is 1,048,576 characters long; at most 200"),
        ("x" * (MAX_LABEL_CHARS + 1), "", None, "at most 200"),
        ("ok", "n" * 20_001, None, "note is 20,001 characters"),
        ("two\nlines", "", None, "must be one line"),
        ("", "", None, "give a label or a note"),
        ("ok", "", "a" * 81, "author is 81 characters"),
        (42, "", None, "label must be text"),
    ],
)
def test_bad_text_is_refused_and_changes_nothing(store, label, note, author, message):
    store.save(key(), "kept", "kept note")
    with pytest.raises(InvalidAnnotation, match=message):
        store.save(key(), label, note, author, base_version=1)
    assert rows_of(store.path) == [("vo", 1, 2, "kept", "kept note", 1)]


def test_a_locked_database_gives_a_clear_busy_error_and_changes_nothing(tmp_path):
    store = AnnotationStore.open(tmp_path, read_only=False, busy_timeout=0.2)
    store.save(key(), "before")
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with pytest.raises(StoreBusy, match="busy .* nothing was saved, try again"):
            store.save(key(), "after", base_version=1)
        assert store.get(key()).label == "before"  # WAL: reading is not blocked
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.save(key(), "after", base_version=1).version == 2


def test_a_file_that_is_not_a_database_opens_read_only_with_a_message(tmp_path):
    (tmp_path / DB_FILE).write_bytes(b"this is not SQLite\n" * 100)
    store = writable_store(tmp_path)
    assert store.read_only and "not a database" in store.read_only_reason and not store.readable
    assert store.list(MODEL, "") == [] and store.get(key()) is None
    with pytest.raises(ReadOnlyStore, match="nothing was saved"):
        store.save(key(), "x")
    assert (tmp_path / DB_FILE).read_bytes() == b"this is not SQLite\n" * 100


def test_a_damaged_database_opens_read_only_and_reads_what_it_can(tmp_path):
    """One data page overwritten in the middle of a 200-row file: rows elsewhere still read, nothing is written."""
    store = writable_store(tmp_path)
    rows = [Annotation(MODEL, "", "neuron", 0, i, f"neuron {i}", "x" * 1000) for i in range(200)]
    store.write_all(rows, [0] * 200)
    data = bytearray(store.path.read_bytes())
    page = len(data) // 4096 // 2
    data[page * 4096 + 8 : (page + 1) * 4096] = b"\xa5" * 4088
    store.path.write_bytes(bytes(data))
    damaged = writable_store(tmp_path)
    assert damaged.read_only and "is damaged (" in damaged.read_only_reason and damaged.readable
    assert "\n" not in damaged.read_only_reason
    readable = 0
    for i in range(200):
        try:
            readable += damaged.get(key("neuron", 0, i)).label == f"neuron {i}"
        except AnnotationError as err:
            assert "malformed" in str(err)
    assert 100 <= readable < 200
    with pytest.raises(ReadOnlyStore):
        damaged.save(key(), "x")
    assert store.path.read_bytes() == bytes(data)


def test_an_uncreatable_data_dir_gives_a_read_only_store(tmp_path):
    (tmp_path / "file").write_text("a file, not a directory")
    store = AnnotationStore.open(tmp_path / "file" / "data", read_only=False)
    assert store.read_only and "cannot create the annotation directory" in store.read_only_reason
    assert store.list(MODEL, "") == []
    with pytest.raises(ReadOnlyStore, match="EMBSPACE_DATA_DIR"):
        store.save(key(), "x")


def test_a_newer_schema_opens_read_only_but_reads(tmp_path):
    store = writable_store(tmp_path)
    store.save(key(), "from today")
    with sqlite3.connect(store.path) as conn:
        conn.execute("PRAGMA user_version = 99")
    newer = writable_store(tmp_path)
    assert newer.read_only and "newer embspace" in newer.read_only_reason
    assert newer.get(key()).label == "from today"


def test_operator_read_only_mode_reads_but_never_writes(tmp_path, monkeypatch):
    writable_store(tmp_path).save(key(), "shipped")
    before = (tmp_path / DB_FILE).read_bytes()
    monkeypatch.setenv("EMBSPACE_ANNOTATIONS", "readonly")
    store = AnnotationStore.open(tmp_path)
    assert store.read_only and "EMBSPACE_ANNOTATIONS=readonly" in store.read_only_reason
    assert store.get(key()).label == "shipped"
    with pytest.raises(ReadOnlyStore):
        store.save(key(), "changed", base_version=1)
    assert (tmp_path / DB_FILE).read_bytes() == before
    monkeypatch.setenv("EMBSPACE_ANNOTATIONS", "sometimes")
    with pytest.raises(ValueError, match="EMBSPACE_ANNOTATIONS must be one of readwrite, readonly"):
        AnnotationStore.open(tmp_path)


def test_operator_read_only_mode_without_a_database_creates_nothing(tmp_path):
    store = AnnotationStore.open(tmp_path / "none", read_only=True)
    assert store.list(MODEL, "") == [] and not (tmp_path / "none").exists()


def test_a_read_only_uri_store_reads_and_refuses_writes(tmp_path):
    """What the store falls back to when the file cannot be written: `mode=ro` (and `immutable=1`) reads."""
    writable_store(tmp_path).save(key(), "kept")
    store = AnnotationStore.open_read_only(tmp_path / DB_FILE, "test reason", (), 1.0)
    assert store.read_uri.endswith("?mode=ro") and store.get(key()).label == "kept"
    with pytest.raises(ReadOnlyStore, match="test reason"):
        store.save(key(), "changed", base_version=1)
    with sqlite3.connect(store.read_uri, uri=True) as conn, pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM annotations")


def _chattr(flag: str, *paths: Path) -> bool:
    try:
        return subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def test_an_immutable_file_and_directory_open_read_only_and_still_read(tmp_path):
    """chattr +i stops root too: the store must notice it cannot write and keep reading."""
    data = tmp_path / "data"
    writable_store(data).save(key(), "kept")
    if not _chattr("+i", data / DB_FILE, data):
        pytest.skip("chattr +i is not available on this filesystem")
    try:
        store = writable_store(data)
        assert store.read_only and "cannot be written" in store.read_only_reason
        assert store.get(key()).label == "kept"
        with pytest.raises(ReadOnlyStore):
            store.save(key(), "changed", base_version=1)
    finally:
        _chattr("-i", data / DB_FILE, data)
    assert rows_of(data / DB_FILE) == [("vo", 1, 2, "kept", "", 1)]


def test_seed_rows_show_under_stored_rows(tmp_path):
    seed = [Annotation(MODEL, "", "vo", 1, 2, "seed label", version=7), Annotation(MODEL, "", "qk", 0, 1, "seed qk")]
    store = AnnotationStore.open(tmp_path, read_only=False, seed=seed)
    shown = store.get(key())
    assert (shown.label, shown.version, shown.origin) == ("seed label", 0, "seed")
    store.save(key(), "my label", base_version=shown.version)  # version 0: not stored yet
    assert [(a.label, a.origin) for a in store.list(MODEL, "")] == [("my label", "store"), ("seed qk", "seed")]


def test_model_identity_keys_local_directories_by_resolved_path(tmp_path):
    local = ModelInfo("m", None, str(tmp_path / "m"), "local", SHAPE, "input", True, 0)
    hub = ModelInfo("gpt2", "main", "/cache/x", "hub", SHAPE, "input", True, 0)
    assert model_identity(local) == (str((tmp_path / "m").resolve()), "")
    assert model_identity(hub) == ("gpt2", "main")


def test_a_key_for_a_view_of_an_opened_model_is_keyed_by_its_identity(tiny_model, store):
    """The one way the dashboard and the CLI build keys: the model's identity plus the view."""
    model = open_model(str(tiny_model("gpt2")))
    made = AnnotationKey.for_view(model, "qk", 1, 0)
    assert made == AnnotationKey(str(tiny_model("gpt2").resolve()), "", "qk", 1, 0)
    assert (made.model_id, made.revision) == model_identity(model.info)
    store.save(made, "by key", shape=model.shape)
    assert store.get(AnnotationKey.for_view(model, "qk", 1, 0)).label == "by key"
    assert store.get(AnnotationKey.for_view(model, "vo", 1, 0)) is None


def test_get_save_and_delete_take_the_same_key(store):
    saved = store.save(key("neuron", 0, 3), "n")
    assert saved.key == key("neuron", 0, 3) and store.get(saved.key) == saved
    store.delete(saved.key, base_version=saved.version)
    assert store.get(key("neuron", 0, 3)) is None


def test_an_annotation_for_a_key_carries_the_keys_view():
    made = Annotation.for_key(key("qk", 0, 3, revision="v1"), "label", "note", "ada", "2026-01-01T00:00:00Z", 4)
    assert made.key == key("qk", 0, 3, revision="v1")
    assert (made.label, made.note, made.author, made.updated, made.version) == (
        "label",
        "note",
        "ada",
        "2026-01-01T00:00:00Z",
        4,
    )


def test_the_kinds_are_the_view_registrys():
    """Every view kind of embspace.views can be annotated and the database accepts exactly those."""
    described = {kind: key(kind, 1, 3).describe() for kind in VIEW_KIND_NAMES}
    assert described == {
        "neuron": "neuron 3 of layer 1",
        "vo": "W_VO head 3 of layer 1",
        "qk": "W_QK head 3 of layer 1",
    }
    assert all(key(kind).view is VIEW_KINDS[kind] for kind in VIEW_KIND_NAMES)
    assert "CHECK (kind IN ('neuron', 'vo', 'qk'))" in SCHEMA_SQL


def test_the_database_refuses_a_kind_the_registry_lacks(store):
    with sqlite3.connect(store.path) as conn, pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        conn.execute("INSERT INTO annotations VALUES ('m', '', 'mlp', 0, 0, 'x', '', NULL, '2026-01-01T00:00:00Z', 1)")


def test_labels_for_heads_leave_neurons_out(store):
    store.save(key("neuron", 1, 2), "a neuron")
    store.save(key("qk", 0, 1), "a qk head")
    store.save(key("vo", 0, 1), "", "note only")
    assert store.labels_for_heads(MODEL, "") == {("qk", 0, 1): "a qk head"}
