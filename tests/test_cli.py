"""`python -m embspace`: output formats, filters, and one-line errors for bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from embspace import DEFAULT_MODEL, PairFilter, VocabFilter, open_model
from embspace.cli.args import model_source
from embspace.cli.main import build_parser, main
from embspace.compute.projections import head_top_pairs


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_info_json_on_the_bundled_default(capsys):
    code, out, _ = run_cli(capsys, "info", "--json")
    info = json.loads(out)
    assert code == 0
    assert (info["architecture"], info["n_layers"], info["n_heads"], info["vocab_size"]) == ("bert", 6, 12, 30522)
    assert info["origin"] == "bundled" and info["embedding"] == "input"


def test_pairs_json_matches_the_engine(capsys, tiny_model):
    path = str(tiny_model("gpt2"))
    code, out, _ = run_cli(
        capsys,
        "pairs",
        path,
        "--kind",
        "qk",
        "--layer",
        "1",
        "--head",
        "0",
        "--k",
        "7",
        "--only-ascii",
        "--exclude-same",
        "--negative",
        "--json",
    )
    assert code == 0
    pairs = json.loads(out)
    assert len(pairs) == 7
    assert set(pairs[0]) == {"row_id", "col_id", "row_token", "col_token", "score"}
    expected = head_top_pairs(
        open_model(path), "qk", 1, 0, 7, VocabFilter(only_ascii=True), PairFilter(exclude_same=True), negative=True
    )
    assert [p["row_id"] for p in pairs] == expected.row_ids.tolist()
    assert [p["score"] for p in pairs] == pytest.approx(expected.scores.tolist())
    assert pairs[0]["score"] <= pairs[-1]["score"] < 0  # most negative first


def test_neuron_json_has_the_four_columns(capsys, minilm_dir):
    code, out, _ = run_cli(
        capsys, "neuron", str(minilm_dir), "--layer", "2", "--neuron", "17", "--k", "5", "--only-alnum", "--json"
    )
    result = json.loads(out)
    assert code == 0
    assert list(result)[:4] == ["K", "V", "-K", "-V"]
    for column in result.values():
        assert len(column) == 5 and set(column[0]) == {"token_id", "token", "score"}
        assert all(t["token"].removeprefix("##").isalnum() for t in column)
    assert result["K"][0]["score"] == pytest.approx(-min(-t["score"] for t in result["K"]))


def test_corpus_restricts_tokens(capsys, tmp_path, minilm_dir):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps({"text": t}) for t in ["the cat sat on the mat", "a dog and a cat"]))
    code, out, _ = run_cli(
        capsys,
        "neuron",
        str(minilm_dir),
        "--layer",
        "0",
        "--neuron",
        "3",
        "--k",
        "50",
        "--corpus",
        str(corpus),
        "--json",
    )
    assert code == 0
    tokens = {t["token"] for t in json.loads(out)["V"]}
    assert tokens <= {"the", "cat", "sat", "on", "mat", "a", "dog", "and"}
    assert len(tokens) == 8  # k larger than the corpus: every corpus token, no more


def test_explicit_token_list_restricts_both_sides(capsys, tmp_path, minilm_dir):
    words = tmp_path / "words.txt"
    words.write_text("cat\nDog\nhouse\n##s\n", encoding="utf-8")
    code, out, _ = run_cli(
        capsys, "pairs", str(minilm_dir), "--layer", "1", "--head", "2", "--k", "100", "--tokens", str(words), "--json"
    )
    pairs = json.loads(out)
    assert code == 0
    # A listed word keeps its word-start and continuation tokens alike (matching is on normalised forms).
    expected = {"cat", "##cat", "dog", "##dog", "house", "##house", "s", "##s"}
    assert {p["row_token"] for p in pairs} == {p["col_token"] for p in pairs} == expected
    assert len(pairs) == 64  # 8 x 8: every pair of listed tokens, no more
    code, _, err = run_cli(capsys, "pairs", "--layer", "0", "--head", "0", "--tokens", "qqqzzzxx")
    assert code == 2 and "none of the tokens" in err


def test_text_output_is_a_readable_table(capsys, minilm_dir):
    code, out, _ = run_cli(capsys, "pairs", str(minilm_dir), "--layer", "0", "--head", "1", "--k", "3")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("W_VO layer 0, head 1") and len(lines) == 4


def test_export_is_resumable(capsys, tmp_path, tiny_model):
    path, out = str(tiny_model("bert")), tmp_path / "heads.jsonl"
    code, stdout, _ = run_cli(capsys, "export", path, "--kind", "vo", "--k", "4", "--out", str(out), "--json")
    assert code == 0 and json.loads(stdout)["written"] == 2 * 4
    code, stdout, _ = run_cli(capsys, "export", path, "--kind", "vo", "--k", "4", "--out", str(out), "--json")
    assert json.loads(stdout) | {"out": None} == {"out": None, "written": 0, "skipped": 8, "heads": 8}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["info", "/no/such/model"], "No such model directory"),
        (["pairs", "--layer", "6", "--head", "0"], "layer 6 is out of range"),
        (["pairs", "--layer", "0", "--head", "12"], "head 12 is out of range"),
        (["neuron", "--layer", "0", "--neuron", "1536"], "neuron 1536 is out of range"),
        (["neuron", "--layer", "0", "--neuron", "0", "--corpus", "/no/corpus.txt"], "corpus"),
        (["pairs", "--layer", "0", "--head", "0", "--k", "0"], "--k must be between 1 and 10,000"),
    ],
)
def test_bad_input_is_one_clear_line(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_unknown_architecture_lists_supported_ones(capsys, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mamba"}))
    code, _, err = run_cli(capsys, "info", str(tmp_path))
    assert code == 2 and "gpt2" in err and "llama" in err and "Traceback" not in err


class Payload:
    """Any class: unpickling it would need code from outside torch's allow-list."""


