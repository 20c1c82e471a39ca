"""dashboard/state.py and the cache keys built from it: one key per distinct view, whatever built it."""

from __future__ import annotations

import pytest

from dashboard.cache import HASH_FUNCS, CorpusUpload
from dashboard.state import ViewSettings, model_key
from embspace.model.embedding_space import open_model
from embspace.vocab.filters import PairFilter, VocabFilter


@pytest.fixture(scope="module")
def gpt2(tiny_model):
    return open_model(str(tiny_model("gpt2")), embedding="input")


def settings(model, **changes) -> ViewSettings:
    fields = dict(k=10, vocab_filter=VocabFilter(), pair_filter=PairFilter(), negative=False) | changes
    return ViewSettings(model, **fields)


def test_equal_settings_share_a_key_and_k_is_not_part_of_it(gpt2):
    assert settings(gpt2).cache_key() == settings(gpt2, vocab_filter=VocabFilter()).cache_key()
    assert settings(gpt2, k=10).cache_key() == settings(gpt2, k=400).cache_key()


@pytest.mark.parametrize(
    "change",
    [
        {"vocab_filter": VocabFilter(only_ascii=True)},
        {"vocab_filter": VocabFilter(only_alnum=True, alphabet="polish")},
        {"vocab_filter": VocabFilter(exclude_special=False)},
        {"vocab_filter": VocabFilter(allowed_ids=frozenset({1, 2, 3}))},
        {"pair_filter": PairFilter(exclude_same=True)},
        {"pair_filter": PairFilter(exclude_fuzzy=True)},
        {"negative": True},
    ],
)
def test_every_setting_that_changes_a_table_changes_the_key(gpt2, change):
    assert settings(gpt2, **change).cache_key() != settings(gpt2).cache_key()


def test_a_corpus_is_keyed_by_its_token_ids():
    few, other = VocabFilter(allowed_ids=frozenset({1, 2, 3})), VocabFilter(allowed_ids=frozenset({1, 2, 4}))
    assert few.describe() == VocabFilter(allowed_ids=frozenset({3, 2, 1})).describe()
    assert few.describe() != other.describe()


def test_the_model_key_names_the_weights_read(gpt2, tiny_model):
    same = open_model(str(tiny_model("gpt2")), embedding="input")
    other_embedding = open_model(str(tiny_model("gpt2")), embedding="output")
    other_model = open_model(str(tiny_model("gpt_neox")), embedding="input")
    assert model_key(same) == model_key(gpt2)
    assert len({model_key(gpt2), model_key(other_embedding), model_key(other_model)}) == 3
    assert settings(gpt2).cache_key() != settings(other_model).cache_key()


def test_hash_funcs_key_objects_by_their_identity(gpt2):
    """What Streamlit hashes for each argument type: never the tensors or bytes themselves."""
    assert HASH_FUNCS[type(gpt2)](gpt2) == model_key(gpt2)
    assert HASH_FUNCS[ViewSettings](settings(gpt2)) == settings(gpt2).cache_key()
    upload = CorpusUpload("a.txt", b"kot ma ale", "digest-1")
    assert HASH_FUNCS[CorpusUpload](upload) == "digest-1"
