"""Annotations in the dashboard through AppTest: the editor, conflicts, read-only mode, the list page, import."""

from __future__ import annotations

import json

import pytest
from app_harness import app_fixture, assert_clean, fresh_server_fixture, traces  # noqa: F401
from app_links import click_row

from embspace.annotations import AnnotationKey, AnnotationStore, apply_import, parse_document, plan_import
from embspace.model.embedding_space import open_model
from embspace.model.sources import DEFAULT_MODEL


@pytest.fixture(name="data_dir", autouse=True)
def data_dir_fixture(monkeypatch, tmp_path):
    """The test's data directory: the one the `app` fixture gives every AppTest."""
    monkeypatch.setenv("EMBSPACE_DATA_DIR", str(tmp_path / "embspace-data"))
    monkeypatch.delenv("EMBSPACE_ANNOTATIONS", raising=False)
    return tmp_path / "embspace-data"


def save_in_editor(at, label: str, note: str = ""):
    label_input = next(t for t in at.text_input if t.label == "Label")
    label_input.set_value(label)
    next(t for t in at.text_area if t.label == "Note (markdown)").set_value(note)
    next(b for b in at.button if b.label == "Save label").click()
    return at.run()


def test_a_saved_label_shows_on_the_view_and_the_list_page(app, data_dir):
    at = app("pages/vo.py", layer="2", head="5", k="3", pairs="3")
    at = save_in_editor(at, "copies names", "Mostly **first names**.")
    assert_clean(at)
    assert any(m.value == ":material/label: **copies names**" for m in at.markdown)
    stored = AnnotationStore.open(data_dir).get(AnnotationKey(DEFAULT_MODEL, "", "vo", 2, 5))
    assert stored.label == "copies names" and stored.version == 1
    listing = app("pages/annotations.py")
    assert_clean(listing)
    table = listing.dataframe[0].value
    assert list(table["label"]) == ["copies names"]
    assert list(table.columns)[0] == "open"  # first, in view without scrolling
    assert "note" not in table  # notes are rendered below the table, as markdown
    assert any(m.value == "Mostly **first names**." for m in listing.markdown)  # rendered by st.markdown
    click_row(listing, "annotations_table", 0)  # one click, the same tab and session
    assert_clean(listing)
    assert listing.title[0].value.startswith("W_VO")
    assert listing.number_input(key="layer").value == 2 and listing.number_input(key="head").value == 5


def test_a_stale_save_shows_both_texts_and_saves_nothing(app, data_dir):
    at = app("pages/neurons.py", layer="1", neuron="7", k="3", points="4")
    at = save_in_editor(at, "mine v1")
    # Another tab saves version 2 meanwhile.
    other = AnnotationStore.open(data_dir)
    key = AnnotationKey(DEFAULT_MODEL, "", "neuron", 1, 7)
    other.save(key, "theirs v2", "", base_version=1)
    at = save_in_editor(at, "mine v2")
    assert not at.exception
    assert any("Someone saved this view" in w.value for w in at.warning)
    texts = " ".join(c.value for c in at.code)
    assert "theirs v2" in texts and "mine v2" in texts
    assert other.get(key).label == "theirs v2"
    next(b for b in at.button if b.label == "Save mine over theirs").click()
    at = at.run()
    assert other.get(key).label == "mine v2"


def test_read_only_mode_shows_labels_without_a_form(app, data_dir, monkeypatch):
    AnnotationStore.open(data_dir).save(AnnotationKey(DEFAULT_MODEL, "", "qk", 0, 1), "positional", "")
    monkeypatch.setenv("EMBSPACE_ANNOTATIONS", "readonly")
    at = app("pages/qk.py", layer="0", head="1", k="3", pairs="3")
    assert_clean(at)
    assert any("positional" in m.value for m in at.markdown)
    assert not [b for b in at.button if b.label == "Save label"]
    assert any("read-only" in i.value for i in at.info)


