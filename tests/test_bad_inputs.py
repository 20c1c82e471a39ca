"""Bad input a new user (or a damaged checkpoint) brings: one clear message or a correct result with a
visible note, never a traceback, a silent wrong table or a process that never ends.
docs/TESTING.md lists every case with its test."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from embspace import EmbspaceError, open_model
from embspace.cli.main import main
from embspace.compute.projections import copying_scores, head_top_pairs, neuron_top_tokens
from embspace.errors import Busy, CustomCodeRefused, InconsistentModel, NonFiniteWeights
from embspace.export import export_heads
from embspace.model.embedding_space import MAX_K

REPO = Path(__file__).parent.parent
D_MODEL, D_HEAD = 32, 8  # tests/tiny_models.py: d_model 32, 4 heads


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def private_copy(tiny_model, arch: str, tmp_path: Path) -> Path:
    """A writable copy of the shared tiny model."""
    return Path(shutil.copytree(tiny_model(arch), tmp_path / arch))


def edit_config(directory: Path, **changes) -> None:
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, **changes}))


def edit_weights(directory: Path, edit) -> None:
    path = directory / "model.safetensors"
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


def broken_gpt2_copy(tiny_model, directory: Path) -> Path:
    """A copy of tiny GPT-2 in `directory` whose layer 1 W_V has a NaN in head 2 and an Inf in head 3."""
    directory = Path(shutil.copytree(tiny_model("gpt2"), directory / "gpt2"))

    def poison(tensors):
        c_attn = tensors["transformer.h.1.attn.c_attn.weight"]  # Conv1D [d_model, q | k | v]
        c_attn[0, 2 * D_MODEL + 2 * D_HEAD] = math.nan
        c_attn[5, 2 * D_MODEL + 3 * D_HEAD + 1] = math.inf

    edit_weights(directory, poison)
    return directory


@pytest.fixture(scope="module")
def broken_gpt2(tiny_model, tmp_path_factory) -> Path:
    return broken_gpt2_copy(tiny_model, tmp_path_factory.mktemp("broken"))


# --- NaN / Inf weights ------------------------------------------------------------------------


def test_copying_scores_are_nan_for_broken_heads_not_zero(broken_gpt2, tiny_model):
    scores = copying_scores(open_model(str(broken_gpt2)))
    healthy = copying_scores(open_model(str(tiny_model("gpt2"))))
    assert math.isnan(scores[1, 2]) and math.isnan(scores[1, 3])
    mask = ~torch.isnan(torch.tensor(scores)).numpy()
    assert mask.sum() == scores.size - 2
    assert scores[mask].tolist() == pytest.approx(healthy[mask].tolist())  # the other heads are unaffected


def test_cli_copying_prints_nan_and_names_the_broken_tensor(broken_gpt2, capsys):
    code, out, err = run_cli(capsys, "copying", broken_gpt2)
    assert code == 0
    row = out.splitlines()[2].split()
    assert row[0] == "1" and row[3:5] == ["nan", "nan"] and "nan" not in out.splitlines()[1]
    assert "layer 1 heads 2, 3" in err and "W_V" in err
    code, out, _ = run_cli(capsys, "copying", broken_gpt2, "--json")
    assert json.loads(out)["copying_scores"][1][2:4] == [None, None]  # valid JSON: null, not NaN


def test_pairs_and_neurons_of_a_broken_layer_name_the_tensor(broken_gpt2, capsys):
    model = open_model(str(broken_gpt2))
    with pytest.raises(NonFiniteWeights, match=r"layer 1 .*W_V \(heads 2, 3\)"):
        head_top_pairs(model, "vo", 1, 0, 5)
    with pytest.raises(NonFiniteWeights, match="W_V"):
        neuron_top_tokens(model, 1, 0, 5)
    assert model.nonfinite_tensors(1) == {"W_V": (2, 3)} and model.nonfinite_tensors(0) == {}
    assert len(head_top_pairs(model, "vo", 0, 0, 5).scores) == 5  # a healthy layer still works
    code, out, err = run_cli(capsys, "pairs", broken_gpt2, "--layer", 1, "--head", 0)
    assert code == 2 and out == "" and err.count("\n") == 1 and "NaN or Inf" in err


def test_an_embedding_matrix_with_nan_is_refused_at_open(tiny_model, tmp_path):
    directory = private_copy(tiny_model, "bert", tmp_path)
    edit_weights(directory, lambda t: t["bert.embeddings.word_embeddings.weight"].__setitem__((7, 3), math.nan))
    with pytest.raises(NonFiniteWeights, match="1 token rows"):
        open_model(str(directory))


# --- model directories that do not hold together ------------------------------------------------


def test_a_model_without_tokenizer_files_is_refused_not_shown_as_pad_tokens(tiny_model, tmp_path, capsys):
    directory = private_copy(tiny_model, "gpt2", tmp_path)
    for path in directory.iterdir():
        if path.name not in ("config.json", "model.safetensors"):
            path.unlink()
    with pytest.raises(EmbspaceError, match="no tokenizer files"):
        open_model(str(directory))
    code, _, err = run_cli(capsys, "info", directory)
    assert code == 2 and err.count("\n") == 1 and "tokenizer" in err


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"n_embd": 64}, "hidden size 64, but the weights"), ({"n_head": 5}, "5 attention heads do not divide")],
)
def test_config_sizes_that_disagree_with_the_weights_fail_at_open(tiny_model, tmp_path, changes, message):
    directory = private_copy(tiny_model, "gpt2", tmp_path)
    edit_config(directory, **changes)
    with pytest.raises(InconsistentModel, match=message):
        open_model(str(directory))


def test_a_wrong_explicit_head_dim_fails_as_one_error_when_the_layer_is_read(tiny_model, tmp_path):
    directory = private_copy(tiny_model, "mistral", tmp_path)
    edit_config(directory, head_dim=12)  # the weights have 16
    model = open_model(str(directory))
    with pytest.raises(InconsistentModel, match="layer 0's weights do not match config.json"):
        model.layer(0)


@pytest.mark.parametrize("file", ["config.json", "tokenizer_config.json"])
def test_custom_code_is_refused_even_for_a_known_model_type(tiny_model, tmp_path, file):
    directory = private_copy(tiny_model, "gpt2", tmp_path)
    content = json.loads((directory / file).read_text())
    (directory / file).write_text(json.dumps({**content, "auto_map": {"AutoModel": "modeling_x.X"}}))
    with pytest.raises(CustomCodeRefused, match=f"{file} has 'auto_map'.*never runs"):
        open_model(str(directory))


# --- k, rows and token lists ---------------------------------------------------------------------


def test_k_has_an_upper_bound_named_in_the_message(capsys, tiny_model, tmp_path):
    code, out, err = run_cli(capsys, "pairs", tiny_model("gpt2"), "--layer", 0, "--head", 0, "--k", MAX_K + 1)
    assert code == 2 and out == "" and err.count("\n") == 1 and f"between 1 and {MAX_K:,}" in err
    with pytest.raises(EmbspaceError, match="between 1 and 10,000"):
        export_heads(open_model(str(tiny_model("gpt2"))), tmp_path / "x.jsonl", k=MAX_K + 1)


def test_fewer_pairs_than_k_are_announced(capsys, minilm_dir):
    code, out, err = run_cli(
        capsys, "pairs", minilm_dir, "--layer", 0, "--head", 0, "--k", 100, "--tokens", "cat,dog", "--json"
    )
    shown = len(json.loads(out))
    assert code == 0 and 0 < shown < 100
    assert f"only {shown} of 100 pairs pass the filters" in err


def test_fewer_tokens_than_k_are_announced(capsys, minilm_dir):
    code, out, err = run_cli(
        capsys, "neuron", minilm_dir, "--layer", 0, "--neuron", 1, "--k", 50, "--tokens", "cat,dog,house"
    )
    assert code == 0 and "only 6 of 50 tokens pass the filters" in err  # cat, ##cat, dog, ##dog, house, ##house


def test_a_neuron_table_with_no_row_says_so_instead_of_an_empty_header(capsys, minilm_dir):
    code, out, err = run_cli(
        capsys, "neuron", minilm_dir, "--layer", 0, "--neuron", 1, "--tokens", "!,?", "--only-alnum"
    )
    assert code == 0 and out.strip() == "layer 0, neuron 1: no token passes the filters"


def test_words_missing_from_the_vocabulary_are_named(capsys, minilm_dir):
    code, out, err = run_cli(
        capsys, "pairs", minilm_dir, "--layer", 0, "--head", 0, "--k", 3, "--tokens", "cat,qqzzxq, ##dog,zzqqy"
    )
    assert code == 0 and len(out.strip().splitlines()) == 4
    assert "not in the vocabulary, left out: qqzzxq, zzqqy" in err


def test_argparse_errors_are_one_line(capsys):
    for argv in (["pairs", "--layer", "x"], ["nosuch"], ["pairs", "--layer", "0"], ["neuron", "--bogus"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        err = capsys.readouterr().err
        assert exited.value.code == 2 and err.count("\n") == 1 and err.startswith("error: ") and "usage" not in err


# --- export targets ------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/dev/full", "directory", "fifo"])
def test_export_to_something_that_is_not_a_regular_file_is_one_error(tmp_path, tiny_model, target):
    if target == "directory":
        target = str(tmp_path)
    elif target == "fifo":
        target = str(tmp_path / "fifo")
        os.mkfifo(target)
    result = subprocess.run(
        [sys.executable, "-m", "embspace", "export", str(tiny_model("bert")), "--k", "2", "--out", target],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "regular" in result.stderr


HOLD_THE_LOCK = """
import sys, time
from pathlib import Path
from embspace import open_model
from embspace.export import export_heads
model = open_model(sys.argv[1])
def slow(done, total, layer, head):
    Path(sys.argv[3]).touch()
    time.sleep(0.5)
