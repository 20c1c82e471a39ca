"""Tours in the dashboard through AppTest: Add to tour, the /tours editor, saved tours, presenter mode, embed."""

from __future__ import annotations

import json

import pytest
from app_harness import app_fixture, assert_clean, download_data, downloads_fixture, fresh_server_fixture  # noqa: F401

from dashboard import tour_ui
from dashboard.state import ViewSettings
from dashboard.tour_editor import moved
from embspace import DEFAULT_MODEL, PairFilter, VocabFilter
from embspace.tours import Tour, TourStop, decode_address, encode_address
from embspace.tours.store import TourStore

TOURS = "pages/tours.py"


@pytest.fixture(name="data_dir", autouse=True)
def data_dir_fixture(monkeypatch, tmp_path):
    """The test's data directory: the one the `app` fixture gives every AppTest."""
    monkeypatch.setenv("EMBSPACE_DATA_DIR", str(tmp_path / "embspace-data"))
    monkeypatch.delenv("EMBSPACE_ANNOTATIONS", raising=False)
    return tmp_path / "embspace-data"


def two_stop_tour() -> Tour:
    return Tour(
        "Copying in MiniLM",
        DEFAULT_MODEL,
        (
            TourStop("vo", 5, 7, "A **copying** head.", k=4, filters={"only-ascii": True}),
            TourStop("neuron", 1, 7, "A neuron, *negated*.", k=3, filters={"negative": True}),
        ),
    )


def add_to_tour(at, note: str = ""):
    next(t for t in at.text_area if t.label == "Note for this stop (markdown)").set_value(note)
    next(b for b in at.button if b.label == "Add").click()
    return at.run()


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def note_boxes(at) -> list[str]:
    return [t.value for t in at.text_area if t.label.startswith("Note for stop")]


# --- pure parts -------------------------------------------------------------------------------------


def test_sidebar_settings_become_tour_filters_and_back():
    """ViewSettings -> tour filters -> the sidebar's keys: the same switches come back."""
    settings = ViewSettings(
        model=None,
        k=12,
        vocab_filter=VocabFilter(only_alnum=True, alphabet="polish", exclude_special=False),
        pair_filter=PairFilter(exclude_same=True),
        negative=True,
    )
    filters = tour_ui.tour_filters(settings, "input")
    assert filters == {
        "only-alnum": True,
        "alphabet": "polish",
        "keep-special": True,
        "exclude-same": True,
        "negative": True,
        "embedding": "input",
    }
    values = tour_ui.sidebar_values(Tour("t", DEFAULT_MODEL, ()), TourStop("vo", 1, 2, k=12, filters=filters))
    assert values["k"] == 12 and values["alnum"] is True and values["alphabet"] == "polish"
    assert values["special"] is True and values["same"] is True and values["negative"] is True
    assert values["ascii"] is False and values["fuzzy"] is False and values["embedding"] == "input"


def test_moving_a_stop_stays_within_the_tour():
    assert moved(("a", "b", "c"), 2, -1) == ("a", "c", "b")
    assert moved(("a", "b", "c"), 0, -1) == ("a", "b", "c")
    assert moved(("a", "b", "c"), 0, 1) == ("b", "a", "c")


# --- the draft --------------------------------------------------------------------------------------


