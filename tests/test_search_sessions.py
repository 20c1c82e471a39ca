"""Two dashboard sessions searching at once on one shared SearchIndex (an st.cache_resource), each with its
own vocabulary filter: neither may be served the other's filtered vocabulary."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import numpy as np
import pytest

from embspace import VocabFilter, open_model
from embspace.search.ffn import neuron_ranks_brute_force
from embspace.search.filtered_vocab import FilteredVocabCache
from embspace.search.index import SearchIndex, search

SESSION_FILTERS = {"default": None, "letters and digits": VocabFilter(only_alnum=True)}
WORDS = ["kot", "the"]


@pytest.fixture(scope="module")
def gpt2(tiny_model):
    return open_model(str(tiny_model("gpt2")))


def run_sessions(session: Callable[[str], int]) -> dict[str, int]:
    """Run `session(name)` for every filter in its own thread, all at once, switching threads as often as the
    interpreter allows (so a window between checking and reading shared state is hit); {name: wrong answers}."""
    wrong: dict[str, int] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(SESSION_FILTERS))

    def run(name: str) -> None:
        try:
            start.wait()
            wrong[name] = session(name)
        except BaseException as error:  # noqa: BLE001  (reported by the main thread)
            errors.append(error)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=run, args=(name,)) for name in SESSION_FILTERS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors
    return wrong


def test_sessions_get_the_filtered_vocabulary_of_their_own_filter(gpt2):
    """Many quick lookups from two sessions at once: every answer keeps exactly its own filter's tokens.

    (The old shared "last filter" attribute, checked and then read again, gave tens of wrong answers here.)"""
    shared = SearchIndex(gpt2)
    kept = {name: np.flatnonzero(gpt2.vocab_mask(f)) for name, f in SESSION_FILTERS.items()}
    assert len(kept["default"]) != len(kept["letters and digits"])

    def session(name: str) -> int:
        wrong = 0
        for _ in range(200_000):
            allowed = shared.filtered_vocab(SESSION_FILTERS[name]).allowed
            wrong += len(allowed) != len(kept[name]) or bool((allowed != kept[name]).any())
        return wrong

    wrong = run_sessions(session)
    assert wrong == dict.fromkeys(SESSION_FILTERS, 0), f"answers with another session's filter: {wrong}"


def hit_keys(hits) -> list[tuple]:
    return [(h.kind, h.layer, h.index, h.token_id, h.rank, h.partner_id) for h in hits]


def single_session_answer(model, vocab_filter):
    """The answer of one session alone (its own index), its FFN ranks checked against brute force."""
    index = SearchIndex(model)
    hits = search(model, WORDS, vocab_filter=vocab_filter, limit=1000, index=index)
    mask = model.vocab_mask(vocab_filter)
    for side in ("K", "V"):
        found = [h for h in hits if h.kind == f"neuron-{side}"]
        for token in {h.token_id for h in found}:
            ranks = neuron_ranks_brute_force(index.sides[side], model.E, mask, token)
            mine = [h for h in found if h.token_id == token]
            assert [h.rank for h in mine] == [int(ranks[h.layer * index.d_ff + h.index]) for h in mine]
    return hits


def test_two_sessions_searching_at_once_each_get_their_own_answer(gpt2):
    """Whole searches from two sessions at once on one index equal each session's answer alone."""
    expected = {name: single_session_answer(gpt2, f) for name, f in SESSION_FILTERS.items()}
    assert hit_keys(expected["default"]) != hit_keys(expected["letters and digits"])  # a mix-up would show
    shared = SearchIndex(gpt2)

    def session(name: str) -> int:
        wrong = 0
        for _ in range(80):
            hits = search(gpt2, WORDS, vocab_filter=SESSION_FILTERS[name], limit=1000, index=shared)
            if hit_keys(hits) != hit_keys(expected[name]):
                wrong += 1
            else:
                scores = [h.score for h in hits]
                np.testing.assert_allclose(scores, [h.score for h in expected[name]], rtol=1e-6, atol=1e-7)
        return wrong

    wrong = run_sessions(session)
    assert wrong == dict.fromkeys(SESSION_FILTERS, 0), f"answers with another session's filter: {wrong}"


def test_filtered_vocab_cache_keeps_the_last_filters_and_shares_read_only_values(gpt2):
    cache = FilteredVocabCache(gpt2, max_entries=2)
    default = cache.get(None)
    assert cache.get(VocabFilter()) is default  # None means the default filter
    assert not default.allowed.flags.writeable and not default.column_of.flags.writeable
    alnum, ascii_only = cache.get(VocabFilter(only_alnum=True)), cache.get(VocabFilter(only_ascii=True))
    assert cache.get(VocabFilter(only_ascii=True)) is ascii_only and cache.get(VocabFilter(only_alnum=True)) is alnum
    rebuilt = cache.get(None)  # the least recently used of three filters was dropped
    assert rebuilt is not default and np.array_equal(rebuilt.allowed, default.allowed)
    assert rebuilt.allowed.tolist() == np.flatnonzero(gpt2.vocab_mask(None)).tolist()
    assert (rebuilt.column_of[rebuilt.allowed] == np.arange(len(rebuilt.allowed))).all()
    assert (rebuilt.kept_E == gpt2.E[:, rebuilt.allowed.tolist()]).all()
