"""VocabFilter masks and PairFilter identity rules against plain per-token Python references."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from tokenizer_factory import (
    byte_level_raw,
    byte_level_tokenizer,
    metaspace_tokenizer,
    minilm_tokenizer,
    wordpiece_tokenizer,
)

from embspace.vocab.filters import ALPHABETS, FilterError, PairFilter, VocabFilter
from embspace.vocab.tokens import PLAIN, Vocabulary, build_vocabulary

# Spelled out here, not taken from embspace, so the test does not check the code with itself.
LATIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
POLISH = LATIN + "ąćęłńóśźżĄĆĘŁŃÓŚŹŻ"
REFERENCE_ALPHABETS = {"latin": LATIN, "polish": POLISH}

TOKENIZERS = {
    "byte_level": byte_level_tokenizer,
    "wordpiece": wordpiece_tokenizer,
    "metaspace": metaspace_tokenizer,
    "minilm": minilm_tokenizer,
}


@pytest.fixture(scope="module", params=sorted(TOKENIZERS))
def vocab(request) -> Vocabulary:
    tokenizer = TOKENIZERS[request.param]()
    return build_vocabulary(tokenizer, len(tokenizer) + 2)  # two padded rows, as Pythia has


@pytest.fixture(scope="module")
def byte_level():
    tokenizer = byte_level_tokenizer()
    return tokenizer, build_vocabulary(tokenizer, len(tokenizer))


def reference_keep(vocab: Vocabulary, i: int, spec: VocabFilter) -> bool:
    """One token, one rule at a time, the way a person would check it."""
    text = vocab.text[i]
    if spec.exclude_special and vocab.is_special[i]:
        return False
    if spec.only_ascii and (any(ord(c) > 127 for c in text) or vocab.is_byte_fragment[i]):
        return False
    if spec.only_alnum and (text == "" or any(c not in REFERENCE_ALPHABETS[spec.alphabet] for c in text)):
        return False
    return spec.allowed_ids is None or i in spec.allowed_ids


FILTER_SPECS = [
    VocabFilter(),
    VocabFilter(exclude_special=False),
    VocabFilter(only_ascii=True),
    VocabFilter(only_alnum=True),
    VocabFilter(only_alnum=True, alphabet="polish"),
    VocabFilter(only_ascii=True, only_alnum=True, alphabet="polish"),
    VocabFilter(only_alnum=True, exclude_special=False),
    VocabFilter(only_ascii=True, allowed_ids=frozenset(range(0, 40_000, 7))),
]


@pytest.mark.parametrize("spec", FILTER_SPECS, ids=lambda s: json.dumps(s.describe()))
def test_mask_matches_the_per_token_reference(vocab, spec):
    mask = spec.mask(vocab)
    assert mask.dtype == bool and mask.shape == (vocab.size,)
    expected = [reference_keep(vocab, i, spec) for i in range(vocab.size)]
    wrong = [vocab.display(i) for i in range(vocab.size) if mask[i] != expected[i]]
    assert not wrong
    if spec != VocabFilter(exclude_special=False):  # every other spec drops some tokens, keeps others
        assert 0 < mask.sum() < vocab.size


def test_polish_letters_pass_the_polish_alphabet_only(byte_level):
    tokenizer, vocab = byte_level
    zazolc = tokenizer.convert_tokens_to_ids(byte_level_raw(" zażółć"))
    kot = tokenizer.convert_tokens_to_ids(byte_level_raw(" kot"))
    space = tokenizer.convert_tokens_to_ids(byte_level_raw(" "))
    fragment = tokenizer.convert_tokens_to_ids("Å")  # byte 0xC5, half of "ż"
    polish = VocabFilter(only_alnum=True, alphabet="polish").mask(vocab)
    latin = VocabFilter(only_alnum=True, alphabet="latin").mask(vocab)
    ascii_ = VocabFilter(only_ascii=True).mask(vocab)
    assert (polish[zazolc], latin[zazolc], ascii_[zazolc]) == (True, False, False)
    assert (polish[kot], latin[kot], ascii_[kot]) == (True, True, True)
    assert (polish[space], ascii_[space]) == (False, True)
    assert (polish[fragment], ascii_[fragment]) == (False, False)  # "<0xC5>" is ASCII text, not an ASCII token


def test_brackets_do_not_make_specials_alphanumeric():
    """The notebook stripped "[]" before its alnum check, letting [unused5] through."""
    vocab = build_vocabulary(minilm_tokenizer(), 30522)
    mask = VocabFilter(only_alnum=True, exclude_special=False).mask(vocab)
    assert not mask[vocab.raw.index("[unused5]")] and not mask[vocab.raw.index("[CLS]")]
    assert mask[vocab.raw.index("##ing")] and mask[vocab.raw.index("playing")]


def test_allowed_ids_outside_the_vocabulary_are_ignored(byte_level):
    _, vocab = byte_level
    mask = VocabFilter(exclude_special=False, allowed_ids=frozenset({-1, 5, 7, vocab.size, 10**9})).mask(vocab)
    assert np.flatnonzero(mask).tolist() == [5, 7]


def test_allowed_ids_given_as_a_set_become_a_frozenset_and_hash():
    spec = VocabFilter(allowed_ids={3, 1, 2})
    assert spec.allowed_ids == frozenset({1, 2, 3})
    assert hash(spec) == hash(VocabFilter(allowed_ids=frozenset({1, 2, 3})))


def test_unknown_alphabet_lists_the_known_ones():
    with pytest.raises(ValueError, match="known alphabets: .*latin.*polish"):
        VocabFilter(only_alnum=True, alphabet="klingon")
    assert issubclass(FilterError, ValueError)


def test_alphabets_registry():
    assert ALPHABETS["latin"] == frozenset(LATIN)
    assert ALPHABETS["polish"] == frozenset(POLISH)
    assert "ß" in ALPHABETS["german"] and "ж" in ALPHABETS["cyrillic"] and "a" not in ALPHABETS["cyrillic"]


def test_builtin_alphabets_are_frozen_and_custom_ones_travel_by_value(byte_level):
    with pytest.raises(TypeError):
        ALPHABETS["czech"] = frozenset(LATIN)  # type: ignore[index]
    assert all(isinstance(letters, frozenset) for letters in ALPHABETS.values())
    czech = LATIN + "áčďéěíňóřšťúůýž"
    # Any iterable of characters is frozen, so equal alphabets give equal, hashable filters.
    by_list = VocabFilter(only_alnum=True, alphabet=list(czech))
    by_set = VocabFilter(only_alnum=True, alphabet=frozenset(czech))
    assert by_list == by_set and hash(by_list) == hash(by_set) and by_list.alphabet == frozenset(czech)
    assert by_set != VocabFilter(only_alnum=True, alphabet="latin")
    assert VocabFilter(only_alnum=True, alphabet=frozenset(LATIN)).mask(byte_level[1]).tolist() == (
        VocabFilter(only_alnum=True, alphabet="latin").mask(byte_level[1]).tolist()
    )
    assert by_set.describe()["alphabet"] == "".join(sorted(czech))
    for bad in ("czech", frozenset(), frozenset({"a", " "}), ["ab"]):
        with pytest.raises(FilterError):
            VocabFilter(alphabet=bad)


def test_vocab_filter_describe_is_plain_and_canonical():
    spec = VocabFilter(only_ascii=True, allowed_ids=frozenset({5, 2, 9}))
    described = spec.describe()
    assert json.loads(json.dumps(described)) == described
    assert "alphabet" not in described  # alphabet does nothing without only_alnum
    assert described["allowed_ids"]["count"] == 3
    assert VocabFilter(only_ascii=True, allowed_ids=[9, 5, 2]).describe() == described
    assert VocabFilter(only_ascii=True, allowed_ids=frozenset({5, 2, 8})).describe() != described
    assert VocabFilter(only_alnum=True, alphabet="polish").describe()["alphabet"] == "polish"
    assert VocabFilter().describe()["allowed_ids"] is None


# --- pairs -----------------------------------------------------------------------------------


def make_vocabulary(texts: list[str]) -> Vocabulary:
    """A vocabulary of whole words, normalised the way the contract says (casefold, strip)."""
    size = len(texts)
    return Vocabulary(
        size=size,
        raw=tuple(texts),
        text=tuple(texts),
        starts_word=np.ones(size, dtype=bool),
        is_special=np.zeros(size, dtype=bool),
        normalized=tuple(t.strip().casefold() for t in texts),
        is_byte_fragment=np.zeros(size, dtype=bool),
        scheme=PLAIN,
    )


def indel_ratio(a: str, b: str) -> float:
    """100 * 2 * LCS / (len a + len b), by dynamic programming (rapidfuzz.fuzz.ratio's definition)."""
    if not a and not b:
        return 100.0
    previous = [0] * (len(b) + 1)
    for char in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if char == other else max(previous[j + 1], current[j]))
        previous = current
    return 100.0 * 2 * previous[-1] / (len(a) + len(b))


