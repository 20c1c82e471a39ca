"""embspace.search.concepts: a planted neuron and a planted head direction found first; live == atlas; the CLI."""

import json
import shutil

import pytest
from concept_fixtures import PLANTED_HEAD, PLANTED_NEURON, plant

from embspace import CONCEPT_KINDS, VocabFilter, concepts, open_model, svd_view
from embspace.atlas import Atlas, build_atlas
from embspace.cli.main import main

CONTRACT_KEYS = {"kind", "layer", "index", "direction", "hits", "score", "words"}


@pytest.fixture(scope="module")
def planted(tiny_model, tmp_path_factory):
    directory, words = plant(tiny_model("bert"), tmp_path_factory.mktemp("concepts") / "planted")
    return open_model(str(directory)), words


@pytest.fixture(scope="module")
def planted_atlas(planted, tmp_path_factory):
    out = tmp_path_factory.mktemp("concepts_atlas") / "a"
    build_atlas(planted[0], out, k=40, progress=False, svd_directions=4)
    return Atlas.open(out)


def test_planted_neuron_and_head_direction_come_first(planted):
    model, words = planted
    found = concepts(model, words, k=10, limit=5)
    assert found[0].hits == len(words) and set(found[0].words) == set(words)
    best = {hit.kind: hit for hit in reversed(concepts(model, words, k=10, limit=1000))}  # the first of each kind
    assert (best["neuron-V"].layer, best["neuron-V"].index) == PLANTED_NEURON
    for kind in ("vo-read", "vo-write", "svd-ov"):
        assert (best[kind].layer, best[kind].index, best[kind].hits) == (*PLANTED_HEAD, len(words))
    assert best["svd-ov"].direction == 0 and best["vo-read"].direction is None


def test_an_unrelated_set_of_words_does_not_find_the_plant(planted):
    model, words = planted
    others = [w for w in concept_words_shifted(model.tokenizer) if w not in words]
    found = concepts(model, others, k=10, limit=3)
    assert all((hit.layer, hit.index) not in (PLANTED_NEURON, PLANTED_HEAD) or hit.hits < 4 for hit in found)


def concept_words_shifted(tokenizer) -> list[str]:
    vocab = sorted(t for t in tokenizer.get_vocab() if t.isalpha() and t.isascii() and len(t) >= 3)
    return vocab[3 :: max(1, len(vocab) // 4)][:4]


def records(found):
    return [{**hit.as_dict(), "source": None, "score": round(hit.score, 6)} for hit in found]


@pytest.mark.parametrize(
    "vocab_filter, kinds",
    [
        (None, CONCEPT_KINDS),
        (VocabFilter(only_ascii=True), ("neuron-K", "neuron-V", "svd-ov", "svd-qk", "svd-ffn-in", "svd-ffn-out")),
    ],
)
def test_live_and_atlas_concepts_are_equal(planted, planted_atlas, vocab_filter, kinds):
    """Same units, hits, scores and words; under another filter the stored lists are recounted (heads are left
    out there: a filter leaves fewer than N stored pairs, live finds pairs past them)."""
    model, words = planted
    asked = dict(k=10, limit=10_000, vocab_filter=vocab_filter, kinds=kinds)
    live = concepts(model, [*words, "the"], head_bound=planted_atlas.k, directions=4, **asked)
    stored = concepts(model, [*words, "the"], atlas=planted_atlas, **asked)
    assert len(live) > 30 and {hit.kind for hit in live} == set(kinds)
    assert all(hit.source == "atlas" for hit in stored) and all(hit.source == "live" for hit in live)
    assert records(live) == records(stored)


def test_an_atlas_without_the_svd_table_computes_the_directions_live(planted, planted_atlas, tmp_path):
    model, words = planted
    older = tmp_path / "older"
    shutil.copytree(planted_atlas.directory, older)
    shutil.rmtree(older / "svd")
    found = concepts(model, words, k=10, limit=10_000, atlas=Atlas.open(older))
    assert {hit.source for hit in found if hit.kind.startswith("svd")} == {"live"}
    assert {hit.source for hit in found if not hit.kind.startswith("svd")} == {"atlas"}
    assert any(hit.kind == "svd-ov" and hit.hits == len(words) for hit in found)


def test_cli_concepts_json_contract(capsys, planted, planted_atlas, tmp_path):
    model, words = planted
    path = model.info.path
    assert main(["concepts", "--model", path, *words, "--k", "10", "--limit", "5", "--json"]) == 0
    live = json.loads(capsys.readouterr().out)
    assert len(live) == 5 and all(CONTRACT_KEYS <= set(record) for record in live)
    assert live[0]["kind"] in CONCEPT_KINDS and set(live[0]["words"]) == set(words)
    listed = tmp_path / "words.txt"
    listed.write_text("\n".join(words), encoding="utf-8")
    assert main(["concepts", "--model", path, "--file", str(listed), "--k", "10", "--limit", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == live  # the same words from a file
    atlas_args = ["--atlas", str(planted_atlas.directory), "--k", "10", "--limit", "5"]
    assert main(["concepts", "--model", path, *words, *atlas_args, "--json"]) == 0
    out = capsys.readouterr().out
    assert main(["concepts", "--model", path, *words, *atlas_args]) == 0
    assert "hits" in capsys.readouterr().out and "atlas" in out
    assert main(["concepts", "--model", path, *words, "--atlas", str(planted_atlas.directory), "--k", "41"]) == 2


def test_the_svd_table_holds_what_the_directions_view_shows(planted, planted_atlas):
    """Stored ends = `svd_view`'s tokens (the /directions page and `embspace svd`), head and FFN kinds."""
    model, _ = planted
    stored = planted_atlas.svd_tokens()
    assert set(stored["kind"]) == {"svd-ov", "svd-qk", "svd-ffn-in", "svd-ffn-out"}
    for kind, layer, head, side in [("ov", 0, 2, "left"), ("qk", 1, 0, "right"), ("ffn-out", 1, None, "right")]:
        view = svd_view(model, kind, layer, head, directions=4, k=planted_atlas.k)
        for direction in view.directions:
            for end, scores in (("+", getattr(direction, side).plus), ("-", getattr(direction, side).minus)):
                rows = stored[
                    (stored["kind"] == f"svd-{kind}")
                    & (stored["layer"] == layer)
                    & (stored["head"] == (-1 if head is None else head))
                    & (stored["direction"] == direction.index)
                    & (stored["side"] == side)
                    & (stored["end"] == end)
                ].sort_values("rank")
                assert rows["token_id"].tolist() == scores.token_ids.tolist()


def test_resuming_an_older_atlas_adds_only_the_svd_table(planted, planted_atlas, tmp_path):
    model, _ = planted
    older = tmp_path / "older"
    shutil.copytree(planted_atlas.directory, older)
    shutil.rmtree(older / "svd")
    summary = build_atlas(model, older, k=40, progress=False, svd_directions=4)
    assert summary.built == 0 and Atlas.open(older).layers("svd") == [0, 1]
    assert len(Atlas.open(older).svd_tokens()) == len(planted_atlas.svd_tokens())
