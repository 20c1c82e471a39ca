"""embspace.runtime: the process policy is set once, and top_pairs reads it instead of switching it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from embspace import runtime

ROOT = Path(__file__).resolve().parents[1]


def run_fresh(code: str) -> dict:
    """Run `code` in a fresh interpreter (the policy is process-wide) and parse its last line as JSON."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_configure_sets_the_policy_once_and_is_idempotent():
    seen = run_fresh(
        "import json, torch\n"
        "from threadpoolctl import threadpool_info\n"
        "from embspace import runtime\n"
        "assert runtime.current() is None\n"
        "torch.set_float32_matmul_precision('medium')\n"
        "first = runtime.configure(threads=3)\n"
        "second = runtime.configure(threads=1)\n"
        "print(json.dumps({'same': first is second, 'workers': second.workers, 'scan': runtime.scan_workers(),\n"
        "  'torch_threads': torch.get_num_threads(), 'precision': torch.get_float32_matmul_precision(),\n"
        "  'pools': sorted({p['num_threads'] for p in threadpool_info()})}))"
    )
    assert seen["same"] and seen["workers"] == 3 and seen["scan"] == 3
    assert seen["torch_threads"] == 1 and seen["precision"] == "highest"
    assert seen["pools"] in ([], [1])


def test_cli_configures_the_process_at_start_up():
    seen = run_fresh(
        "import json, torch\n"
        "from embspace import runtime\n"
        "from embspace.cli.main import main\n"
        "main(['info'])\n"
        "print(json.dumps({'policy': runtime.current() is not None, 'torch_threads': torch.get_num_threads()}))"
    )
    assert seen == {"policy": True, "torch_threads": 1}


def test_unconfigured_scan_uses_one_worker_when_torch_is_multithreaded():
    """Without a policy, two layers of threads (scan workers x torch's pool) must not stack."""
    assert runtime.current() is None or runtime.scan_workers() == runtime.current().workers
    if runtime.current() is None:
        expected = runtime.available_cores() if torch.get_num_threads() == 1 else 1
        assert runtime.scan_workers() == expected


def test_configure_rejects_bad_thread_counts():
    for bad in (0, -1, 1.5, True):
        try:
            runtime.configure(threads=bad)
        except ValueError as error:
            assert "threads" in str(error)
        else:
            raise AssertionError(f"configure accepted threads={bad!r}")


def test_scan_workers_at_most_limits_this_thread_only():
    seen = run_fresh(
        "import json, threading\n"
        "from embspace import runtime\n"
        "runtime.configure(threads=3)\n"
        "seen = {}\n"
        "with runtime.scan_workers_at_most(1):\n"
        "    seen['inside'] = runtime.scan_workers()\n"
        "    other = threading.Thread(target=lambda: seen.update(other=runtime.scan_workers()))\n"
        "    other.start(); other.join()\n"
        "    with runtime.scan_workers_at_most(5):\n"
        "        seen['nested'] = runtime.scan_workers()\n"
        "    seen['restored'] = runtime.scan_workers()\n"
        "seen['after'] = runtime.scan_workers()\n"
        "print(json.dumps(seen))"
    )
    assert seen == {"inside": 1, "other": 3, "nested": 3, "restored": 1, "after": 3}