def reference_near_identical(a: str, b: str, threshold: float) -> bool:
    shorter, longer = sorted((a, b), key=len)
    return a == b or (len(shorter) >= 3 and longer.startswith(shorter)) or indel_ratio(a, b) >= threshold


def test_same_groups_only_when_asked():
    vocab = make_vocabulary(["kot", "Kot"])
    assert PairFilter().same_groups(vocab) is None
    assert PairFilter(exclude_same=True).same_groups(vocab) is not None
    assert PairFilter(exclude_fuzzy=True).same_groups(vocab) is not None  # fuzzy implies same


def test_same_groups_equal_exactly_when_normalized_forms_are_equal(vocab):
    groups = PairFilter(exclude_same=True).same_groups(vocab)
    assert groups.dtype == np.int64 and groups.shape == (vocab.size,)
    # "equal iff": group -> form is a bijection
    pairs = set(zip(groups.tolist(), vocab.normalized, strict=True))
    assert len(pairs) == len(set(groups.tolist())) == len(set(vocab.normalized))


def test_same_groups_join_marker_and_case_variants(byte_level):
    tokenizer, vocab = byte_level
    assert all(byte_level_raw(w) in tokenizer.get_vocab() for w in (" zażółć", "zażółć", "Zażółć", " kot"))
    groups = PairFilter(exclude_same=True).same_groups(vocab)
    with_space = tokenizer.convert_tokens_to_ids(byte_level_raw(" zażółć"))
    bare = tokenizer.convert_tokens_to_ids(byte_level_raw("zażółć"))
    capital = tokenizer.convert_tokens_to_ids(byte_level_raw("Zażółć"))
    kot = tokenizer.convert_tokens_to_ids(byte_level_raw(" kot"))
    assert groups[with_space] == groups[bare] == groups[capital] != groups[kot]


