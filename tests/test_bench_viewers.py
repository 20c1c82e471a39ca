"""bench/bench_viewers.py against a real `streamlit run app.py` (bundled MiniLM): every protocol-level
viewer gets its own head's pairs table with the right top pair, and the script says so in its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "bench_viewers.py"


def test_two_viewers_see_their_heads_and_top_pairs(tmp_path):
    """One uncached view alone and two new sessions on a computed head: exit 0, every view checked."""
    out = tmp_path / "viewers.json"
    command = [sys.executable, str(BENCH), "--viewers", "2", "--cases", "alone", "same", "--json", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| config as is | 1 uncached head, alone |" in done.stdout
    result = json.loads(out.read_text())
    assert result["ok"] is True
    (setting,) = result["settings"]
    assert [(case["name"], case["viewers"]) for case in setting["cases"]] == [
        ("first view (untimed)", 1),
        ("alone", 1),
        ("same", 2),
    ]
    for case in setting["cases"]:
        assert len(case["views"]) == case["viewers"]
        for view in case["views"]:
            assert view["errors"] == [] and view["ok"] is True
            assert view["shown_head"] == [view["layer"], view["head"]]
            assert view["stem"] == f"vo-layer{view['layer']}-head{view['head']}"
            # a table was read: two non-empty tokens, the ones computed apart from the server
            assert view["top_pair"] is not None and all(view["top_pair"])
            assert view["top_pair"] == view["expected"]
            assert 0 < view["seconds"] < 240
    first, alone, same = ([(view["layer"], view["head"]) for view in case["views"]] for case in setting["cases"])
    assert alone != first and same == first * 2  # alone: an uncached head; same: the first view's, computed
    assert setting["peak_rss_mb"] > 100 and setting["cases"][1]["cpu_s"] > 0


def test_help_of_both_scripts():
    for script in ("bench_viewers.py", "bench_click.py"):
        done = subprocess.run(
            [sys.executable, str(ROOT / "bench" / script), "--help"], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0 and "usage:" in done.stdout, done.stderr
