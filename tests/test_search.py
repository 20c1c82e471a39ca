"""embspace.search.index: token ranks against brute force on a tiny model, live and from an atlas; the CLI."""

import json

import numpy as np
import pyarrow.dataset as ds
import pytest

from embspace import PairFilter, VocabFilter, open_model
from embspace.atlas import Atlas, build_atlas
from embspace.cli.main import main
from embspace.search import ffn as search_ffn
from embspace.search.ffn import capped_ranks, ffn_ranks, neuron_ranks_brute_force
from embspace.search.filtered_vocab import FilteredVocab
from embspace.search.index import SearchIndex, query_tokens, search
from embspace.search.screen import STORED_SAMPLE_TOKENS, STORED_TOP, StoredSample, rounding_margin
from embspace.views import SEARCH_KINDS


@pytest.fixture(scope="module")
def gpt2(tiny_model):
    return open_model(str(tiny_model("gpt2")))


@pytest.fixture(scope="module")
def gpt2_atlas(gpt2, tmp_path_factory):
    out = tmp_path_factory.mktemp("search_atlas") / "a"
    build_atlas(gpt2, out, k=40, progress=False)
    return Atlas.open(out)


def some_tokens(model, mask):
    kept = np.flatnonzero(mask)
    dropped = np.flatnonzero(~mask)
    return [int(kept[0]), int(kept[len(kept) // 2]), int(kept[-1])] + ([int(dropped[-1])] if len(dropped) else [])


@pytest.mark.parametrize("vocab_filter", [None, VocabFilter(only_ascii=True)])
@pytest.mark.parametrize("stored_size", [STORED_SAMPLE_TOKENS, 24])  # the whole tiny vocabulary / a coarse sample
def test_ffn_ranks_equal_brute_force_for_every_neuron(gpt2, vocab_filter, stored_size):
    index = SearchIndex(gpt2)
    mask = gpt2.vocab_mask(vocab_filter)
    vocab = FilteredVocab.build(gpt2, vocab_filter)
    for side in ("K", "V"):
        weights = index.sides[side]
        stored = StoredSample.build(weights, gpt2.E, size=stored_size, top=min(STORED_TOP, stored_size // 3))
        for token in some_tokens(gpt2, mask):
            expected = neuron_ranks_brute_force(weights, gpt2.E, mask, token)
            args = (weights, index.row_norms[side], index.max_token_norm, gpt2.E[:, token], vocab, token)
            rows, ranks, scores = ffn_ranks(*args, limit=len(weights), stored=stored)
            assert sorted(rows.tolist()) == list(range(len(weights)))
            assert (ranks == expected[rows]).all()
            np.testing.assert_allclose(scores, (weights[rows] @ gpt2.E[:, token]).numpy(), rtol=1e-5, atol=1e-6)
            # The pruned search for the best 5 gives the first 5 of the full ranking (same order).
            best_rows, best_ranks, _ = ffn_ranks(*args, limit=5, stored=stored)
            assert best_ranks.tolist() == ranks[:5].tolist() and best_rows.tolist() == rows[:5].tolist()


@pytest.mark.parametrize("vocab_filter", [None, VocabFilter(only_ascii=True)])
def test_capped_ranks_chunk_by_chunk_equal_brute_force(gpt2, vocab_filter, monkeypatch):
    """Ranks over many vocabulary chunks (own chunk first): exact for rows within the cap, the rest dropped."""
    monkeypatch.setattr(search_ffn, "EXACT_CHUNK", 37)
    index = SearchIndex(gpt2)
    mask = gpt2.vocab_mask(vocab_filter)
    vocab = FilteredVocab.build(gpt2, vocab_filter)
    weights = index.sides["V"]
    for token in some_tokens(gpt2, mask):
        expected = neuron_ranks_brute_force(weights, gpt2.E, mask, token)
        own = int(vocab.column_of[token])
        for cap in (np.inf, float(np.median(expected)), 1.0):
            kept, ranks, scores = capped_ranks(weights, vocab.kept_E, own, gpt2.E[:, token], cap)
            assert kept.tolist() == np.flatnonzero(expected <= cap).tolist()
            assert ranks.tolist() == expected[kept].tolist()
            np.testing.assert_allclose(scores, (weights[kept] @ gpt2.E[:, token]).numpy(), rtol=1e-5, atol=1e-6)
        stored = StoredSample.build(weights, gpt2.E, size=48, top=12)
        args = (weights, index.row_norms["V"], index.max_token_norm, gpt2.E[:, token], vocab, token)
        rows, ranks, _ = ffn_ranks(*args, limit=7, stored=stored)
        assert ranks.tolist() == sorted(expected)[:7]


def test_stored_sample_bound_never_exceeds_the_true_rank(gpt2):
    """The screen's bound is a lower bound for every row and token, and it is not vacuous."""
    index = SearchIndex(gpt2)
    weights, mask = index.sides["K"], gpt2.vocab_mask(None)
    stored = StoredSample.build(weights, gpt2.E, size=64, top=16)
    margin = rounding_margin(weights.shape[1], index.row_norms["K"], index.max_token_norm)
    bounds = []
    for token in some_tokens(gpt2, mask):
        usable = np.array(mask)
        usable[token] = False
        bound = stored.lower_bound((weights @ gpt2.E[:, token] + margin).numpy(), usable)
        assert (bound <= neuron_ranks_brute_force(weights, gpt2.E, mask, token)).all()
        bounds.append(bound)
    assert np.concatenate(bounds).max() == 1 + 16  # some rows hit the cap: most of the sample beats the token


@pytest.mark.parametrize(
    "vocab_filter, pair_filter",
    [(None, None), (VocabFilter(only_ascii=True), None), (None, PairFilter(exclude_same=True))],
)
def test_live_head_hits_equal_the_atlas_hits(gpt2, gpt2_atlas, vocab_filter, pair_filter):
    """One definition of a head hit: live (top pairs up to the atlas's N) answers what the atlas answers."""
    stored = gpt2_atlas.head_pairs("vo", 0, 0)["row_id"].tolist() + gpt2_atlas.head_pairs("qk", 1, 2)["col_id"].tolist()
    words = [gpt2.tokenizer.convert_ids_to_tokens(int(i)) for i in stored[:8]]
    kinds = ("vo-row", "vo-col", "qk-row", "qk-col")
    asked = dict(vocab_filter=vocab_filter, pair_filter=pair_filter, limit=1000, kinds=kinds)
    live = search(gpt2, words, head_bound=gpt2_atlas.k, **asked)
    atlas = search(gpt2, words, atlas=gpt2_atlas, **asked)
    assert len(live) > 20 and {h.kind for h in live} == set(kinds)
    key = lambda h: (h.kind, h.layer, h.index, h.token_id, h.rank, h.partner_id)  # noqa: E731
    live_by_key = {key(h): h for h in live}
    assert all(key(h) in live_by_key for h in atlas)  # every stored answer is the live one ...
    for hit in atlas:
        assert hit.score == pytest.approx(live_by_key[key(hit)].score, rel=1e-5, abs=1e-6)
    if vocab_filter is None and pair_filter is None:  # ... and under the atlas's own filter, all of them
        assert [key(h) for h in live] == [key(h) for h in atlas]
    else:  # a filter leaves fewer than N stored pairs per head: live also finds pairs past them
        assert len(live) >= len(atlas) > 10


def test_live_head_hits_are_bounded_by_head_bound(gpt2, gpt2_atlas):
    pairs = gpt2_atlas.head_pairs("vo", 0, 0)
    words = [gpt2.tokenizer.convert_ids_to_tokens(int(i)) for i in pairs["row_id"][:3]]
    hits = search(gpt2, words, limit=1000, kinds=("vo-row", "qk-col"), head_bound=5)
    assert hits and max(h.rank for h in hits) <= 5
    assert len(search(gpt2, words, limit=1000, kinds=("vo-row", "qk-col"), head_bound=40)) > len(hits)


@pytest.mark.parametrize("vocab_filter", [None, VocabFilter(only_alnum=True)])
def test_atlas_neuron_ranks_equal_live(gpt2, gpt2_atlas, vocab_filter):
    """Every token above a stored one is stored too, so atlas ranks are the exact live ranks."""
    words = ["kot", "pies", "the"]
    live = search(gpt2, words, vocab_filter=vocab_filter, limit=10_000, kinds=("neuron-K", "neuron-V"))
    stored = search(
        gpt2, words, vocab_filter=vocab_filter, limit=10_000, kinds=("neuron-K", "neuron-V"), atlas=gpt2_atlas
    )
    live_by_key = {(h.kind, h.layer, h.index, h.token_id): h for h in live}
    assert stored and all(h.source == "atlas" for h in stored)
    for hit in stored:
        expected = live_by_key[(hit.kind, hit.layer, hit.index, hit.token_id)]
        assert hit.rank == expected.rank and hit.score == pytest.approx(expected.score, rel=1e-5, abs=1e-6)
    # ... and every live hit ranked within the stored N is found in the atlas.
    within = {k for k, h in live_by_key.items() if h.rank <= 40 and vocab_filter is None}
    assert within <= {(h.kind, h.layer, h.index, h.token_id) for h in stored}


def test_atlas_head_rank_is_the_best_pair_position(gpt2, gpt2_atlas):
    vocab_filter = VocabFilter(only_ascii=True)
    mask = gpt2.vocab_mask(vocab_filter)
    stored = [int(i) for i in gpt2_atlas.head_pairs("vo", 0, 0)["row_id"]] + [
        int(i) for i in gpt2_atlas.head_pairs("qk", 1, 2)["col_id"]
    ]
    words = [gpt2.tokenizer.convert_ids_to_tokens(i) for i in stored if mask[i]][:6]  # raw tokens, searched as is
    hits = search(gpt2, words, vocab_filter=vocab_filter, limit=1000, kinds=("vo-row", "qk-col"), atlas=gpt2_atlas)
    assert {"vo-row", "qk-col"} <= {h.kind for h in hits}
    for hit in hits:
        kind, side = hit.kind.split("-")
        w = gpt2.layer(hit.layer)
        A, B = (w.W_V[hit.index], w.W_O[hit.index]) if kind == "vo" else (w.W_Q[hit.index], w.W_K[hit.index].T)
        rows = gpt2.embedding_rows.double()
        full = (rows @ A.double() @ B.double() @ rows.T).numpy()
        full[~mask, :] = -np.inf
        full[:, ~mask] = -np.inf
        order = np.argsort(-full, axis=None, kind="stable")
        r, c = np.unravel_index(order, full.shape)
        mine = (r == hit.token_id) if side == "row" else (c == hit.token_id)
        assert hit.rank == 1 + int(np.argmax(mine))
        assert hit.partner_id == (c if side == "row" else r)[np.argmax(mine)]


def test_atlas_reads_every_head_pair_and_every_place_of_a_token(gpt2, gpt2_atlas):
    """all_head_pairs = the per-head tables together; neuron_places = the neuron lists that hold the token."""
    pairs = gpt2_atlas.all_head_pairs("qk")
    for layer, head in [(0, 0), (1, 3)]:
        one = gpt2_atlas.head_pairs("qk", layer, head)
        mine = np.flatnonzero((pairs.layer == layer) & (pairs.head == head))
        mine = mine[np.argsort(pairs.rank[mine])]
        assert pairs.row_id[mine].tolist() == one["row_id"].tolist()
        assert pairs.col_id[mine].tolist() == one["col_id"].tolist()
    assert len(pairs.rank) == gpt2.shape.n_layers * gpt2.shape.n_heads * gpt2_atlas.k
    token = int(gpt2_atlas.neuron_tokens(1, 5)["K"]["token_id"][0])
    places = gpt2_atlas.neuron_places([token], ["K"])
    stored = ds.dataset(gpt2_atlas.directory / "neurons").to_table().to_pandas()
    stored = stored[(stored["token_id"] == token) & (stored["vector"] == "K")]
    expected = set(zip(stored["layer"], stored["neuron"], stored["rank"], strict=True))
    assert set(zip(places.layer.tolist(), places.neuron.tolist(), places.rank.tolist(), strict=True)) == expected
    assert set(places.vector) == {"K"} and set(places.token_id) == {token} and (1, 5, 1) in expected


def test_split_word_and_raw_token(minilm_dir):
    model = open_model(str(minilm_dir))
    split, raw = query_tokens(model, ["pieszo", "##ing"])
    assert len(split.token_ids) > 1 and split.tokens[1].startswith("##")
    assert raw.tokens == ("##ing",)


def test_cli_search_json(capsys, tiny_model, gpt2_atlas):
    path = str(tiny_model("gpt2"))
    code = main(["search", "--model", path, "kot", "--json", "--limit", "3", "--only-ascii"])
    hits = json.loads(capsys.readouterr().out)
    assert code == 0 and hits
    assert {"kind", "layer", "index", "token_id", "token", "rank", "score"} <= set(hits[0])
    assert {h["kind"] for h in hits} == set(SEARCH_KINDS)
    assert [(h["rank"], -h["score"]) for h in hits] == sorted((h["rank"], -h["score"]) for h in hits)
    code = main(["search", "--model", path, "kot", "--json", "--atlas", str(gpt2_atlas.directory)])
    assert code == 0 and all(h["source"] == "atlas" for h in json.loads(capsys.readouterr().out))
    code = main(["search", "--model", path, "kot", "--atlas", "/nonexistent"])
    assert code == 2 and capsys.readouterr().err.count("\n") == 1
