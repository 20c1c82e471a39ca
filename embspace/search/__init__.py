"""Token search: where a token stands in every neuron and head, live (exact ranks) or from an atlas.

`index` answers a query; `ffn` ranks a token in every neuron exactly, chunk by chunk; `screen` bounds
ranks from a stored vocabulary sample so most neurons need no exact rank.
"""

from embspace.search.index import SearchHit, SearchIndex, query_tokens, search

__all__ = ["SearchHit", "SearchIndex", "query_tokens", "search"]
