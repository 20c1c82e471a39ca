"""embspace.annotations.files: export/import round-trip, the import plan, all-or-nothing apply, bad files, the seed."""

import json
import sqlite3

import pytest
from annotation_fixtures import (
    MODEL,
    SHAPE,
    key,
    store_fixture,  # noqa: F401 (the `store` fixture)
    writable_store,
)

from embspace.annotations import (
    SCHEMA,
    AnnotationError,
    InvalidAnnotation,
    apply_import,
    export_document,
    open_store,
    plan_import,
    read_document,
    write_export,
)


def dump(store):
    with sqlite3.connect(store.path) as conn:
        return conn.execute("SELECT * FROM annotations ORDER BY kind, layer, idx").fetchall()


def document(*records, version=1, model=MODEL, revision=None):
    return {"schema": SCHEMA, "version": version, "model": model, "revision": revision, "annotations": list(records)}


def write(path, doc):
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return path


def test_export_then_import_into_a_fresh_store_round_trips(store, tmp_path):
    store.save(key(), "copies numbers", "**digits**\n\n- and numerals", "ada")
    store.save(key("neuron", 0, 15), "sports", "", None)
    store.save(key("qk", 1, 3), "ząb — zęby", "unicode ✓")
    out = tmp_path / "set.json"
    assert write_export(store, MODEL, "", out) == 3
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert (doc["schema"], doc["version"], doc["model"], doc["revision"]) == (SCHEMA, 1, MODEL, None)
    assert set(doc["annotations"][0]) == {"kind", "layer", "index", "label", "note", "author", "updated", "version"}
    fresh = writable_store(tmp_path / "b")
    plan = plan_import(fresh, read_document(out), MODEL, None, shape=SHAPE)
    assert plan.counts() == {"add": 3, "change": 0, "conflict": 0, "unchanged": 0}
    apply_import(fresh, plan)
    strip = [(a.kind, a.layer, a.index, a.label, a.note, a.author, a.updated) for a in fresh.list(MODEL, "")]
    assert strip == [(a.kind, a.layer, a.index, a.label, a.note, a.author, a.updated) for a in store.list(MODEL, "")]
    again = plan_import(fresh, read_document(out), MODEL, None, shape=SHAPE)
    assert again.counts()["unchanged"] == 3


def test_plan_sorts_add_change_conflict_unchanged(store, tmp_path):
    store.save(key("vo", 0, 0), "same")
    store.save(key("vo", 0, 1), "old text")  # version 1, file has version 1 -> change
    store.save(key("vo", 0, 2), "edited twice")
    store.save(key("vo", 0, 2), "edited again", base_version=1)  # version 2 > file's 1 -> conflict
    doc = document(
        {"kind": "vo", "layer": 0, "index": 0, "label": "same", "version": 1},
        {"kind": "vo", "layer": 0, "index": 1, "label": "new text", "version": 1},
        {"kind": "vo", "layer": 0, "index": 2, "label": "file text", "version": 1},
        {"kind": "qk", "layer": 1, "index": 3, "label": "brand new"},
    )
    plan = plan_import(store, read_document(write(tmp_path / "f.json", doc)), MODEL, "", shape=SHAPE)
    assert [c.action for c in plan.changes] == ["unchanged", "change", "conflict", "add"]
    assert plan.conflicts[0].stored.label == "edited again"
    assert plan.summary() == "1 to add, 1 to change, 1 in conflict, 1 unchanged"
    before = dump(store)
    with pytest.raises(AnnotationError, match="1 conflict .*nothing was imported"):
        apply_import(store, plan)
    assert dump(store) == before
    apply_import(store, plan, on_conflict="keep")
    assert [a.label for a in store.list(MODEL, "")] == ["same", "new text", "edited again", "brand new"]


def test_overwrite_takes_the_files_text(store, tmp_path):
    store.save(key(), "a")
    store.save(key(), "b", base_version=1)
    doc = document({"kind": "vo", "layer": 1, "index": 2, "label": "file", "version": 1})
    plan = plan_import(store, read_document(write(tmp_path / "f.json", doc)), MODEL, "")
    written = apply_import(store, plan, on_conflict="overwrite")
    assert [(a.label, a.version) for a in written] == [("file", 3)]