def test_real_entry_point_exits_nonzero_without_traceback(tmp_path):
    """A pickle that needs code execution to load: refused by the real `python -m embspace`."""
    import torch

    model_dir = tmp_path / "evil"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(
        json.dumps({"model_type": "gpt2", "n_layer": 1, "n_head": 1, "n_embd": 4, "vocab_size": 8})
    )
    torch.save({"wte.weight": Payload()}, model_dir / "pytorch_model.bin")
    result = subprocess.run(
        [sys.executable, "-m", "embspace", "info", str(model_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent.parent,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "code" in result.stderr


# --- the model argument: positional (a contract) or --model, the same for every command ----------------

MODEL_COMMANDS = [
    ["info"],
    ["neuron", "--layer", "0", "--neuron", "0"],
    ["pairs", "--layer", "0", "--head", "0"],
    ["export", "--out", "heads.jsonl"],
    ["copying"],
    ["atlas", "build", "--out", "atlas"],
    ["annotations", "set", "--kind", "vo", "--layer", "0", "--index", "0", "--label", "x"],
    ["annotations", "list"],
    ["annotations", "export", "--out", "a.json"],
    ["annotations", "import", "a.json"],
]


@pytest.mark.parametrize("argv", MODEL_COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_every_model_command_takes_the_model_positional_or_as_model_option(argv):
    parser = build_parser()
    words = 2 if argv[0] in ("atlas", "annotations") else 1  # the command's own words come first
    as_positional = parser.parse_args([*argv[:words], "some/model", *argv[words:]])
    as_option = parser.parse_args([*argv, "--model", "some/model"])
    neither = parser.parse_args(argv)
    assert model_source(as_positional, parser) == model_source(as_option, parser) == "some/model"
    assert model_source(neither, parser) == DEFAULT_MODEL
    assert vars(as_option).get("file") == vars(as_positional).get("file")  # import's FILE stays FILE


def test_model_option_opens_the_same_model_as_the_positional(capsys, tiny_model):
    path = str(tiny_model("gpt2"))
    pairs = ["pairs", "--layer", "1", "--head", "2", "--k", "5", "--json"]
    code, by_option, _ = run_cli(capsys, *pairs, "--model", path)
    assert code == 0 and by_option == run_cli(capsys, pairs[0], path, *pairs[1:])[1]
    code, out, _ = run_cli(capsys, "info", "--model", path, "--json")
    assert code == 0 and json.loads(out)["architecture"] == "gpt2"
    assert run_cli(capsys, "copying", path, "--model", path, "--json")[0] == 0  # the same model twice is fine


def test_two_different_models_is_a_one_line_usage_error(capsys, tiny_model):
    with pytest.raises(SystemExit) as exited:
        main(["info", str(tiny_model("gpt2")), "--model", str(tiny_model("bert"))])
    captured = capsys.readouterr()
    assert exited.value.code == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: two models given")


def test_search_warns_when_its_first_word_is_a_model_directory(capsys, tiny_model, tmp_path, monkeypatch):
    """`search gpt2 king` with ./gpt2 a model: a one-line warning, and both words are still searched."""
    (tmp_path / "gpt2").symlink_to(tiny_model("gpt2"), target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "search", "gpt2", "king", "--json", "--limit", "1")
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert code == 0 and len(warnings) == 1 and "--model gpt2" in warnings[0]
    searched = {hit["token"] for hit in json.loads(out)}  # the default MiniLM's tokens of both words
    assert "king" in searched and searched & {"gp", "##t", "##2"}


@pytest.mark.parametrize("first", [DEFAULT_MODEL, "gpt2", "example-org/hosted-model"])
def test_search_warns_when_its_first_word_is_a_known_preset(capsys, monkeypatch, first):
    monkeypatch.setenv("EMBSPACE_ALLOWED_MODELS", "example-org/hosted-model")
    # --atlas /nonexistent ends the command right after the warning: no live search of the default model.
    code, _, err = run_cli(capsys, "search", first, "king", "--atlas", "/nonexistent")
    assert code == 2 and err.splitlines()[0] == (
        f"warning: {first!r} is searched as a word, on the default model; to search in it, use --model {first}"
    )
    assert err.splitlines()[1].startswith("error: ")


def test_search_does_not_warn_with_model_option_or_a_plain_word(capsys, tiny_model):
    path = str(tiny_model("gpt2"))
    code, _, err = run_cli(capsys, "search", "--model", path, path, "kot", "--json", "--limit", "1")
    assert code == 0 and "warning" not in err
    code, _, err = run_cli(capsys, "search", "--model", path, "kot", "--json", "--limit", "1")
    assert code == 0 and "warning" not in err
    code, _, err = run_cli(capsys, "search", "example-org/not-a-preset", "--atlas", "/nonexistent")
    assert code == 2 and "warning" not in err


def test_help_names_the_program_as_it_was_run(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["search", "--help"])  # the console script's `main()`
    assert exited.value.code == 0 and capsys.readouterr().out.startswith("usage: embspace search ")
    result = subprocess.run(
        [sys.executable, "-m", "embspace", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0 and result.stdout.startswith("usage: python -m embspace ")
