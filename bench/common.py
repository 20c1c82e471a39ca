"""What the benchmarks share: the repository root (put on sys.path on import, so `embspace` imports),
the median of repeated timings, and the random GPT-2-medium-shaped checkpoint several of them measure.

Each bench script runs with bench/ as sys.path[0], so it imports this as `common`.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def median_ms(call: Callable[[], object], repeats: int, *, warm: bool = True) -> float:
    """Median wall time of `repeats` calls, in ms rounded to 0.1. warm: one untimed call first, so
    what is read or built once (a layer, a filter mask) is not what is measured."""
    if warm:
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def build_gpt2_medium_shaped(directory: Path) -> None:
    """A random GPT-2-medium-shaped checkpoint (24 layers, 16 heads, d=1024, d_ff=4096, V=50257, ~1.4 GB
    of safetensors) with the tests' byte-level tokenizer, saved once in `directory`."""
    if (directory / "model.safetensors").exists():
        return
    import torch  # heavy: only when a checkpoint is built, so `--help` stays quick
    from transformers import GPT2Config, GPT2LMHeadModel

    sys.path.insert(0, str(ROOT / "tests"))
    from tokenizer_factory import byte_level_tokenizer

    torch.manual_seed(0)
    config = GPT2Config(n_layer=24, n_head=16, n_embd=1024, vocab_size=50257, n_positions=64)
    GPT2LMHeadModel(config).save_pretrained(directory, safe_serialization=True)
    byte_level_tokenizer().save_pretrained(directory)
