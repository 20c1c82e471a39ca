"""What the tokenizer does to text before it splits it: lowercasing and accent stripping, read from its own
normalizer, and what that does to the letters of an alphabet (e.g. an uncased BERT reads "żółw" as "zołw").

A filter or a search on letters the normalizer removes can never match: the app says so instead of
showing fewer tokens without a word.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from embspace.vocab.filters import alphabet_letters

_LOWERCASE_TYPES = frozenset({"Lowercase"})
_STRIP_TYPES = frozenset({"StripAccents"})
_KEPT_LISTED = 12  # more kept letters than this are counted, not listed (Cyrillic keeps 40)


@dataclass(frozen=True)
class NormalizerReport:
    """What a tokenizer's normalizer does, and what it does to an alphabet's letters.

    normalizer: the normalizer's kind as the tokenizer names it ("BertNormalizer", "Sequence(NFD, Lowercase,
        StripAccents)"), "" when it has none (byte-level GPT-2: text is split as written).
    mapped: (letter, what it becomes) for each letter of the alphabet turned into another letter, beyond
        lowercasing when it lowercases ("ó" -> "o"; an uppercase letter only when its lowercase is not in
        the alphabet), in code-point order.
    kept: the alphabet's non-ASCII letters the normalizer keeps (up to case), e.g. "ł" under an uncased BERT.
    """

    normalizer: str
    lowercases: bool
    strips_accents: bool
    mapped: tuple[tuple[str, str], ...] = ()
    kept: tuple[str, ...] = ()

    @property
    def changes_text(self) -> bool:
        """True when the tokenizer lowercases or strips accents."""
        return self.lowercases or self.strips_accents

    def summary(self) -> str:
        """One sentence: what the normalizer does ("lowercases and strips accents" / "keeps case and accents")."""
        done = [word for word, on in (("lowercases", self.lowercases), ("strips accents", self.strips_accents)) if on]
        kept = [word for word, on in (("case", not self.lowercases), ("accents", not self.strips_accents)) if on]
        said = " and ".join(done)
        if kept:
            said = f"{said}, and keeps {' and '.join(kept)}" if said else f"keeps {' and '.join(kept)}"
        return f"The tokenizer {said}."

    def letters_summary(self) -> str:
        """Which letters become others and which stay, e.g. "ą→a, ó→o, ż→z; ł stays"; "" when none change."""
        if not self.mapped:
            return ""
        said = ", ".join(f"{letter}→{into}" for letter, into in self.mapped)
        if len(self.kept) > _KEPT_LISTED:
            said += f"; the other {len(self.kept)} letters stay"
        elif self.kept:
            said += f"; {', '.join(self.kept)} {'stays' if len(self.kept) == 1 else 'stay'}"
        return said


def normalizer_report(tokenizer: Any, alphabet: str | Iterable[str] | None = None) -> NormalizerReport:
    """What `tokenizer` (a transformers fast tokenizer or a tokenizers.Tokenizer) does to text, and to the
    letters of `alphabet` (a name of ALPHABETS or the letters themselves; None: no letters checked).

    The flags come from the normalizer's own settings (BertNormalizer's lowercase/strip_accents, a Sequence's
    Lowercase/StripAccents); the letters are found by running the normalizer on each letter.
    """
    normalizer = _normalizer(tokenizer)
    if normalizer is None:
        return NormalizerReport("", False, False)
    nodes = list(_nodes(_state(normalizer)))
    lowercases, strips = _flags(nodes)
    mapped, kept = _letter_changes(normalizer, alphabet_letters(alphabet) if alphabet is not None else (), lowercases)
    return NormalizerReport(_describe(nodes), lowercases, strips, mapped, kept)


def normalize_text(tokenizer: Any, text: str) -> str:
    """`text` as the tokenizer's normalizer leaves it before splitting ("Król" -> "krol" for an uncased BERT);
    unchanged when the tokenizer has no normalizer."""
    normalizer = _normalizer(tokenizer)
    return text if normalizer is None else normalizer.normalize_str(text)


def _normalizer(tokenizer: Any) -> Any | None:
    backend = getattr(tokenizer, "backend_tokenizer", None) or tokenizer
    return getattr(backend, "normalizer", None)


def _state(normalizer: Any) -> dict:
    try:
        state = json.loads(normalizer.__getstate__())
    except (AttributeError, TypeError, ValueError):
        return {"type": type(normalizer).__name__}
    return state if isinstance(state, dict) else {}


def _nodes(state: dict) -> Iterator[dict]:
    """The normalizer and, for a Sequence, each of its parts (depth first)."""
    yield state
    for part in state.get("normalizers") or ():
        if isinstance(part, dict):
            yield from _nodes(part)


def _flags(nodes: list[dict]) -> tuple[bool, bool]:
    """(lowercases, strips accents). BertNormalizer's strip_accents=None follows its lowercase setting."""
    lowercases = strips = False
    for node in nodes:
        kind = node.get("type")
        if kind == "BertNormalizer":
            lower = bool(node.get("lowercase"))
            lowercases |= lower
            strips |= lower if node.get("strip_accents") is None else bool(node.get("strip_accents"))
        lowercases |= kind in _LOWERCASE_TYPES
        strips |= kind in _STRIP_TYPES
    return lowercases, strips


def _describe(nodes: list[dict]) -> str:
    first = nodes[0].get("type", "normalizer")
    if first != "Sequence":
        return str(first)
    return f"Sequence({', '.join(str(node.get('type')) for node in nodes[1:])})"


def _letter_changes(
    normalizer: Any, letters: Iterable[str], lowercases: bool
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """(mapped, kept) of `letters` (only letters: digits are left out), sorted; see NormalizerReport."""
    mapped, kept = [], []
    letters = frozenset(letters)
    for letter in sorted(c for c in letters if c.isalpha()):
        if lowercases and letter != letter.lower() and letter.lower() in letters:
            continue  # "Ó" goes where "ó" goes once lowercased: each letter is reported once
        into = normalizer.normalize_str(letter)
        expected = letter.lower() if lowercases else letter
        if into != expected:
            mapped.append((letter, into))
        elif not letter.isascii() and expected == letter:  # each kept letter once: its lowercase (or uncased) form
            kept.append(letter)
    return tuple(mapped), tuple(kept)
