"""The vocabulary side: how tokens read, which tokens and pairs a table shows, and token counts of a corpus.

Depends only on `embspace.errors`; everything that projects onto the vocabulary builds on it.
"""

from embspace.vocab.corpus import (
    CorpusError,
    CorpusNotFound,
    corpus_fields,
    corpus_token_ids,
    count_corpus_tokens,
    infer_format,
    iter_corpus_texts,
)
from embspace.vocab.filters import ALPHABETS, FilterError, PairFilter, PairPredicate, VocabFilter, token_list_ids
from embspace.vocab.tokens import DISPLAY_CONVENTION, Vocabulary, build_vocabulary

__all__ = [
    "ALPHABETS",
    "DISPLAY_CONVENTION",
    "CorpusError",
    "CorpusNotFound",
    "FilterError",
    "PairFilter",
    "PairPredicate",
    "VocabFilter",
    "Vocabulary",
    "build_vocabulary",
    "corpus_fields",
    "corpus_token_ids",
    "count_corpus_tokens",
    "infer_format",
    "iter_corpus_texts",
    "token_list_ids",
]
