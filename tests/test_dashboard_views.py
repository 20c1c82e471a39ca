"""The dashboard's pure helpers: pair tokens for the scatter, search links, heatmap clicks, the model card,
the page list and the pickers' units."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd

from dashboard import head_view, page_list, pickers
from dashboard.links import Link, chosen_row
from dashboard.render import clicked_cell, copying_heatmap
from dashboard.scatter_plot import pair_tokens
from dashboard.search_view import hit_links, results_table, view_link
from dashboard.sidebar import model_card_markdown
from embspace import VIEW_KINDS, open_model


def test_pair_tokens_keeps_each_token_once_per_side_with_its_best_score():
    pairs = pd.DataFrame(
        {
            "row_token": ["a", "a", "b"],
            "col_token": ["x", "y", "x"],
            "score": [3.0, 2.0, 1.0],
            "row_id": [1, 1, 2],
            "col_id": [10, 11, 10],
        }
    )
    tokens = pair_tokens(pairs)
    assert tokens.to_dict("records") == [
        {"token_id": 1, "token": "a", "score": 3.0, "group": "row token"},
        {"token_id": 2, "token": "b", "score": 1.0, "group": "row token"},
        {"token_id": 10, "token": "x", "score": 3.0, "group": "column token"},
        {"token_id": 11, "token": "y", "score": 2.0, "group": "column token"},
    ]


def test_view_link_opens_the_hits_page_with_the_shared_settings():
    link = urlparse(view_link("vo-col", 3, 7, {"k": "12", "ascii": "true"}))
    assert link.path == "/vo"
    assert parse_qs(link.query) == {"k": ["12"], "ascii": ["true"], "layer": ["3"], "head": ["7"]}
    assert urlparse(view_link("neuron-K", 1, 900, {})).path == "/neurons"
    assert parse_qs(urlparse(view_link("neuron-K", 1, 900, {})).query)["neuron"] == ["900"]


def test_results_table_labels_each_hit_by_its_view():
    frame = pd.DataFrame(
        {
            "kind": ["qk-row", "neuron-V"],
            "layer": [0, 2],
            "index": [5, 17],
            "token": ["kot", "kot"],
            "rank": [1, 4],
            "score": [0.5, 0.25],
            "partner_token": ["pies", None],
        }
    )
    shown = results_table(frame, {("qk", 0, 5): "animals"})
    assert list(shown["label"]) == ["animals", ""]
    assert list(shown["best partner"]) == ["pies", ""]
    assert list(shown.columns)[0] == "open"
    links = hit_links(frame, {"k": "4"})
    assert links[1] == Link("pages/neurons.py", {"k": "4", "layer": "2", "neuron": "17"})
    assert links[0].page == "pages/qk.py" and links[0].params["head"] == "5"


def test_a_click_anywhere_on_a_heatmap_cell_names_its_layer_and_head():
    assert clicked_cell({"selection": {"points": [{"x": 7.0, "y": 2.0}]}}) == (2, 7)
    assert clicked_cell({"selection": {"points": []}}) is None
    assert clicked_cell(None) is None
    scores = np.array([[0.5, -0.25], [np.nan, 1.0]])
    overlay = copying_heatmap(scores).data[1]
    assert [(int(x), int(y)) for x, y in zip(overlay.x, overlay.y, strict=True)] == [(0, 0), (1, 0), (0, 1), (1, 1)]


def test_model_card_says_which_embedding_was_read(tiny_model):
    untied = open_model(str(tiny_model("gpt_neox")), embedding="output")
    card = model_card_markdown(untied.info)
    assert "| Embedding E | output (LM head), separate from the input |" in card
    assert "| Layers | 2 |" in card


def test_a_head_hit_links_to_its_page_with_the_token_named():
    head = parse_qs(urlparse(view_link("qk-row", 1, 2, {}, "Ġking")).query)
    assert head == {"layer": ["1"], "head": ["2"], "token": ["Ġking"]}
    neuron = parse_qs(urlparse(view_link("neuron-V", 1, 2, {}, "Ġking")).query)
    assert "token" not in neuron  # a neuron's page lists its tokens; it has no token parameter


def test_model_card_of_an_input_output_reading(tiny_model):
    both = open_model(str(tiny_model("gpt_neox")), embedding="input-output")
    assert "| Embedding E | rows: input (word embeddings); columns: output (LM head) |" in model_card_markdown(
        both.info
    )


def test_each_view_kind_has_its_page_at_the_registrys_address():
    root = Path(__file__).resolve().parents[1]
    scripts = {name: page_list.view_page(kind).script for name, kind in VIEW_KINDS.items()}
    assert scripts == {"neuron": "pages/neurons.py", "vo": "pages/vo.py", "qk": "pages/qk.py"}
    assert all((root / script).is_file() for script in scripts.values())
    assert [page_list.view_page(kind).url_path for kind in VIEW_KINDS.values()] == ["neurons", "vo", "qk"]
    assert page_list.view_page(VIEW_KINDS["vo"]).title == "Heads: W_VO"
    assert len({page.url_path for page in page_list.PAGES}) == len(page_list.PAGES)
    assert page_list.START not in page_list.linked_pages() and page_list.PAGES[0] is page_list.START


def test_head_pages_take_their_title_from_the_head_kind():
    assert head_view.PAGES["vo"].title == "W_VO: what a head copies"
    assert head_view.PAGES["qk"].title == "W_QK: what a head attends to"


def test_a_views_unit_count_is_its_layers_heads_or_neurons(tiny_model):
    model = open_model(str(tiny_model("llama")))
    assert pickers.unit_count(model, VIEW_KINDS["neuron"]) == model.shape.d_ff
    assert pickers.unit_count(model, VIEW_KINDS["qk"]) == model.shape.n_heads != model.shape.d_ff


def test_a_click_on_a_row_or_any_of_its_cells_chooses_that_row():
    assert chosen_row({"rows": [3], "columns": [], "cells": []}) == 3
    assert chosen_row({"rows": [], "columns": [], "cells": [(2, "score")]}) == 2
    assert chosen_row({"rows": [], "columns": ["score"], "cells": []}) is None
