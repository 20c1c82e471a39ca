"""Batch export: one line per head, resumable, a torn last line repaired."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from embspace import EmbspaceError, PairFilter, VocabFilter, open_model
from embspace.compute.projections import head_top_pairs
from embspace.export import export_heads

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bert_model(tiny_model):
    return open_model(str(tiny_model("bert")))


def read_lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_layer_and_head_once_with_spec_and_pairs(bert_model, tmp_path):
    out = tmp_path / "qk.jsonl"
    seen = []
    summary = export_heads(
        bert_model,
        out,
        kind="qk",
        k=3,
        vocab_filter=VocabFilter(only_ascii=True),
        progress=lambda done, total, layer, head: seen.append((done, total)),
    )
    lines = read_lines(out)
    n_layers, n_heads = bert_model.shape.n_layers, bert_model.shape.n_heads
    assert summary.written == len(lines) == n_layers * n_heads and summary.skipped == 0
    assert sorted((r["layer"], r["head"]) for r in lines) == [
        (layer, h) for layer in range(n_layers) for h in range(n_heads)
    ]
    assert seen[-1] == (n_layers * n_heads, n_layers * n_heads)
    first = lines[0]
    assert first["kind"] == "qk" and first["filter"]["only_ascii"] is True
    expected = head_top_pairs(bert_model, "qk", first["layer"], first["head"], 3, VocabFilter(only_ascii=True))
    assert [p["col_id"] for p in first["pairs"]] == expected.col_ids.tolist()


def test_rerun_skips_done_heads_and_repairs_a_torn_line(bert_model, tmp_path):
    out = tmp_path / "vo.jsonl"
    export_heads(bert_model, out, k=2, layers=[0])
    # Simulate a run killed mid-write: half a JSON line at the end.
    with out.open("a", encoding="utf-8") as handle:
        handle.write('{"model": "x", "layer": 1, "he')
    summary = export_heads(bert_model, out, k=2)
    lines = read_lines(out)
    heads = bert_model.shape.n_heads
    assert summary.skipped == heads and summary.written == heads * (bert_model.shape.n_layers - 1)
    assert len(lines) == len({(r["layer"], r["head"]) for r in lines}) == heads * bert_model.shape.n_layers


def test_a_different_filter_is_a_different_export(bert_model, tmp_path):
    out = tmp_path / "vo.jsonl"
    export_heads(bert_model, out, k=2, layers=[0])
    summary = export_heads(bert_model, out, k=2, layers=[0], pair_filter=PairFilter(exclude_same=True))
    assert summary.written == bert_model.shape.n_heads and summary.skipped == 0


def test_a_line_cut_inside_a_character_is_repaired(bert_model, tmp_path):
    out = tmp_path / "vo.jsonl"
    export_heads(bert_model, out, k=2, layers=[0])
    with out.open("ab") as handle:
        handle.write('{"model": "x", "row_token": "ż'.encode()[:-1])  # half of the two bytes of "ż"
    summary = export_heads(bert_model, out, k=2, layers=[0, 1])
    assert summary.skipped == bert_model.shape.n_heads
    assert len(read_lines(out)) == 2 * bert_model.shape.n_heads


def test_a_foreign_line_in_the_middle_is_refused_not_deleted(bert_model, tmp_path):
    out = tmp_path / "vo.jsonl"
    out.write_text("not json\n" + '{"layer": 0, "head": 0}\n', encoding="utf-8")
    with pytest.raises(EmbspaceError, match="line 1 is not an export record"):
        export_heads(bert_model, out, k=2, layers=[0])
    assert out.read_text(encoding="utf-8").startswith("not json")


EXPORT_WITH_WORKERS = (
    "import sys\n"
    "from embspace import open_model, runtime\n"
    "from embspace.export import export_heads\n"
    "runtime.configure(threads=int(sys.argv[1]))\n"
    "export_heads(open_model(sys.argv[2]), sys.argv[3], kind='vo', k=4)\n"
)


def test_heads_computed_two_at_a_time_are_written_in_order_and_equal_one_at_a_time(tiny_model, tmp_path):
    """The export runs one head per scan worker; the file is the same as a one-worker export."""
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"vo-{workers}.jsonl"
        command = [sys.executable, "-c", EXPORT_WITH_WORKERS, str(workers), str(tiny_model("bert")), str(out)]
        subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
        outputs.append(out.read_text(encoding="utf-8"))
    lines = [json.loads(line) for line in outputs[1].splitlines()]
    assert [(r["layer"], r["head"]) for r in lines] == sorted((r["layer"], r["head"]) for r in lines)
    assert len(lines) > 2 and outputs[0] == outputs[1]
