"""A small least-recently-used cache of computed results, safe to share between sessions' threads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class SharedCache:
    """The results of the last `max_entries` keys; a result is computed outside the lock, so other sessions'
    lookups go on meanwhile (two sessions may both compute a new key once)."""

    def __init__(self, max_entries: int = 4):
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()  # least recently used first

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        built = compute()
        with self._lock:
            self._entries[key] = built
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return built
