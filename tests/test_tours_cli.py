"""`python -m embspace tour export|list|show|import|delete` through cli.main: exit codes, one-line errors, JSON."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from embspace import open_model
from embspace.annotations import AnnotationKey, AnnotationStore
from embspace.cli.main import main
from embspace.model.sources import DEFAULT_MODEL

TOUR = {
    "schema": 1,
    "model": DEFAULT_MODEL,
    "title": "MiniLM in <two> stops",
    "stops": [
        {"kind": "vo", "layer": 5, "index": 7, "note": "a **copying** head", "k": 6, "filters": {"only-ascii": True}},
        {"kind": "neuron", "layer": 3, "index": 17, "note": "<script>alert(1)</script>"},
    ],
}


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("EMBSPACE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("EMBSPACE_ANNOTATIONS", raising=False)
    monkeypatch.delenv("EMBSPACE_ANNOTATIONS_SEED", raising=False)
    return tmp_path / "data"


def run_cli(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as usage_error:
        code = usage_error.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def tour_file(tmp_path, doc=TOUR, name="demo.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_import_list_show_delete(capsys, tmp_path):
    path = tour_file(tmp_path)
    code, out, _ = run_cli(capsys, "tour", "import", path, "--json")
    assert code == 0 and json.loads(out) == {"name": "demo", "version": 1, "stops": 2}
    code, out, _ = run_cli(capsys, "tour", "list", "--json")
    [record] = json.loads(out)
    assert (record["name"], record["version"], record["stops"], record["title"]) == ("demo", 1, 2, TOUR["title"])
    code, out, _ = run_cli(capsys, "tour", "show", "demo", "--json")
    assert code == 0 and json.loads(out) == TOUR  # the JSON is the tour file
    code, out, _ = run_cli(capsys, "tour", "show", "demo")
    assert "2. neuron layer 3 index 17" in out
    code, _, err = run_cli(capsys, "tour", "import", path)
    assert code == 2 and err.count("\n") == 1 and "--replace" in err
    assert run_cli(capsys, "tour", "import", path, "--replace")[0] == 0
    assert json.loads(run_cli(capsys, "tour", "list", "--json")[1])[0]["version"] == 1  # same tour: same version
    code, out, _ = run_cli(capsys, "tour", "delete", "demo")
    assert code == 0 and "deleted" in out
    code, _, err = run_cli(capsys, "tour", "delete", "demo")
    assert code == 2 and err.startswith("error: no tour is named 'demo'") and err.count("\n") == 1
    assert json.loads(run_cli(capsys, "tour", "list", "--json")[1]) == []


def test_data_dir_option_and_read_only_mode(capsys, tmp_path, monkeypatch):
    path, other = tour_file(tmp_path), tmp_path / "other"
    assert run_cli(capsys, "tour", "import", path, "--name", "x", "--data-dir", other)[0] == 0
    assert (other / "tours.sqlite3").is_file()
    assert json.loads(run_cli(capsys, "tour", "list", "--json")[1]) == []  # not in EMBSPACE_DATA_DIR
    monkeypatch.setenv("EMBSPACE_ANNOTATIONS", "readonly")
    code, _, err = run_cli(capsys, "tour", "import", path, "--data-dir", other)
    assert code == 2 and "readonly" in err and err.count("\n") == 1
    code, out, _ = run_cli(capsys, "tour", "list", "--json", "--data-dir", other)
    assert code == 0 and [r["name"] for r in json.loads(out)] == ["x"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": 2}, "error: tour schema must be 1"),
        ({"stops": [TOUR["stops"][0], {"kind": "vo", "layer": 5, "index": 12}]}, "error: stop 2: head 12 is not in"),
        ({"stops": [{"kind": "neuron", "layer": 6, "index": 0}]}, "error: stop 1: layer 6 is not in"),
        ({"stops": [{"kind": "vo", "layer": 0, "index": 0, "k": 5000}]}, "error: stop 1: k must be"),
    ],
)
def test_export_refuses_bad_tours_in_one_line(capsys, tmp_path, change, message):
    path = tour_file(tmp_path, {**TOUR, **change})
    code, _, err = run_cli(capsys, "tour", "export", path, "--out", tmp_path / "out.html")
    assert code == 2 and err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "out.html").exists()


def test_export_of_a_missing_or_broken_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "tour", "export", tmp_path / "none.json", "--out", tmp_path / "o.html")
    assert code == 2 and "cannot read the tour file" in err and err.count("\n") == 1
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    code, _, err = run_cli(capsys, "tour", "export", broken, "--out", tmp_path / "o.html")
    assert code == 2 and err.count("\n") == 1


def test_export_writes_one_page_with_every_stop(capsys, tmp_path):
    out = tmp_path / "tour.html"
    code, stdout, err = run_cli(capsys, "tour", "export", tour_file(tmp_path), "--out", out, "--k", 5)
    assert code == 0 and "wrote" in stdout
    assert [line for line in err.splitlines() if line.startswith("stop ")] == [
        "stop 1 / 2: vo layer 5 index 7",
        "stop 2 / 2: neuron layer 3 index 17",
    ]
    page = out.read_text(encoding="utf-8")
    assert page.count("<table>") == 2 and page.count('class="plot"') == 2
    bodies = [part.split("</tbody>")[0] for part in page.split("<tbody>")[1:]]
    assert [body.count("<tr>") for body in bodies] == [6, 5]  # the stop's own k, then --k for a stop without one
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page
    assert "MiniLM in &lt;two&gt; stops" in page and "1 / 2" in page and "2 / 2" in page
    assert "embspace 0.1" in page and DEFAULT_MODEL in page
    assert '"colorscale": "Viridis"' in page and "score %{marker.color:.4f}" in page  # coloured, hover score
    assert "Plotly.newPlot" in page and "https://" not in page.split("</head>")[1]
    assert "http" not in page.split("<body>")[1].replace("http://www.w3.org", "")  # no link out of the page


def test_export_of_a_stored_tour_carries_the_views_labels(capsys, tmp_path, data_dir):
    key = AnnotationKey.for_view(open_model(DEFAULT_MODEL), "vo", 5, 7)
    AnnotationStore.open(data_dir, read_only=False).save(key, "copies <plurals>")
    assert run_cli(capsys, "tour", "import", tour_file(tmp_path), "--name", "stored")[0] == 0
    out = tmp_path / "stored.html"
    code, _, err = run_cli(capsys, "tour", "export", "stored", "--out", out)
    assert code == 0, err
    page = out.read_text(encoding="utf-8")
    assert "L5 H7 · W_VO — copies &lt;plurals&gt;</h2>" in page and "L3 N17 · FFN neuron</h2>" in page
    code, _, err = run_cli(capsys, "tour", "export", "nothing-stored", "--out", out)
    assert code == 2 and "no stored tour of that name" in err


def test_the_cli_still_starts_without_scikit_learn():
    """`tour export` needs t-SNE, yet importing the CLI (every command does) leaves scikit-learn unloaded."""
    code = "import sys, embspace.cli.main; print('sklearn' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"