def test_add_to_tour_on_head_and_neuron_views_then_edit_on_the_tours_page(app):
    at = app("pages/vo.py", layer="5", head="7", k="4", pairs="4", ascii="1")
    at = add_to_tour(at, "A **copying** head.")
    assert_clean(at)
    assert [t.value for t in at.toast] == ["Added: stop 1 of 'Untitled tour'"]
    at.switch_page("pages/neurons.py").run()
    at.number_input(key="layer").set_value(1)
    at.number_input(key="neuron").set_value(7).run()
    at = add_to_tour(at, "A neuron.")
    assert [t.value for t in at.toast] == ["Added: stop 2 of 'Untitled tour'"]
    draft = at.session_state["_tour_draft"]
    assert [(s.kind, s.layer, s.index, s.k) for s in draft.stops] == [("vo", 5, 7, 4), ("neuron", 1, 7, 4)]
    assert draft.stops[0].filters == {"only-ascii": True} and draft.stops[0].note == "A **copying** head."
    assert (draft.model, draft.revision, draft.title) == (DEFAULT_MODEL, None, "Untitled tour")

    at.switch_page(TOURS).run()
    assert_clean(at)
    assert note_boxes(at) == ["A **copying** head.", "A neuron."]
    at.button(key="_tour_up:0:1").click().run()  # the neuron first
    assert note_boxes(at) == ["A neuron.", "A **copying** head."]
    next(t for t in at.text_area if t.label == "Note for stop 2 (markdown)").set_value("Copies *names*.").run()
    next(t for t in at.text_input if t.label == "Title").set_value("Lab meeting").run()
    draft = at.session_state["_tour_draft"]
    assert draft.title == "Lab meeting"
    assert [(s.kind, s.note) for s in draft.stops] == [("neuron", "A neuron."), ("vo", "Copies *names*.")]
    remove = [b for b in at.button if b.label == "Remove"]
    remove[0].click().run()
    assert [s.kind for s in at.session_state["_tour_draft"].stops] == ["vo"]
    assert_clean(at)


def test_export_and_link_carry_the_draft(app, downloads):
    at = app(TOURS)
    at.session_state["_tour_draft"] = two_stop_tour()
    at.run()
    assert_clean(at)
    exported = json.loads(download_data(at, downloads, "tour_export"))
    assert exported == two_stop_tour().to_json()
    link = next(c.value for c in at.code if "/tours?tour=" in c.value and "iframe" not in c.value)
    assert decode_address(link.split("tour=", 1)[1]) == two_stop_tour()
    assert any("embed=true" in c.value and "<iframe" in c.value for c in at.code)


def test_import_a_tour_file_as_the_draft(app):
    at = app(TOURS)
    data = json.dumps(two_stop_tour().to_json()).encode()
    at.file_uploader[0].upload("lab.json", data, "application/json").run()
    assert_clean(at)
    assert at.session_state["_tour_draft"] == two_stop_tour()
    assert any("Imported lab.json: 2 stops" in s.value for s in at.success)
    assert note_boxes(at) == ["A **copying** head.", "A neuron, *negated*."]


def test_a_bad_tour_file_names_the_stop(app):
    at = app(TOURS)
    doc = two_stop_tour().to_json()
    doc["stops"][1]["kind"] = "svd"
    at.file_uploader[0].upload("bad.json", json.dumps(doc).encode(), "application/json").run()
    assert any("stop 2: kind must be one of" in e.value for e in at.error)
    assert "_tour_draft" not in at.session_state


# --- saved tours ------------------------------------------------------------------------------------


def test_save_open_and_delete_in_the_data_directory(app, data_dir):
    at = app(TOURS)
    at.session_state["_tour_draft"] = two_stop_tour()
    at.run()
    at.text_input(key="_tour_name").set_value("copying")
    at = button(at, "Save").click().run()
    assert_clean(at)
    assert any("Saved 'copying' (version 1)" in s.value for s in at.success)
    assert TourStore.open(data_dir).get("copying") == (two_stop_tour(), 1)

    other = app(TOURS)  # another session opens it
    other.selectbox(key="_tour_choice").set_value("copying")
    other = button(other, "Open").click().run()
    assert other.session_state["_tour_draft"] == two_stop_tour()
    next(t for t in other.text_input if t.label == "Title").set_value("Renamed").run()
    other = button(other, "Save").click().run()
    assert TourStore.open(data_dir).get("copying")[0].title == "Renamed"

    at = button(at, "Save").click().run()  # the first session's version 1 is stale now
    assert any("Not saved" in e.value and "changed since you opened it" in e.value for e in at.error)
    assert TourStore.open(data_dir).get("copying")[0].title == "Renamed"

    other = button(other, "Delete").click().run()
    assert_clean(other)
    assert TourStore.open(data_dir).get("copying") is None


def test_read_only_store_keeps_the_draft_export_and_link(app, data_dir, monkeypatch):
    TourStore.open(data_dir).save("kept", two_stop_tour())
    monkeypatch.setenv("EMBSPACE_ANNOTATIONS", "readonly")
    at = app(TOURS)
    at.session_state["_tour_draft"] = two_stop_tour()
    at.run()
    assert_clean(at)
    assert any("Saving tours is off here" in i.value for i in at.info)
    assert not [b for b in at.button if b.label in ("Save", "Delete")]
    assert [b.label for b in at.button if b.label == "Open"] == ["Open"]  # saved tours still open
    assert any("/tours?tour=" in c.value for c in at.code)
    assert [d for d in at.get("download_button") if d.proto.label == "Export JSON"]


