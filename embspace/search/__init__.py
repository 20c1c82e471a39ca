"""Token search: where a token stands in every neuron and head, live (exact ranks) or from an atlas.

`index` answers a query; `filtered_vocab` holds the vocabulary a filter keeps (cached per filter, shared by
sessions under a lock); `concepts` ranks every unit by how its top k holds a set of words; `heads` and
`neuron_tops` compute every head's top pairs / every neuron's top tokens live (`shared_cache` keeps them);
`ffn` ranks a token in every neuron exactly, chunk by chunk; `screen` bounds ranks from a stored vocabulary
sample so most neurons need no exact rank.
"""

from embspace.search.concepts import CONCEPT_KINDS, CONCEPT_SCORE_RULE, ConceptHit, concepts, split_words
from embspace.search.filtered_vocab import FilteredVocab, FilteredVocabCache
from embspace.search.heads import HEAD_PAIRS_BOUND, head_bound_note
from embspace.search.index import SEARCH_KINDS, QueryWord, SearchHit, SearchIndex, query_tokens, search

__all__ = [
    "CONCEPT_KINDS",
    "CONCEPT_SCORE_RULE",
    "HEAD_PAIRS_BOUND",
    "SEARCH_KINDS",
    "ConceptHit",
    "FilteredVocab",
    "FilteredVocabCache",
    "QueryWord",
    "SearchHit",
    "SearchIndex",
    "concepts",
    "head_bound_note",
    "query_tokens",
    "search",
    "split_words",
]