def test_a_labelled_view_reads_like_a_slide_with_the_form_behind_edit(app, data_dir):
    """Label and rendered note on the page; label, note and Save inside the "Edit label" popover only."""
    AnnotationStore.open(data_dir).save(AnnotationKey(DEFAULT_MODEL, "", "vo", 1, 2), "name mover", "Moves **names**.")
    at = app("pages/vo.py", layer="1", head="2", k="3", pairs="3")
    assert_clean(at)
    main_text = [m.value for m in at.main.markdown]
    assert ":material/label: **name mover**" in main_text and "Moves **names**." in main_text
    popover, _add_to_tour = at.get("popover")  # the label editor, then "Add to tour"
    assert popover.proto.popover.label == "Edit label"
    inside = {t.label for t in popover.text_input} | {b.label for b in popover.button}
    assert {"Label", "Save label"} <= inside
    outside = [t for t in at.main.text_input if t.label == "Label"]
    assert len(outside) == 1  # the one in the popover: no open form pushes the table down
    assert not at.main.expander or all("name mover" not in e.label for e in at.main.expander)


def test_the_author_field_sits_beside_save_until_a_name_is_set(app, data_dir):
    """With no display name, "Your name" is in the form; a name typed there is saved and reused."""
    at = app("pages/vo.py", layer="3", head="1", k="3", pairs="3")
    popover, _add_to_tour = at.get("popover")  # the label editor, then "Add to tour"
    assert popover.proto.popover.label == "Label this view"
    next(t for t in popover.text_input if t.label == "Your name (optional)").set_value("Ola")
    at = save_in_editor(at, "first label")
    assert_clean(at)
    stored = AnnotationStore.open(data_dir).get(AnnotationKey(DEFAULT_MODEL, "", "vo", 3, 1))
    assert stored.author == "Ola"
    assert at.session_state["display_name"] == "Ola"
    popover, _add_to_tour = at.get("popover")  # the label editor, then "Add to tour"
    assert not [t for t in popover.text_input if t.label == "Your name (optional)"]  # asked once
    at = save_in_editor(at, "second label")
    assert AnnotationStore.open(data_dir).get(AnnotationKey(DEFAULT_MODEL, "", "vo", 3, 1)).author == "Ola"


def test_overview_heatmap_shows_labels_on_hover(app, data_dir):
    AnnotationStore.open(data_dir).save(AnnotationKey(DEFAULT_MODEL, "", "vo", 3, 4), "copy head", "")
    at = app("pages/overview.py")
    assert_clean(at)
    heads, marks = traces(at, "copying_heatmap")[1:3]
    labels = {(int(layer), int(head)): label for layer, head, _, label in heads["customdata"]}
    assert labels[(3, 4)] == "copy head" and labels[(0, 0)] == ""
    assert list(marks["x"]) == pytest.approx([4.33]) and marks["text"] == ["✎"]


def test_list_page_offers_export_and_import_and_lists_imported_annotations(app, data_dir):
    """The import itself (plan, then all-or-nothing apply) is the engine's; the page lists what it added."""
    document = {
        "schema": "embspace-annotations",
        "version": 1,
        "model": DEFAULT_MODEL,
        "revision": "",
        "annotations": [{"kind": "vo", "layer": 1, "index": 2, "label": "imported", "note": "", "version": 1}],
    }
    at = app("pages/annotations.py")
    assert_clean(at)
    assert at.get("file_uploader") and any(b.label == "JSON" for b in at.get("download_button"))
    store = AnnotationStore.open(data_dir)
    shape = open_model(DEFAULT_MODEL).shape
    plan = plan_import(store, parse_document(json.dumps(document)), DEFAULT_MODEL, "", shape=shape)
    assert plan.counts()["add"] == 1
    apply_import(store, plan)
    listing = app("pages/annotations.py", find="import")
    assert list(listing.dataframe[0].value["label"]) == ["imported"]
    assert not app("pages/annotations.py", find="nothing like it").dataframe


def test_search_results_show_the_labels_of_their_views(app, data_dir):
    at = app("pages/search.py", q="king", limit="3")
    first = at.dataframe[0].value.iloc[0]
    kind = {"FFN": "neuron", "W_VO": "vo", "W_QK": "qk"}[first["where"].split()[0]]
    key = AnnotationKey(DEFAULT_MODEL, "", kind, int(first["layer"]), int(first["neuron / head"]))
    AnnotationStore.open(data_dir).save(key, "royalty", "")
    again = app("pages/search.py", q="king", limit="3")
    assert_clean(again)
    shown = again.dataframe[0].value
    assert shown["label"].iloc[0] == "royalty" and set(shown["label"].iloc[1:]) <= {"", "royalty"}