export_heads(model, sys.argv[2], k=2, progress=slow)
"""


def test_a_second_export_into_the_same_file_is_refused_while_the_first_runs(tmp_path, tiny_model, capsys):
    out, started = tmp_path / "heads.jsonl", tmp_path / "started"
    first = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(tiny_model("bert")), str(out), str(started)], cwd=REPO
    )
    try:
        deadline = time.monotonic() + 120
        while not started.exists() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.1)
        assert started.exists(), "the first export never started"
        with pytest.raises(Busy, match="another export is writing to"):
            export_heads(open_model(str(tiny_model("bert"))), out, k=2)
        code, _, err = run_cli(capsys, "export", tiny_model("bert"), "--k", 2, "--out", out)
        assert code == 2 and "another export" in err
    finally:
        assert first.wait(timeout=120) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == len({(json.loads(line)["layer"], json.loads(line)["head"]) for line in lines}) == 8


def test_interrupted_starts_its_own_line_after_the_progress_line(tmp_path, minilm_dir):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "embspace",
            "export",
            str(minilm_dir),
            "--k",
            "2000",
            "--out",
            str(tmp_path / "x.jsonl"),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        cwd=REPO,
    )
    seen = b""
    deadline = time.monotonic() + 120
    while b"[1/72]" not in seen and time.monotonic() < deadline:
        chunk = process.stderr.read1(4096)
        if not chunk:
            break
        seen += chunk
    assert b"[1/72]" in seen, seen.decode(errors="replace")
    process.send_signal(signal.SIGINT)
    rest = process.communicate(timeout=120)[1]
    assert process.returncode == 130
    lines = (seen + rest).decode().split("\n")
    assert lines[-2] == "interrupted" and lines[-3].lstrip("\r").startswith("[")
