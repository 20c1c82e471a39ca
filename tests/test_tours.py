"""The tour file (schema 1): JSON <-> Tour, the compact address, errors that name their stop, check_model;
the stops' filters in the engine's terms; the notes' safe markdown."""

import json

import pytest

from embspace.tours import FILTER_OPTIONS, Tour, TourError, TourStop, decode_address, encode_address, parse_tour
from embspace.tours.markdown_lite import render_markdown
from embspace.tours.stop_view import stop_filters, stop_title
from embspace.tours.tour import read_tour

DOC = {
    "schema": 1,
    "model": "sentence-transformers/all-MiniLM-L6-v2",
    "revision": "main",
    "title": "Copying heads",
    "stops": [
        {"kind": "vo", "layer": 5, "index": 7, "note": "a **copying** head", "k": 12, "filters": {"only-ascii": True}},
        {"kind": "neuron", "layer": 3, "index": 17, "note": "", "filters": {"alphabet": "polish", "negative": True}},
        {"kind": "qk", "layer": 0, "index": 1, "note": "zażółć gęślą jaźń"},
    ],
}


def test_json_round_trip():
    tour = parse_tour(DOC)
    assert tour.to_json() == DOC
    assert parse_tour(json.loads(json.dumps(tour.to_json()))) == tour
    assert tour.stops[0] == TourStop("vo", 5, 7, "a **copying** head", 12, {"only-ascii": True})


def test_read_tour_file(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(DOC), encoding="utf-8")
    assert read_tour(path) == parse_tour(DOC)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(TourError, match="cannot read the tour file"):
        read_tour(path)


def test_address_round_trip_and_damage():
    tour = parse_tour(DOC)
    word = encode_address(tour)
    assert decode_address(word) == tour
    assert all(c.isalnum() or c in "-_." for c in word)
    for bad in (word[:-10], "2." + word[2:], "1.!!!!"):
        with pytest.raises(TourError):
            decode_address(bad)


@pytest.mark.parametrize(
    ("stop", "message"),
    [
        ({"kind": "mlp", "layer": 0, "index": 0}, "stop 2: kind"),
        ({"kind": "vo", "layer": -1, "index": 0}, "stop 2: layer"),
        ({"kind": "vo", "layer": 0, "index": True}, "stop 2: index"),
        ({"kind": "vo", "layer": 0, "index": 0, "k": 0}, "stop 2: k"),
        ({"kind": "vo", "layer": 0, "index": 0, "note": 3}, "stop 2: note"),
        ({"kind": "vo", "layer": 0, "index": 0, "filters": {"only-ascii": "yes"}}, "stop 2: filter 'only-ascii'"),
        ({"kind": "vo", "layer": 0, "index": 0, "filters": {"ascii": True}}, "stop 2: unknown filter"),
        ({"kind": "vo", "layer": 0, "index": 0, "filters": []}, "stop 2: filters"),
        ("vo 0 0", "stop 2: must be an object"),
    ],
)
def test_every_stop_error_names_its_stop(stop, message):
    doc = {**DOC, "stops": [DOC["stops"][0], stop]}
    with pytest.raises(TourError, match=message):
        parse_tour(doc)


@pytest.mark.parametrize(
    ("change", "message"),
    [({"schema": 2}, "schema must be 1"), ({"model": ""}, "names no model"), ({"stops": {}}, "stops must be a list")],
)
def test_tour_level_errors(change, message):
    with pytest.raises(TourError, match=message):
        parse_tour({**DOC, **change})


def test_check_model_names_the_stop_the_model_lacks():
    tour = parse_tour(DOC)
    tour.check_model(n_layers=6, n_heads=12, d_ff=1536)
    with pytest.raises(TourError, match="stop 1: head 7 is not in the model"):
        tour.check_model(n_layers=6, n_heads=4, d_ff=1536)
    with pytest.raises(TourError, match="stop 1: layer 5 is not in the model"):
        tour.check_model(n_layers=5, n_heads=12, d_ff=1536)
    with pytest.raises(TourError, match="stop 2: neuron 17"):
        tour.check_model(n_layers=6, n_heads=12, d_ff=10)


def test_stop_filters_follow_the_cli_defaults_and_options():
    plain = stop_filters(TourStop("vo", 0, 0))
    assert plain.vocab_filter.exclude_special and not plain.vocab_filter.only_ascii
    assert not plain.pair_filter.exclude_same and not plain.negative and plain.embedding == "auto"
    every = {
        option: (True if kind is bool else {"alphabet": "polish", "embedding": "input"}[option])
        for option, (_, kind) in FILTER_OPTIONS.items()
    }
    chosen = stop_filters(TourStop("vo", 0, 0, filters=every))
    vocab, pairs = chosen.vocab_filter, chosen.pair_filter
    assert (vocab.only_ascii, vocab.only_alnum, vocab.alphabet, vocab.exclude_special) == (True, True, "polish", False)
    assert pairs.exclude_same and pairs.exclude_fuzzy and chosen.negative and chosen.embedding == "input"


def test_stop_title():
    assert stop_title(TourStop("vo", 5, 7)) == "L5 H7 · W_VO"
    assert stop_title(TourStop("neuron", 3, 17), "dates") == "L3 N17 · FFN neuron — dates"


def test_markdown_escapes_html_and_renders_the_basics():
    page = render_markdown("# Why\nA **bold** and *new* `x<y` [paper](https://arxiv.org/abs/2209.02535)\n\n- a\n- b")
    assert "<h3>Why</h3>" in page and "<strong>bold</strong>" in page and "<em>new</em>" in page
    assert "<code>x&lt;y</code>" in page and '<a href="https://arxiv.org/abs/2209.02535"' in page
    assert "<ul><li>a</li><li>b</li></ul>" in page
    hostile = render_markdown("<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))")
    assert "<script" not in hostile and "<img" not in hostile and "href" not in hostile
    assert "<pre><code>&lt;b&gt;\n</code></pre>" not in render_markdown("```\n<b>\n```")
    assert "<pre><code>&lt;b&gt;</code></pre>" in render_markdown("```\n<b>\n```")


def test_tour_equality_ignores_nothing():
    assert parse_tour(DOC) != Tour("Copying heads", DOC["model"], (), "main")
