"""`python -m embspace annotations set|list|export|import` through cli.main: the contract and one-line errors."""

import json
import sqlite3
from pathlib import Path

import pytest

from embspace import open_model
from embspace.annotations.store import DB_FILE
from embspace.cli.main import main
from embspace.model.sources import DEFAULT_MODEL


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("EMBSPACE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("EMBSPACE_ANNOTATIONS", raising=False)
    monkeypatch.delenv("EMBSPACE_ANNOTATIONS_SEED", raising=False)
    return tmp_path / "data"


def run_cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as usage_error:  # argparse: a usage mistake
        code = usage_error.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_set_then_list_json_on_the_bundled_default(capsys):
    code, out, _ = run_cli(
        capsys,
        "annotations",
        "set",
        "--kind",
        "vo",
        "--layer",
        "5",
        "--index",
        "3",
        "--label",
        "copies numbers",
        "--note",
        "digits *and* numerals",
        "--author",
        "ada",
    )
    assert code == 0 and "version 1" in out
    code, out, _ = run_cli(capsys, "annotations", "list", "--json")
    records = json.loads(out)
    assert code == 0 and len(records) == 1
    record = records[0]
    assert {"kind", "layer", "index", "label", "note", "version"} <= set(record)
    assert (record["kind"], record["layer"], record["index"], record["label"], record["note"], record["version"]) == (
        "vo",
        5,
        3,
        "copies numbers",
        "digits *and* numerals",
        1,
    )
    assert (record["model"], record["author"]) == (DEFAULT_MODEL, "ada")


def test_set_keeps_the_note_and_bumps_the_version(capsys, tiny_model):
    model = str(tiny_model("gpt2"))
    common = ("annotations", "set", model, "--kind", "neuron", "--layer", "1", "--index", "0")
    assert run_cli(capsys, *common, "--label", "a", "--note", "kept")[0] == 0
    assert run_cli(capsys, *common, "--label", "b")[0] == 0
    code, out, _ = run_cli(capsys, "annotations", "list", model, "--json")
    assert [(r["label"], r["note"], r["version"]) for r in json.loads(out)] == [("b", "kept", 2)]
    code, out, _ = run_cli(capsys, "annotations", "list", model)
    assert code == 0 and "kept" in out and "neuron" in out


def test_keyed_by_model_and_revision(capsys, tiny_model):
    gpt2, bert = str(tiny_model("gpt2")), str(tiny_model("bert"))
    run_cli(capsys, "annotations", "set", gpt2, "--kind", "qk", "--layer", "0", "--index", "0", "--label", "g")
    assert json.loads(run_cli(capsys, "annotations", "list", bert, "--json")[1]) == []
    assert len(json.loads(run_cli(capsys, "annotations", "list", gpt2, "--json")[1])) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--kind", "vo", "--layer", "2", "--index", "0", "--label", "x"), "layer 2 is out of range"),
        (("--kind", "qk", "--layer", "0", "--index", "99", "--label", "x"), "head 99 is out of range"),
        (("--kind", "neuron", "--layer", "0", "--index", "-1", "--label", "x"), "index must be a whole number"),
        (("--kind", "vo", "--layer", "0", "--index", "0", "--label", "x" * 2**20), "label is 1,048,576 characters"),
        (("--kind", "vo", "--layer", "0", "--index", "0", "--label", "x", "--base-version", "3"), "changed since"),
        (("--kind", "heads", "--layer", "0", "--index", "0", "--label", "x"), "invalid choice"),
    ],
)
def test_bad_set_exits_2_with_one_line_and_writes_nothing(capsys, tiny_model, data_dir, argv, message):
    code, out, err = run_cli(capsys, "annotations", "set", str(tiny_model("gpt2")), *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    if (data_dir / DB_FILE).exists():
        with sqlite3.connect(data_dir / DB_FILE) as conn:
            assert conn.execute("SELECT count(*) FROM annotations").fetchone()[0] == 0


def test_export_import_round_trip_with_plan_and_dry_run(capsys, tiny_model, tmp_path, monkeypatch):
    model = str(tiny_model("gpt2"))
    for index, label in enumerate(["first names", "sports"]):
        run_cli(
            capsys, "annotations", "set", model, "--kind", "vo", "--layer", "1", "--index", str(index), "--label", label
        )
    out_file = tmp_path / "set.json"
    code, out, _ = run_cli(capsys, "annotations", "export", model, "--out", str(out_file))
    assert code == 0 and "wrote 2 annotations" in out
    exported = json.loads(out_file.read_text(encoding="utf-8"))
    assert exported["model"] == str(Path(model).resolve())

    monkeypatch.setenv("EMBSPACE_DATA_DIR", str(tmp_path / "elsewhere"))
    code, out, err = run_cli(capsys, "annotations", "import", model, str(out_file), "--dry-run")
    assert code == 0 and "2 to add" in out and "dry run" in err
    assert json.loads(run_cli(capsys, "annotations", "list", model, "--json")[1]) == []
    code, out, err = run_cli(capsys, "annotations", "import", model, str(out_file))
    assert code == 0 and "2 annotations written" in err
    listed = json.loads(run_cli(capsys, "annotations", "list", model, "--json")[1])
    assert [(r["index"], r["label"]) for r in listed] == [(0, "first names"), (1, "sports")]


def test_import_refuses_conflicts_unless_told_how(capsys, tiny_model, tmp_path):
    model = str(tiny_model("gpt2"))
    common = ("annotations", "set", model, "--kind", "vo", "--layer", "0", "--index", "1")
    run_cli(capsys, *common, "--label", "original")
    out_file = tmp_path / "set.json"
    run_cli(capsys, "annotations", "export", model, "--out", str(out_file))
    doc = json.loads(out_file.read_text())
    doc["annotations"][0]["label"] = "from the file"
    out_file.write_text(json.dumps(doc))
    run_cli(capsys, *common, "--label", "edited here")  # version 2, newer than the file's 1
    code, out, err = run_cli(capsys, "annotations", "import", model, str(out_file))
    assert code == 2 and "conflict" in out and "nothing was imported" in err and "--on-conflict" in err
    assert json.loads(run_cli(capsys, "annotations", "list", model, "--json")[1])[0]["label"] == "edited here"
    code, _, _ = run_cli(capsys, "annotations", "import", model, str(out_file), "--on-conflict", "overwrite")
    assert code == 0
    assert json.loads(run_cli(capsys, "annotations", "list", model, "--json")[1])[0]["label"] == "from the file"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"schema": "embspace-annotations", "version": 7, "model": "m", "annotations": []}', "schema version 7"),
    ],
)
def test_import_of_a_bad_file_exits_2(capsys, tiny_model, tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, _, err = run_cli(capsys, "annotations", "import", str(tiny_model("gpt2")), str(bad))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_import_of_another_models_file_needs_the_flag(capsys, tiny_model, tmp_path):
    gpt2, bert = str(tiny_model("gpt2")), str(tiny_model("bert"))
    run_cli(capsys, "annotations", "set", gpt2, "--kind", "vo", "--layer", "0", "--index", "0", "--label", "g")
    out_file = tmp_path / "gpt2.json"
    run_cli(capsys, "annotations", "export", gpt2, "--out", str(out_file))
    code, _, err = run_cli(capsys, "annotations", "import", bert, str(out_file))
    assert code == 2 and "not of the opened model" in err
    assert run_cli(capsys, "annotations", "import", bert, str(out_file), "--allow-other-model")[0] == 0
    assert json.loads(run_cli(capsys, "annotations", "list", bert, "--json")[1])[0]["label"] == "g"


def test_read_only_mode_lists_with_a_note_and_refuses_set(capsys, tiny_model, monkeypatch):
    model = str(tiny_model("gpt2"))
    run_cli(capsys, "annotations", "set", model, "--kind", "vo", "--layer", "0", "--index", "0", "--label", "kept")
    monkeypatch.setenv("EMBSPACE_ANNOTATIONS", "readonly")
    code, out, err = run_cli(capsys, "annotations", "list", model, "--json")
    assert code == 0 and json.loads(out)[0]["label"] == "kept" and "switched off" in err
    code, _, err = run_cli(
        capsys, "annotations", "set", model, "--kind", "vo", "--layer", "0", "--index", "0", "--label", "changed"
    )
    assert code == 2 and "nothing was saved" in err and len(err.strip().splitlines()) == 1


def test_a_corrupt_database_still_lists_and_refuses_set(capsys, tiny_model, data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / DB_FILE).write_bytes(b"garbage" * 1000)
    model = str(tiny_model("gpt2"))
    code, out, err = run_cli(capsys, "annotations", "list", model, "--json")
    assert code == 0 and json.loads(out) == [] and "not a database" in err
    code, _, err = run_cli(
        capsys, "annotations", "set", model, "--kind", "vo", "--layer", "0", "--index", "0", "--label", "x"
    )
    assert code == 2 and "not a database" in err and len(err.strip().splitlines()) == 1


def test_model_shape_used_for_checks_is_the_opened_models(tiny_model):
    """The ranges the CLI tests rely on: the tiny GPT-2 has 2 layers and fewer than 99 heads."""
    shape = open_model(str(tiny_model("gpt2"))).shape
    assert shape.n_layers == 2 and shape.n_heads < 99
