"""`embspace diff` and `embspace align`: the contract's JSON keys, the engine's answers, one-line refusals."""

from __future__ import annotations

import json

import pytest
from compare_fixtures import PLANTED_HEAD, PLANTED_NEURON, PLANTED_TOKENS, make_tuned, make_wider

from embspace import open_model
from embspace.cli.args import pair_filter_from_args, vocab_filter_from_args
from embspace.cli.main import build_parser, main
from embspace.compare import align_layers, most_correlated_rows, unit_diff

UNIT_KEYS = {"kind", "layer", "index", "change", "base_norm"}
TOKEN_KEYS = {"token_id", "token", "score"}
PAIR_KEYS = {"row_id", "col_id", "row_token", "col_token", "score"}


@pytest.fixture(scope="module")
def paths(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare_cli")
    base = tiny_model("bert")
    return {
        "base": str(base),
        "tuned": str(make_tuned(base, root / "tuned")),
        "wider": str(make_wider(base, root / "wider")),
        "gpt2": str(tiny_model("gpt2")),
    }


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_diff_json_lists_units_most_changed_first(capsys, paths):
    code, out, _ = run_cli(capsys, "diff", paths["base"], paths["tuned"], "--limit", "3", "--json")
    units = json.loads(out)
    assert code == 0 and len(units) == 3
    assert all(set(u) == UNIT_KEYS for u in units)
    assert {(u["kind"], u["layer"], u["index"]) for u in units[:2]} == {
        ("neuron-V", *PLANTED_NEURON),
        ("vo", *PLANTED_HEAD),
    }
    assert units[0]["change"] >= units[1]["change"] >= units[2]["change"]


def test_diff_table_without_json(capsys, paths):
    code, out, _ = run_cli(capsys, "diff", paths["base"], paths["tuned"], "--limit", "2")
    assert code == 0 and "neuron-V" in out and "base_norm" in out and len(out.splitlines()) == 3


def test_neuron_diff_json(capsys, paths):
    layer, neuron = PLANTED_NEURON
    argv = ["diff", paths["base"], paths["tuned"], "--unit", "neuron-V", "--layer", str(layer), "--index", str(neuron)]
    code, out, _ = run_cli(capsys, *argv, "--k", "4", "--json")
    result = json.loads(out)
    assert code == 0 and set(result) == {"plus", "minus"}
    assert all(set(item) == TOKEN_KEYS for side in result.values() for item in side)
    assert {item["token"] for item in result["plus"][: len(PLANTED_TOKENS)]} == set(PLANTED_TOKENS)
    code, out, _ = run_cli(capsys, *argv, "--k", "4")
    assert code == 0 and "plus" in out and PLANTED_TOKENS[0] in out


@pytest.mark.parametrize("kind", ["vo", "qk"])
def test_head_diff_json_is_the_engines_with_the_filters(capsys, paths, kind):
    layer, head = PLANTED_HEAD
    code, out, _ = run_cli(
        capsys, "diff", paths["base"], paths["tuned"], "--unit", kind, "--layer", str(layer), "--index", str(head),
        "--k", "5", "--only-alnum", "--exclude-same", "--json",
    )  # fmt: skip
    result = json.loads(out)
    assert code == 0 and all(set(item) == PAIR_KEYS for side in result.values() for item in side)
    base, tuned = open_model(paths["base"]), open_model(paths["tuned"])
    args = build_parser().parse_args(["diff", "a", "b", "--only-alnum", "--exclude-same"])
    engine = unit_diff(
        base, tuned, kind, layer, head, 5,
        vocab_filter_from_args(args, base),
        pair_filter_from_args(args),
    )  # fmt: skip
    assert result == json.loads(json.dumps(engine.to_dict()))


def test_align_json(capsys, paths):
    code, out, _ = run_cli(capsys, "align", paths["base"], paths["tuned"], "--part", "wk", "--json")
    result = json.loads(out)
    assert code == 0 and set(result) == {"part", "similarity", "matching"} and result["part"] == "wk"
    expected = align_layers(open_model(paths["base"]), open_model(paths["tuned"]), "wk")
    assert result == expected.to_dict() and result["matching"] == [[0, 0], [1, 1]]
    code, out, _ = run_cli(capsys, "align", paths["base"], paths["tuned"])
    assert code == 0 and "ffn-v" in out and "matching: A0-B0, A1-B1" in out


def test_align_rows_of_one_unit(capsys, paths):
    """--layer/--index add B's best rows; without them the output is the layer similarity, unchanged."""
    argv = ["align", paths["base"], paths["wider"], "--part", "wo", "--layer", "1", "--index", "2"]
    code, out, _ = run_cli(capsys, *argv, "--top", "3", "--json")
    result = json.loads(out)
    assert code == 0 and set(result) == {"part", "layer", "index", "rows"}
    assert (result["part"], result["layer"], result["index"]) == ("wo", 1, 2)
    expected = most_correlated_rows(open_model(paths["base"]), open_model(paths["wider"]), "wo", 1, 2, 3)
    assert result["rows"] == [row.to_record() for row in expected] and len(expected) == 3
    assert all(set(row) == {"layer", "index", "corr"} for row in result["rows"])
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0 and "head 2" in out and len(out.splitlines()) == 2 + 10 - 2  # 8 heads in all: 4 per layer


@pytest.mark.parametrize(
    ("command", "other", "extra", "message"),
    [
        ("diff", "gpt2", [], "different vocabularies"),
        ("diff", "gpt2", ["--unit", "vo", "--layer", "0", "--index", "0"], "different vocabularies"),
        ("align", "gpt2", [], "different vocabularies"),
        ("diff", "wider", [], "d_ff 64 vs 128"),
        ("diff", "wider", ["--unit", "neuron-K", "--layer", "0", "--index", "0"], "d_ff 64 vs 128"),
        ("diff", "tuned", ["--unit", "vo"], "--unit needs --layer"),
        ("diff", "tuned", ["--layer", "0"], "give --unit"),
        ("diff", "tuned", ["--unit", "vo", "--layer", "9", "--index", "0"], "layer 9 is out of range"),
        ("align", "tuned", ["--layer", "0"], "give both"),
        ("align", "tuned", ["--layer", "0", "--index", "0", "--top", "0"], "--top must be at least 1"),
        ("align", "tuned", ["--part", "wq", "--layer", "0", "--index", "9"], "head 9 is out of range"),
        ("align", "gpt2", ["--layer", "0", "--index", "0"], "different vocabularies"),
    ],
)
def test_refusals_are_one_line_with_exit_2(capsys, paths, command, other, extra, message):
    code, out, err = run_cli(capsys, command, paths["base"], paths[other], *extra, "--json")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
