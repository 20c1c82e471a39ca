"""Neuron view latency on the bundled MiniLM once the layer is loaded, against the notebooks' way.

The notebooks' `top_tokens` rebuilds its filter from the vocabulary with Python string checks on
every call; embspace computes a filter's mask once per model. Both are timed in the same run.

    .venv/bin/python bench/bench_neuron.py
"""

from __future__ import annotations

import torch
from common import median_ms  # puts the repository root on sys.path

from embspace import VocabFilter, neuron_top_tokens, open_model


def notebook_top_tokens(vector, emb, tokenizer, k=30):
    """The seeds' `top_tokens(only_ascii=True)`: mask rebuilt from the vocab on each call."""
    scores = vector @ emb
    ignored = [idx for tok, idx in tokenizer.vocab.items() if not tok.strip("Ġ▁").isascii()]
    scores[ignored] = -float("inf")
    return torch.topk(scores, k)


def main() -> None:
    model = open_model("sentence-transformers/all-MiniLM-L6-v2")
    vocab_filter = VocabFilter(only_ascii=True)
    weights = model.layer(3)
    ours = median_ms(lambda: neuron_top_tokens(model, 3, 42, k=30, vocab_filter=vocab_filter), 30)
    emb = model.E.contiguous()

    def notebook() -> None:
        for vector in (weights.ffn_keys[42], weights.ffn_values[42], -weights.ffn_keys[42], -weights.ffn_values[42]):
            notebook_top_tokens(vector, emb, model.tokenizer)

    theirs = median_ms(notebook, 10)
    print("| neuron view (K, V, -K, -V; k=30; ASCII filter), MiniLM layer loaded | median ms |")
    print("|---|---:|")
    print(f"| embspace `neuron_top_tokens` | {ours:.1f} |")
    print(f"| notebook `top_tokens` x4 | {theirs:.1f} |")


if __name__ == "__main__":
    main()
