"""The vocabulary side: how tokens read, which tokens and pairs a table shows, token counts of a corpus, uploaded
corpora kept by digest, and what the tokenizer's normalizer does to letters.

Depends only on `embspace.errors` and `embspace.files`; everything that projects onto the vocabulary builds on it.
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
from embspace.vocab.normalization import NormalizerReport, normalize_text, normalizer_report
from embspace.vocab.store import DIGEST_PREFIX, CorpusStore, StoredCorpus, corpus_digest, is_digest_prefix
from embspace.vocab.tokens import DISPLAY_CONVENTION, Vocabulary, build_vocabulary

__all__ = [
    "ALPHABETS",
    "DIGEST_PREFIX",
    "DISPLAY_CONVENTION",
    "CorpusError",
    "CorpusNotFound",
    "CorpusStore",
    "FilterError",
    "NormalizerReport",
    "PairFilter",
    "PairPredicate",
    "StoredCorpus",
    "VocabFilter",
    "Vocabulary",
    "build_vocabulary",
    "corpus_digest",
    "corpus_fields",
    "corpus_token_ids",
    "count_corpus_tokens",
    "infer_format",
    "is_digest_prefix",
    "iter_corpus_texts",
    "normalize_text",
    "normalizer_report",
    "token_list_ids",
]
