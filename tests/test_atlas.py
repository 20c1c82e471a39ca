"""embspace.atlas: the Parquet contract, round trips against live computation, resume, refusals, reading."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import torch

from embspace import PairFilter, VocabFilter, copying_scores, head_top_pairs, neuron_top_tokens, open_model
from embspace.atlas import Atlas, AtlasError, build_atlas, filter_pairs, filter_tokens, find_atlas, parse_layers
from embspace.cli.main import main
from embspace.errors import EmbspaceError
from embspace.search.index import search

ROOT = Path(__file__).resolve().parent.parent


def read_all(directory: Path) -> dict:
    """Every table of an atlas, sorted, as plain Python (to compare two builds)."""
    keys = {
        "pairs": ["kind", "sign", "layer", "head", "rank"],
        "neurons": ["layer", "neuron", "vector", "rank"],
        "heads": ["layer", "head"],
        "tokens": ["layer", "neuron", "vector", "rank"],
    }
    return {
        name: ds.dataset(directory / name).to_table().sort_by([(k, "ascending") for k in sort]).to_pydict()
        for name, sort in keys.items()
    }


@pytest.fixture(scope="module")
def gpt2_atlas(tiny_model, tmp_path_factory):
    path = tiny_model("gpt2")
    out = tmp_path_factory.mktemp("atlas") / "gpt2"
    build_atlas(open_model(str(path)), out, k=12, progress=False)
    return path, out


def test_dataset_contract_exactly_as_the_issue_reads_it(gpt2_atlas):
    _, out = gpt2_atlas
    for partitioning in (None, "hive"):
        pairs = ds.dataset(out / "pairs", partitioning=partitioning)
        types = {f.name: str(f.type) for f in pairs.schema}
        assert {
            "kind": "string",
            "sign": "string",
            "layer": "int32",
            "head": "int32",
            "rank": "int32",
            "row_id": "int32",
            "col_id": "int32",
            "score": "float",
        }.items() <= types.items()
        table = pairs.to_table()
        assert set(table["kind"].to_pylist()) == {"vo", "qk"} and set(table["sign"].to_pylist()) == {"+", "-"}
        assert set(table["layer"].to_pylist()) == {0, 1} and min(table["rank"].to_pylist()) == 1
    neurons = ds.dataset(out / "neurons")
    assert {f.name: str(f.type) for f in neurons.schema} == {
        "layer": "int32",
        "neuron": "int32",
        "vector": "string",
        "rank": "int32",
        "token_id": "int32",
        "score": "float",
    }
    assert set(neurons.to_table()["vector"].to_pylist()) == {"K", "V", "-K", "-V"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["k"] == 12 and manifest["weights"]["method"] == "sha256" and manifest["tables"]["pairs"]["schema"]


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_round_trip_equals_live(tiny_model, tmp_path, arch):
    path = str(tiny_model(arch))
    model = open_model(path)
    build_atlas(model, tmp_path / "a", k=12, progress=False)
    atlas = Atlas.open(tmp_path / "a")
    assert atlas.matches(model) and atlas.layers() == [0, 1]
    for kind in ("vo", "qk"):
        for layer, head in ((0, 0), (1, 3)):
            for sign in ("+", "-"):
                stored = atlas.head_pairs(kind, layer, head, sign)
                live = head_top_pairs(model, kind, layer, head, 12, negative=sign == "-")
                assert stored["rank"].tolist() == list(range(1, 13))
                assert stored["row_id"].tolist() == live.row_ids.tolist()
                assert stored["col_id"].tolist() == live.col_ids.tolist()
                assert stored["score"].tolist() == live.scores.tolist()
    for neuron in (0, 5, model.shape.d_ff - 1):
        stored = atlas.neuron_tokens(1, neuron)
        live = neuron_top_tokens(model, 1, neuron, 12)
        for vector in ("K", "V", "-K", "-V"):
            assert sorted(stored[vector]["token_id"]) == sorted(live[vector].token_ids.tolist())
            np.testing.assert_allclose(stored[vector]["score"], live[vector].scores, rtol=1e-5, atol=1e-6)
    scores = atlas.head_scores()
    np.testing.assert_allclose(scores["copying_score"].to_numpy().reshape(2, -1), copying_scores(model))


def test_qk_self_score_is_the_eigenvalue_ratio_of_the_full_matrix(gpt2_atlas):
    path, out = gpt2_atlas
    model = open_model(str(path))
    weights = model.layer(1)
    rows = model.embedding_rows.double()
    full = rows @ weights.W_Q[2].double() @ weights.W_K[2].double().T @ rows.T  # [V, V]
    eigenvalues = torch.linalg.eigvals(full)
    expected = (eigenvalues.sum().real / eigenvalues.abs().sum()).item()
    frame = Atlas.open(out).head_scores()
    stored = frame[(frame["layer"] == 1) & (frame["head"] == 2)]["qk_self_score"].item()
    assert stored == pytest.approx(expected, abs=1e-6)


def test_minilm_build_killed_mid_way_resumes_and_equals_live(minilm_dir, tmp_path):
    """A real SIGKILL in the middle of a MiniLM build, then a rerun: the tables equal live computation.
    (Identical tables after a resume, byte for byte, are checked on the tiny model above.)"""
    out = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "embspace",
        "atlas",
        "build",
        str(minilm_dir),
        "--out",
        str(out),
        "--k",
        "6",
        "--layers",
        "5",
        "--no-progress",
        "--json",
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not list(out.glob("pairs/**/part.parquet")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 1 <= len(list(out.glob("**/part.parquet"))) < 4, "the kill should land mid-build"
    resumed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(resumed.stdout)["skipped"] >= 1
    model = open_model(str(minilm_dir))
    atlas = Atlas.open(out)
    for kind, head in (("vo", 11), ("qk", 0)):
        stored = atlas.head_pairs(kind, 5, head, "-")
        live = head_top_pairs(model, kind, 5, head, 6, negative=True)
        assert stored["row_id"].tolist() == live.row_ids.tolist() and stored["score"].tolist() == live.scores.tolist()
    tokens = atlas.neuron_tokens(5, 100)["-V"]
    assert tokens["token_id"].tolist() == neuron_top_tokens(model, 5, 100, 6)["-V"].token_ids.tolist()


def test_refuses_another_model_or_n_and_overwrites_nothing(gpt2_atlas, tiny_model, tmp_path, capsys):
    path, out = gpt2_atlas
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    code = main(["atlas", "build", str(path), "--out", str(out), "--k", "13", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "holds an atlas of" in err[0] and "k differ" in err[0]
    with pytest.raises(AtlasError, match="config_sha256"):
        build_atlas(open_model(str(tiny_model("llama"))), out, k=12, progress=False)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != ".lock"} == before
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(AtlasError, match="not empty"):
        build_atlas(open_model(str(path)), tmp_path, k=12, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]  # not even a lock file left behind


def test_cli_build_json_and_layers(tiny_model, tmp_path, capsys):
    out = tmp_path / "cli"
    assert (
        main(
            [
                "atlas",
                "build",
                str(tiny_model("gpt2")),
                "--out",
                str(out),
                "--k",
                "4",
                "--layers",
                "1",
                "--json",
                "--no-progress",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["built"] == 3 and result["units"] == 3 and result["out"] == str(out)
    assert Atlas.open(out).layers("neurons") == [1]


def test_parse_layers():
    assert parse_layers("0-2,5", 8) == [0, 1, 2, 5] and parse_layers(None, 3) == [0, 1, 2]
    for bad in ("7", "2-1", "x"):
        with pytest.raises(EmbspaceError):
            parse_layers(bad, 6)


def test_device_cuda_without_gpu_is_one_line(tiny_model, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    code = main(["atlas", "build", str(tiny_model("gpt2")), "--out", str(tmp_path / "g"), "--device", "cuda"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "CUDA is not available" in err[0]


def test_filters_on_stored_candidates(gpt2_atlas):
    path, out = gpt2_atlas
    model, atlas = open_model(str(path)), Atlas.open(out)
    vocab_filter, pair_filter = VocabFilter(only_ascii=True), PairFilter(exclude_same=True)
    view = filter_pairs(atlas.head_pairs("qk", 1, 1), model, 3, vocab_filter, pair_filter, atlas.k)
    live = head_top_pairs(model, "qk", 1, 1, 3, vocab_filter, pair_filter)
    assert view.complete and view.frame["row_id"].tolist() == live.row_ids.tolist()
    assert view.frame["rank"].tolist() == [1, 2, 3]
    strict = filter_pairs(atlas.head_pairs("qk", 1, 1), model, 12, VocabFilter(only_alnum=True), None, atlas.k)
    assert not strict.complete and len(strict.frame) < 12  # the page must offer the live computation
    tokens = filter_tokens(atlas.neuron_tokens(0, 3)["K"], model, 4, vocab_filter, atlas.k)
    expected = neuron_top_tokens(model, 0, 3, 4, vocab_filter)["K"].token_ids.tolist()
    assert (
        tokens.complete == (len(tokens.frame) == 4)
        and tokens.frame["token_id"].tolist() == expected[: len(tokens.frame)]
    )
    assert not filter_tokens(atlas.neuron_tokens(0, 3)["K"], model, 4, VocabFilter(exclude_special=False)).complete


def test_find_atlas(gpt2_atlas, tiny_model, tmp_path):
    path, out = gpt2_atlas
    root = tmp_path / "atlases"
    root.mkdir()
    shutil.copytree(out, root / "copy")
    found = find_atlas(open_model(str(path)), roots=[tmp_path / "missing", root])
    assert found is not None and found.directory == root / "copy"
    assert find_atlas(open_model(str(tiny_model("llama"))), roots=[root]) is None
    assert find_atlas(open_model(str(path)), roots=[out]).directory == out


def test_neuron_partition_is_read_by_row_group(gpt2_atlas):
    """One neuron's read touches one row group: the file is written in groups of neurons."""
    _, out = gpt2_atlas
    meta = pq.read_metadata(out / "neurons/layer=0/part.parquet")
    assert meta.num_row_groups > 1
    assert os.path.getsize(out / "neurons/layer=0/part.parquet") > 0


