"""Which tokens and token pairs a table shows: vocabulary masks, identical/near-identical pairs."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from rapidfuzz import fuzz, process

from embspace.errors import EmbspaceError
from embspace.vocab.tokens import Vocabulary

PairPredicate = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""exclude(row_ids int64 [n], col_ids int64 [n]) -> bool [n], True = drop the pair."""

_LATIN = string.ascii_letters + string.digits
_RUSSIAN = "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжзийклмнопрстуфхцчшщъыьэюя"
_OTHER_CYRILLIC = "ЂЃЄЅІЇЈЉЊЋЌЎЏђѓєѕіїјљњћќўџҐґ"  # Ukrainian, Belarusian, Serbian, Macedonian

# Letters and digits a token may consist of under `VocabFilter(only_alnum=True, alphabet=...)`.
# Frozen: a name always means the same letters (a stable cache key). A custom alphabet is passed by value:
# `VocabFilter(alphabet=frozenset(...))`.
ALPHABETS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "latin": frozenset(_LATIN),
        "polish": frozenset(_LATIN + "ąćęłńóśźżĄĆĘŁŃÓŚŹŻ"),
        "german": frozenset(_LATIN + "äöüßÄÖÜẞ"),
        "cyrillic": frozenset(string.digits + _RUSSIAN + _OTHER_CYRILLIC),
    }
)

# Shortest prefix that counts as "the same stem" in the near-identical rule (see PairFilter).
MIN_STEM_PREFIX = 3


class FilterError(EmbspaceError, ValueError):
    """A filter setting that cannot be used (unknown alphabet, threshold out of range)."""


def alphabet_letters(alphabet: str | Iterable[str]) -> frozenset[str]:
    """The letters of `alphabet`: a built-in name (key of ALPHABETS) or the letters themselves (not a str)."""
    if isinstance(alphabet, str):
        if alphabet not in ALPHABETS:
            raise FilterError(f"Unknown alphabet {alphabet!r}; known alphabets: {', '.join(sorted(ALPHABETS))}.")
        return ALPHABETS[alphabet]
    charset = frozenset(alphabet)
    if not charset or any(not isinstance(c, str) or len(c) != 1 or c.isspace() for c in charset):
        raise FilterError("A custom alphabet must be a non-empty set of single non-whitespace characters.")
    return charset


@dataclass(frozen=True)
class VocabFilter:
    """Which tokens a table may show; `mask(vocab)` is True for a kept token.

    only_ascii: the readable text (marker removed, bytes decoded) is ASCII; byte fragments such
        as <0xC5> (half a Polish letter) are not.
    only_alnum: the text is non-empty and every character is in the alphabet.
    alphabet: a built-in name (key of ALPHABETS) or a custom alphabet by value (a frozenset of characters;
        any other iterable of characters is frozen on construction, so the filter stays hashable).
    exclude_special: drop special tokens, [unusedN] placeholders and padding rows.
    allowed_ids: keep only these ids (from a corpus or an explicit token list).
    """

    only_ascii: bool = False
    only_alnum: bool = False
    alphabet: str | frozenset[str] = "latin"
    exclude_special: bool = True
    allowed_ids: frozenset[int] | None = None

    def __post_init__(self) -> None:
        letters = alphabet_letters(self.alphabet)
        if not isinstance(self.alphabet, str):
            object.__setattr__(self, "alphabet", letters)
        if self.allowed_ids is not None and not isinstance(self.allowed_ids, frozenset):
            object.__setattr__(self, "allowed_ids", frozenset(int(i) for i in self.allowed_ids))

    def mask(self, vocab: Vocabulary) -> np.ndarray:
        """Boolean [V] mask of the kept tokens."""
        keep = np.ones(vocab.size, dtype=bool)
        if self.exclude_special:
            keep &= ~vocab.is_special
        if self.only_ascii:
            keep &= np.fromiter((t.isascii() for t in vocab.text), dtype=bool, count=vocab.size)
            keep &= ~vocab.is_byte_fragment
        if self.only_alnum:
            letters = alphabet_letters(self.alphabet)
            keep &= np.fromiter((bool(t) and letters.issuperset(t) for t in vocab.text), dtype=bool, count=vocab.size)
        if self.allowed_ids is not None:
            ids = np.fromiter(self.allowed_ids, dtype=np.int64, count=len(self.allowed_ids))
            allowed = np.zeros(vocab.size, dtype=bool)
            allowed[ids[(ids >= 0) & (ids < vocab.size)]] = True
            keep &= allowed
        return keep

    def describe(self) -> dict:
        """Plain JSON-serialisable spec (exports, cache keys); settings that do nothing are left out."""
        spec: dict = {"only_ascii": self.only_ascii, "only_alnum": self.only_alnum}
        if self.only_alnum:
            spec["alphabet"] = self.alphabet if isinstance(self.alphabet, str) else "".join(sorted(self.alphabet))
        spec["exclude_special"] = self.exclude_special
        if self.allowed_ids is None:
            spec["allowed_ids"] = None
        else:
            ids = np.array(sorted(self.allowed_ids), dtype=np.int64)
            spec["allowed_ids"] = {
                "count": len(ids),
                "sha256": hashlib.sha256(ids.tobytes()).hexdigest()[:16],
            }
        return spec