NEAR_IDENTICAL = [
    ("kot", "kota"),  # inflection: the shorter form is a 3-letter prefix
    ("Kot", "kot"),
    ("król", "królowa"),
    ("play", "playing"),
    ("Świętokrzyskie", "świętokrzyski"),
    ("dobry", "dobra"),  # ratio 80: swapped ending of a longer word
    ("colour", "color"),
    ("zażółć", "Zażółć"),
    ("the", "then"),  # the documented cost of the prefix rule
]
NOT_NEAR_IDENTICAL = [
    ("kot", "pies"),
    ("w", "wy"),  # prefixes shorter than 3 letters do not count
    ("in", "inside"),
    ("kota", "koty"),  # ratio 75 < 80
    ("imię", "imiona"),  # ratio 60
    ("zażółć", "gęślą"),
    ("łódź", "lodz"),  # diacritics are letters, not decoration
]


def test_near_identical_examples():
    words = sorted({w for pair in NEAR_IDENTICAL + NOT_NEAR_IDENTICAL for w in pair})
    vocab = make_vocabulary(words)
    predicate = PairFilter(exclude_fuzzy=True).near_identical(vocab)
    pairs = NEAR_IDENTICAL + NOT_NEAR_IDENTICAL
    rows = np.array([words.index(a) for a, _ in pairs], dtype=np.int64)
    cols = np.array([words.index(b) for _, b in pairs], dtype=np.int64)
    expected = [True] * len(NEAR_IDENTICAL) + [False] * len(NOT_NEAR_IDENTICAL)
    assert predicate(rows, cols).tolist() == expected
    assert predicate(cols, rows).tolist() == expected  # symmetric


