"""What you set is what you see (issue 22): the filter line, "most negative" titles, settings in every
download, a token= view landing on its word, adjusted address values named."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from app_harness import (
    app_fixture,  # noqa: F401  (fixture `app`)
    assert_clean,
    download_data,
    downloads_fixture,  # noqa: F401  (fixture `downloads`)
    figure,
    fresh_server_fixture,  # noqa: F401  (fixture `fresh_server`)
)
from streamlit.runtime.media_file_manager import MediaFileManager


@pytest.fixture(name="file_names")
def file_names_fixture(downloads, monkeypatch) -> dict[str, str]:
    """{media url or deferred id: file name} of every download button (on top of `downloads`)."""
    names: dict[str, str] = {}
    add, add_deferred = MediaFileManager.add, MediaFileManager.add_deferred

    def recording_add(self, path_or_data, mimetype, coordinates, file_name=None, *args, **kwargs):
        url = add(self, path_or_data, mimetype, coordinates, file_name, *args, **kwargs)
        names[url] = file_name
        return url

    def recording_add_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        file_id = add_deferred(self, data_callable, mimetype, coordinates, file_name, **kwargs)
        names[file_id] = file_name
        return file_id

    monkeypatch.setattr(MediaFileManager, "add", recording_add)
    monkeypatch.setattr(MediaFileManager, "add_deferred", recording_add_deferred)
    return names


def filter_lines(at) -> list[str]:
    return [c.value for c in at.main.caption if c.value.startswith("Filters: ")]


def test_the_filter_line_names_what_the_tables_obey(app):
    at = app("pages/vo.py", layer="1", head="2", k="7", pairs="4", alnum="true", alphabet="polish", negative="true")
    assert_clean(at)
    (line,) = filter_lines(at)
    assert line == "Filters: letters and digits (polish) · most negative · E: input · k = 7"
    at = app("pages/neurons.py", k="5", points="4", ascii="true", special="true")
    assert filter_lines(at)[0] == "Filters: ASCII only · special tokens kept · E: input · k = 5"
    at = app("pages/qk.py", k="5", pairs="4", fuzzy="true")
    assert filter_lines(at) == [
        "Filters: no token filter · identical and near-identical pairs excluded · E: input · k = 5"
    ]


def test_titles_say_most_negative_when_they_are(app):
    at = app("pages/vo.py", layer="1", head="2", k="6", pairs="5", negative="true")
    assert_clean(at)
    assert "6 most negative pairs" in [s.value for s in at.subheader]
    assert figure(at, "tsne")["layout"]["title"]["text"].endswith("the tokens of its 5 most negative pairs")
    at = app("pages/neurons.py", layer="2", neuron="3", k="4", points="4", negative="true")
    assert at.subheader[0].value == "Layer 2, neuron 3: 4 most negative tokens of each vector · E"
    columns = list(at.dataframe[0].value.columns)
    assert columns[1:5] == ["K·E lowest", "K·E lowest score", "V·E lowest", "V·E lowest score"]
    assert len(set(columns)) == len(columns)
    assert (at.dataframe[0].value["K·E lowest score"] < 0).all()  # the lowest of K·E, true to the heading


def test_downloads_carry_the_settings_in_name_and_content(app, downloads, file_names):
    at = app("pages/vo.py", layer="5", head="7", k="4", pairs="3", alnum="true", alphabet="polish", negative="true")
    assert_clean(at)
    button = next(b for b in at.get("download_button") if b.proto.id.endswith("-vo-layer5-head7-csv"))
    assert file_names[button.proto.url or button.proto.deferred_file_id] == "vo-layer5-head7-neg-alnum-polish-k4.csv"
    document = json.loads(download_data(at, downloads, "vo-layer5-head7-json"))
    settings = document["settings"]
    assert settings["model"] == "sentence-transformers/all-MiniLM-L6-v2" and settings["embedding"] == "input"
    assert (settings["view"], settings["layer"], settings["head"], settings["k"]) == ("vo", 5, 7, 4)
    assert settings["negative"] is True and settings["vocab_filter"]["alphabet"] == "polish"
    assert settings["pair_filter"] == {"exclude_same": False, "exclude_fuzzy": False}
    assert settings["embspace_version"] and len(document["rows"]) == 4
    csv = pd.read_csv(io.StringIO(download_data(at, downloads, "vo-layer5-head7-csv")))
    assert list(csv.columns[:3]) == ["model", "revision", "embedding"]
    assert (csv["negative"] == True).all() and (csv["vocab_filter.alphabet"] == "polish").all()  # noqa: E712
    assert csv["row_token"].tolist() == [row["row_token"] for row in document["rows"]]


def test_every_table_download_has_a_settings_object(app, downloads):
    at = app("pages/neurons.py", layer="1", neuron="5", k="3", points="4")
    assert json.loads(download_data(at, downloads, "neuron-layer1-5-json"))["settings"]["neuron"] == 5
    at = app("pages/overview.py")
    scores = json.loads(download_data(at, downloads, "copying-scores-json"))
    assert scores["settings"]["view"] == "overview" and scores["settings"]["vocab_filter"] is None
    assert len(scores["rows"]) == 72
    at = app("pages/search.py", q="king", limit="2")
    found = json.loads(download_data(at, downloads, "search-king-json"))
    assert found["settings"]["query"] == "king" and found["rows"]


def test_a_view_opened_for_a_word_shows_its_section_first(app):
    at = app("pages/vo.py", layer="2", head="3", k="4", pairs="4", token="king")
    assert_clean(at)
    headers = [h.value for h in at.main.subheader]
    assert headers.index("king (token 2332) in this head") < headers.index("Top 4 pairs")
    at = app("pages/vo.py", layer="2", head="3", k="4", pairs="4")
    assert [h.value for h in at.main.subheader][0] == "Top 4 pairs"


def test_an_adjusted_address_value_is_named_once(app):
    at = app("pages/vo.py", layer="9", k="5000", alphabet="xx", dims="7", pairs="3")
    assert_clean(at)
    toasts = sorted(t.value for t in at.toast)
    assert "layer=9 is out of range (0–5): showing layer 5" in toasts
    assert "k=5000 is out of range (1–500): showing k 500" in toasts
    assert any(t.startswith("alphabet=xx is not one of ") and t.endswith(": showing alphabet latin") for t in toasts)
    assert "dims=7 is not one of 3, 2: showing dims 3" in toasts
    at.run()
    assert not at.toast  # said once, not on every rerun