def test_a_store_changed_after_planning_imports_nothing(store, tmp_path):
    doc = document(
        {"kind": "vo", "layer": 0, "index": 0, "label": "x"}, {"kind": "vo", "layer": 1, "index": 2, "label": "y"}
    )
    plan = plan_import(store, read_document(write(tmp_path / "f.json", doc)), MODEL, "")
    store.save(key(), "meanwhile, in another tab")
    with pytest.raises(AnnotationError, match="changed after the import was planned.*nothing was imported"):
        apply_import(store, plan)
    assert [a.label for a in store.list(MODEL, "")] == ["meanwhile, in another tab"]  # the first row rolled back


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"schema": "embspace-annotations", ', "is not valid JSON \\(line 1"),
        ("[1, 2]", "not an embspace annotation file"),
        (document(version=2), "schema version 2 \\(written by a newer embspace"),
        (document(version="1"), "schema version '1' \\(not a version this embspace reads"),
        (document(model=""), '"model" must name the model'),
        ({**document(), "annotations": {}}, '"annotations" must be a list'),
        (document({"kind": "vo", "layer": 0, "index": 0}), r"annotations\[0\] lacks label"),
        (document({"kind": "attn", "layer": 0, "index": 0, "label": "x"}), r"annotations\[0\]: kind must be one of"),
        (document({"kind": "vo", "layer": 0, "index": 0, "label": "x" * 2**20}), "label is 1,048,576 characters"),
        (document({"kind": "vo", "layer": 0, "index": 0, "label": "x", "updated": "yesterday"}), "ISO 8601"),
        (document({"kind": "vo", "layer": 0, "index": 0, "label": "x", "version": -1}), "version must be"),
        (
            document(*[{"kind": "vo", "layer": 0, "index": 0, "label": "x"}] * 2),
            r"annotations\[1\] repeats annotations\[0\]",
        ),
    ],
)
def test_bad_files_are_refused_with_a_clear_message_and_change_nothing(store, tmp_path, content, message):
    store.save(key(), "kept")
    before = dump(store)
    with pytest.raises(InvalidAnnotation, match=message):
        plan = plan_import(store, read_document(write(tmp_path / "bad.json", content)), MODEL, "", shape=SHAPE)
        apply_import(store, plan)
    assert dump(store) == before


def test_binary_garbage_and_missing_files(tmp_path):
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidAnnotation, match="not UTF-8"):
        read_document(tmp_path / "bin.json")
    with pytest.raises(InvalidAnnotation, match="is not a file"):
        read_document(tmp_path / "missing.json")


def test_views_the_model_lacks_refuse_the_whole_import(store, tmp_path):
    doc = document(
        {"kind": "vo", "layer": 0, "index": 0, "label": "fine"}, {"kind": "vo", "layer": 9, "index": 0, "label": "x"}
    )
    with pytest.raises(InvalidAnnotation, match=r"annotations\[1\]: layer 9 is out of range.*Nothing was imported"):
        plan_import(store, read_document(write(tmp_path / "f.json", doc)), MODEL, "", shape=SHAPE)
    assert store.list(MODEL, "") == []


def test_another_models_file_needs_explicit_consent(store, tmp_path):
    doc = read_document(
        write(
            tmp_path / "f.json",
            document({"kind": "vo", "layer": 0, "index": 0, "label": "x"}, model="gpt2", revision="abc"),
        )
    )
    with pytest.raises(InvalidAnnotation, match="annotations of gpt2 \\(revision abc\\), not of the opened model"):
        plan_import(store, doc, MODEL, "")
    plan = plan_import(store, doc, MODEL, "", allow_other_model=True)
    apply_import(store, plan)
    assert store.get(key("vo", 0, 0)).label == "x"


def test_export_refuses_a_directory(store, tmp_path):
    with pytest.raises(AnnotationError, match="is a directory"):
        write_export(store, MODEL, "", tmp_path)


def test_open_store_follows_the_environment_and_loads_the_seed(tmp_path, monkeypatch):
    seed = write(
        tmp_path / "seed.json", document({"kind": "qk", "layer": 1, "index": 0, "label": "shipped", "version": 4})
    )
    monkeypatch.setenv("EMBSPACE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EMBSPACE_ANNOTATIONS", "readonly")
    monkeypatch.setenv("EMBSPACE_ANNOTATIONS_SEED", str(seed))
    store = open_store()
    assert store.read_only and store.warnings == ()
    assert [(a.label, a.origin, a.version) for a in store.list(MODEL, None)] == [("shipped", "seed", 0)]
    assert export_document(store, MODEL, None)["annotations"][0]["label"] == "shipped"
    monkeypatch.setenv("EMBSPACE_ANNOTATIONS_SEED", str(tmp_path / "missing.json"))
    broken = open_store()
    assert broken.list(MODEL, None) == [] and "were not loaded" in broken.warnings[0]


def test_export_replaces_the_file_whole_and_leaves_no_temporary(store, tmp_path):
    """The export bytes are the document as JSON (indent 1, UTF-8, non-ASCII kept), written by one rename."""
    store.save(key(), "ząb", "✓")
    out = tmp_path / "exports" / "set.json"
    out.parent.mkdir()
    out.write_text("an older export", encoding="utf-8")
    assert write_export(store, MODEL, "", out) == 1
    expected = json.dumps(export_document(store, MODEL, ""), ensure_ascii=False, indent=1) + "\n"
    assert out.read_bytes() == expected.encode("utf-8") and '"ząb"' in expected
    assert [p.name for p in out.parent.iterdir()] == ["set.json"]
