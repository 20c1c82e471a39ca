"""What two models must share before they are compared: the vocabulary (diff and align), the shapes (diff)."""

from __future__ import annotations

from dataclasses import asdict

from embspace.errors import EmbspaceError
from embspace.model.embedding_space import EmbeddingSpaceModel


class ModelsDiffer(EmbspaceError):
    """Two models that cannot be compared the way asked (different vocabularies, or shapes for a diff)."""


def check_same_vocabulary(a: EmbeddingSpaceModel, b: EmbeddingSpaceModel) -> None:
    """Refuse models whose tokenizers map ids to different tokens (names are not compared: a fine-tune
    under a new name keeps its base's vocabulary, and two models of one name may not)."""
    raw_a, raw_b = a.vocab.raw, b.vocab.raw  # the tokenizer's own token string per embedding row
    if raw_a == raw_b:
        return
    if len(raw_a) != len(raw_b):
        raise ModelsDiffer(
            f"the two models have different vocabularies ({len(raw_a):,} and {len(raw_b):,} tokens): "
            "only models that share a tokenizer can be compared in the vocabulary."
        )
    first = next(i for i, (x, y) in enumerate(zip(raw_a, raw_b, strict=True)) if x != y)
    raise ModelsDiffer(
        f"the two models have different vocabularies (token {first} is {raw_a[first]!r} in one and "
        f"{raw_b[first]!r} in the other): only models that share a tokenizer can be compared in the vocabulary."
    )


def check_same_shape(base: EmbeddingSpaceModel, tuned: EmbeddingSpaceModel) -> None:
    """Refuse a diff of models of different architectures or sizes (a diff subtracts tensor from tensor)."""
    shape_b, shape_t = asdict(base.shape), asdict(tuned.shape)
    differ = [f"{key} {shape_b[key]} vs {shape_t[key]}" for key in shape_b if shape_b[key] != shape_t[key]]
    if differ:
        raise ModelsDiffer(
            f"a diff needs two models of one architecture and shape; these differ in {', '.join(differ)}. "
            "Use `align` to compare models of different sizes."
        )