def token_list_ids(vocab: Vocabulary, words: Iterable[str]) -> frozenset[int]:
    """Ids of every token whose normalised form is one of `words` (an explicit token list).

    Words are matched like tokens are normalised: casefolded, without a word marker ("##", "Ġ",
    "▁") or surrounding whitespace, so "Kot" keeps both the word-start "kot" and "##kot".
    """
    wanted = {w.strip().removeprefix("##").lstrip("Ġ▁").strip().casefold() for w in words}
    wanted.discard("")
    return frozenset(i for i, form in enumerate(vocab.normalized) if form in wanted)


@dataclass(frozen=True)
class PairFilter:
    """Which (row token, column token) pairs a pair table drops.

    exclude_same: drop pairs whose normalised forms are equal ("Ġkot" / "kot" / "Kot").
    exclude_fuzzy: also drop near-identical pairs (implies exclude_same). Two tokens with
        normalised forms a, b (casefolded, word marker and surrounding whitespace removed) are
        near-identical when
          1. a == b; or
          2. the shorter is a prefix of the longer and has at least MIN_STEM_PREFIX (3)
             characters: inflected or derived forms of one stem, which subword vocabularies are
             full of ("kot"/"kota", "król"/"królowa", "Świętokrzysk"/"świętokrzyskie",
             "play"/"playing"). Two-letter prefixes are left out because they are mostly
             unrelated short words ("w"/"wy", "in"/"inside"). Known cost: "the"/"then";
          3. rapidfuzz.fuzz.ratio(a, b) >= fuzzy_threshold, the Indel similarity
             100 * 2 * LCS / (len(a) + len(b)): spelling variants and swapped endings of longer
             words ("dobry"/"dobra" = 80, "colour"/"color" = 91, but "kota"/"koty" = 75).
    fuzzy_threshold: 0..100 for rule 3.
    """

    exclude_same: bool = False
    exclude_fuzzy: bool = False
    fuzzy_threshold: float = 80.0

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.fuzzy_threshold) <= 100.0:
            raise FilterError(f"fuzzy_threshold must be between 0 and 100, not {self.fuzzy_threshold}.")

    def same_groups(self, vocab: Vocabulary) -> np.ndarray | None:
        """int64 [V] group ids, equal exactly when the normalised tokens are equal; None if unused."""
        if not (self.exclude_same or self.exclude_fuzzy):
            return None
        group_of: dict[str, int] = {}
        return np.fromiter(
            (group_of.setdefault(form, len(group_of)) for form in vocab.normalized),
            dtype=np.int64,
            count=vocab.size,
        )

    def near_identical(self, vocab: Vocabulary) -> PairPredicate | None:
        """Predicate (rows int64 [n], cols int64 [n]) -> bool [n]: pair i is near-identical; None if unused."""
        if not self.exclude_fuzzy:
            return None
        forms = np.array(vocab.normalized, dtype=object)
        threshold = float(self.fuzzy_threshold)

        def predicate(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
            rows = np.asarray(rows, dtype=np.int64).ravel()
            cols = np.asarray(cols, dtype=np.int64).ravel()
            if rows.shape != cols.shape:
                raise ValueError(f"rows and cols differ in length: {rows.shape[0]} vs {cols.shape[0]}")
            left, right = forms[rows].tolist(), forms[cols].tolist()
            return near_identical_forms(left, right, threshold)

        return predicate

    def keep_mask(
        self, vocab: Vocabulary, rows: np.ndarray, cols: np.ndarray, kept_tokens: np.ndarray | None = None
    ) -> np.ndarray:
        """bool [n]: pair i = (rows[i], cols[i]) (token ids, int [n]) is shown: both tokens are kept by
        `kept_tokens` (bool [V], a VocabFilter's mask; None keeps every token) and this filter does not drop it."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        keep = np.ones(rows.shape, dtype=bool) if kept_tokens is None else kept_tokens[rows] & kept_tokens[cols]
        groups = self.same_groups(vocab)
        if groups is not None:
            keep &= groups[rows] != groups[cols]
        near = self.near_identical(vocab)
        if near is not None and keep.any():
            keep[keep] = ~near(rows[keep], cols[keep])
        return keep

    def describe(self) -> dict:
        """Plain JSON-serialisable spec (exports, cache keys); settings that do nothing are left out."""
        spec: dict = {"exclude_same": self.exclude_same or self.exclude_fuzzy, "exclude_fuzzy": self.exclude_fuzzy}
        if self.exclude_fuzzy:
            spec["fuzzy_threshold"] = float(self.fuzzy_threshold)
            spec["fuzzy_rule"] = f"equal|prefix>={MIN_STEM_PREFIX}|ratio"
        return spec


def near_identical_forms(left: list[str], right: list[str], threshold: float) -> np.ndarray:
    """Element-wise near-identity of normalised forms (the rule documented on PairFilter)."""
    n = len(left)
    if n == 0:
        return np.zeros(0, dtype=bool)
    workers = -1 if n > 20_000 else 1
    ratio = process.cpdist(left, right, scorer=fuzz.ratio, score_cutoff=threshold, workers=workers)
    similar = np.asarray(ratio) >= threshold
    stem = np.fromiter(
        (
            a == b or (min(len(a), len(b)) >= MIN_STEM_PREFIX and (a.startswith(b) or b.startswith(a)))
            for a, b in zip(left, right, strict=True)
        ),
        dtype=bool,
        count=n,
    )
    return similar | stem