def test_tokens_table_is_the_k_and_v_lists_sorted_by_token(gpt2_atlas):
    """What token search reads: the neurons table's K and V rows, the same values, ordered by token_id."""
    path, out = gpt2_atlas
    columns = ["layer", "neuron", "vector", "rank", "token_id", "score"]
    order = ["layer", "neuron", "vector", "rank"]
    for layer in range(open_model(str(path)).shape.n_layers):
        neurons = pq.read_table(out / f"neurons/layer={layer}/part.parquet", columns=columns).to_pandas()
        tokens = pq.read_table(out / f"tokens/layer={layer}/part.parquet", columns=columns).to_pandas()
        assert tokens["token_id"].is_monotonic_increasing
        expected = neurons[neurons["vector"].isin(["K", "V"])].sort_values(order, ignore_index=True)
        pd.testing.assert_frame_equal(tokens.sort_values(order, ignore_index=True), expected)


def test_an_atlas_without_the_tokens_table_gets_it_without_a_rescan(gpt2_atlas, tmp_path):
    """Atlases built before the tokens table: search falls back to the neuron lists, and a rebuild
    derives the table from them (no unit recomputed), after which search gives the same hits."""
    path, out = gpt2_atlas
    older = tmp_path / "older"
    shutil.copytree(out, older)
    shutil.rmtree(older / "tokens")
    model = open_model(str(path))
    kinds = ("neuron-K", "neuron-V")
    before = search(model, ["kot", "the"], limit=50, kinds=kinds, atlas=Atlas.open(older))
    assert before and all(hit.source == "atlas" for hit in before)
    assert build_atlas(model, older, k=12, progress=False).built == 0
    assert read_all(older) == read_all(out)
    assert search(model, ["kot", "the"], limit=50, kinds=kinds, atlas=Atlas.open(older)) == before


def test_a_build_killed_before_its_manifest_leaves_only_a_lock_and_a_rerun_builds(tiny_model, tmp_path):
    """The lock file of a killed build does not make its directory 'not empty' (it did for the lock step)."""
    out = tmp_path / "atlas"
    out.mkdir()
    (out / ".lock").write_text("")
    summary = build_atlas(open_model(str(tiny_model("gpt2"))), out, k=12, progress=False)
    assert summary.built == summary.units > 0