# --- presenter mode ---------------------------------------------------------------------------------


def test_a_tour_link_opens_with_no_database_and_steps(app, monkeypatch, tmp_path):
    """A tour in the address needs no data directory; each stop's k and filters are what its tables obey."""
    missing = tmp_path / "no-such-dir" / "data"
    monkeypatch.setenv("EMBSPACE_DATA_DIR", str(missing))
    at = app(TOURS, tour=encode_address(two_stop_tour()))
    assert_clean(at)
    assert at.title[0].value == "Copying in MiniLM"
    assert at.header[0].value == "W_VO · layer 5, head 7"
    assert any(m.value == "1 / 2" for m in at.markdown)
    assert any(m.value == "A **copying** head." for m in at.markdown)
    assert len(at.dataframe[0].value) == 4  # the stop's k
    assert at.checkbox(key="ascii").value is True  # the stop's filter, in the sidebar the tables obey
    table = at.dataframe[0].value
    assert all(token.isascii() for column in table.columns[1:3] for token in table[column])
    assert not missing.exists()  # no database was opened or created

    at = button(at, "Next").click().run()
    assert_clean(at)
    assert at.header[0].value == "FFN neuron · layer 1, neuron 7"
    assert any(m.value == "2 / 2" for m in at.markdown)
    assert len(at.dataframe[0].value) == 3
    assert at.checkbox(key="negative").value is True and at.checkbox(key="ascii").value is False
    assert (at.dataframe[0].value["K·E lowest score"] < 0).all()
    assert at.query_params["stop"] == "2"
    assert button(at, "Next").disabled

    at = button(at, "Previous").click().run()
    assert at.header[0].value == "W_VO · layer 5, head 7"
    assert not missing.exists()


def test_a_link_opens_at_its_stop_and_present_starts_at_one(app):
    at = app(TOURS, tour=encode_address(two_stop_tour()), stop="2")
    assert_clean(at)
    assert at.header[0].value == "FFN neuron · layer 1, neuron 7"
    assert any("(/neurons?k=3&negative=1&layer=1&neuron=7)" in c.value for c in at.caption)  # the stop's own view
    button(at, "Edit the tour").click().run()
    assert at.title[0].value == "Tours"
    assert "tour" not in at.query_params
    assert at.session_state["_tour_draft"] == two_stop_tour()
    button(at, "Present").click().run()
    assert at.header[0].value == "W_VO · layer 5, head 7"
    assert decode_address(at.query_params["tour"]) == two_stop_tour()


def test_a_damaged_link_and_a_stop_the_model_lacks_say_so(app):
    at = app(TOURS, tour="1.not-a-tour")
    assert any("damaged or cut short" in e.value for e in at.error)
    beyond = Tour("t", DEFAULT_MODEL, (TourStop("vo", 1, 99),))
    at = app(TOURS, tour=encode_address(beyond))
    assert any("stop 1: head 99 is not in the model" in e.value for e in at.error)


# --- embed -------------------------------------------------------------------------------------------


def test_embed_hides_editing(app):
    """?embed=true: no Add to tour on a view, no Edit in presenter mode (st.context.is_embedded is how Streamlit
    tells; AppTest sets it through at.context)."""
    at = app("pages/vo.py", layer="1", head="2", k="3", pairs="3")
    assert [p for p in at.get("popover") if "Add to tour" in p.proto.popover.label]
    at.context["is_embedded"] = True
    at.run()
    assert_clean(at)
    assert not [p for p in at.get("popover") if "Add to tour" in p.proto.popover.label]
    at.query_params["tour"] = encode_address(two_stop_tour())
    at.switch_page(TOURS).run()
    assert_clean(at)
    assert at.header[0].value == "W_VO · layer 5, head 7"
    assert not [b for b in at.button if b.label == "Edit the tour"]
    assert [b.label for b in at.button if b.label in ("Previous", "Next")] == ["Previous", "Next"]