def test_near_identical_threshold_moves_the_ratio_rule():
    vocab = make_vocabulary(["kota", "koty"])
    rows, cols = np.array([0]), np.array([1])
    assert not PairFilter(exclude_fuzzy=True, fuzzy_threshold=80).near_identical(vocab)(rows, cols)[0]
    assert PairFilter(exclude_fuzzy=True, fuzzy_threshold=75).near_identical(vocab)(rows, cols)[0]


@pytest.mark.parametrize("threshold", [60.0, 80.0, 95.0])
def test_near_identical_matches_the_reference_on_a_real_vocabulary(byte_level, threshold):
    _, vocab = byte_level
    predicate = PairFilter(exclude_fuzzy=True, fuzzy_threshold=threshold).near_identical(vocab)
    ids = [i for i in range(vocab.size) if not vocab.is_special[i]]
    pairs = np.array(list(itertools.product(ids[::3], ids[1::3])), dtype=np.int64)
    got = predicate(pairs[:, 0], pairs[:, 1])
    expected = [
        reference_near_identical(vocab.normalized[r], vocab.normalized[c], threshold) for r, c in pairs.tolist()
    ]
    assert got.dtype == bool and got.tolist() == expected
    assert 0 < got.sum() < len(got)


def test_near_identical_only_when_asked_and_checks_shapes():
    vocab = make_vocabulary(["kot", "kota"])
    assert PairFilter(exclude_same=True).near_identical(vocab) is None
    predicate = PairFilter(exclude_fuzzy=True).near_identical(vocab)
    assert predicate(np.array([], dtype=np.int64), np.array([], dtype=np.int64)).shape == (0,)
    with pytest.raises(ValueError, match="differ in length"):
        predicate(np.array([0, 1]), np.array([1]))


def test_pair_filter_threshold_range_and_describe():
    with pytest.raises(ValueError, match="between 0 and 100"):
        PairFilter(exclude_fuzzy=True, fuzzy_threshold=120)
    assert PairFilter().describe() == {"exclude_same": False, "exclude_fuzzy": False}
    assert PairFilter(fuzzy_threshold=60).describe() == PairFilter().describe()  # unused threshold left out
    fuzzy = PairFilter(exclude_fuzzy=True, fuzzy_threshold=70).describe()
    assert fuzzy["exclude_same"] is True and fuzzy["fuzzy_threshold"] == 70.0
    assert json.loads(json.dumps(fuzzy)) == fuzzy
    assert not set(fuzzy) & set(VocabFilter().describe())  # exports merge the two dicts


@pytest.mark.parametrize(
    "pair_filter", [PairFilter(), PairFilter(exclude_same=True), PairFilter(exclude_fuzzy=True, fuzzy_threshold=70)]
)
@pytest.mark.parametrize("vocab_filter", [None, VocabFilter(only_alnum=True)])
def test_pair_keep_mask_matches_the_reference_pair_by_pair(byte_level, pair_filter, vocab_filter):
    """keep_mask: both tokens kept by the vocabulary mask, and neither same nor near-identical when asked."""
    _, vocab = byte_level
    rng = np.random.default_rng(17)
    rows, cols = rng.integers(0, vocab.size, 3000), rng.integers(0, vocab.size, 3000)
    rows[:200] = cols[:200]  # identical pairs too
    kept = None if vocab_filter is None else vocab_filter.mask(vocab)
    threshold = pair_filter.fuzzy_threshold
    expected = []
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        a, b = vocab.normalized[r], vocab.normalized[c]
        keep = kept is None or (kept[r] and kept[c])
        keep &= not ((pair_filter.exclude_same or pair_filter.exclude_fuzzy) and a == b)
        keep &= not (pair_filter.exclude_fuzzy and reference_near_identical(a, b, threshold))
        expected.append(keep)
    got = pair_filter.keep_mask(vocab, rows, cols, kept)
    assert got.dtype == bool and got.tolist() == expected
    assert 0 < got.sum() < len(got) or pair_filter == PairFilter() and vocab_filter is None
    assert pair_filter.keep_mask(vocab, rows[:0], cols[:0], kept).shape == (0,)
