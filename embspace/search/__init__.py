"""Token search: where a token stands in every neuron and head, live (exact ranks) or from an atlas.

`index` answers a query; `filtered_vocab` holds the vocabulary a filter keeps (cached per filter, shared by
sessions under a lock); `ffn` ranks a token in every neuron exactly, chunk by chunk; `screen` bounds ranks
from a stored vocabulary sample so most neurons need no exact rank.
"""

from embspace.search.filtered_vocab import FilteredVocab, FilteredVocabCache
from embspace.search.index import SEARCH_KINDS, QueryWord, SearchHit, SearchIndex, query_tokens, search

__all__ = [
    "SEARCH_KINDS",
    "FilteredVocab",
    "FilteredVocabCache",
    "QueryWord",
    "SearchHit",
    "SearchIndex",
    "query_tokens",
    "search",
]
