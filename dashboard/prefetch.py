"""Work a person is about to ask for, computed while their browser draws the current view.

A presenter steps through heads with Previous / Next: after a step, the next head in the same
direction is computed in a background thread into the same caches the page reads, so the next
click finds it ready. One prefetch at a time per process: a room of viewers stepping together
shares it through the caches' per-key locks, and nothing piles up on a small server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

_busy = threading.Lock()
log = logging.getLogger(__name__)


class _NoContextWarning(logging.Filter):
    """Drop Streamlit's "missing ScriptRunContext" warning for the prefetch thread: it has no page to
    draw on by design (a cached call's spinner is then skipped)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.threadName or "").startswith("embspace-prefetch")


logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_NoContextWarning())


def wait_until_idle(timeout: float = 120.0) -> bool:
    """Wait for a running prefetch to finish (tests, shutdown); True when none is running."""
    if not _busy.acquire(timeout=timeout):
        return False
    _busy.release()
    return True


def in_background(work: Callable[[], object]) -> bool:
    """Run `work` (cached calls only: it has no page to draw on) in a daemon thread, unless a prefetch is
    already running; True when started."""
    if not _busy.acquire(blocking=False):
        return False

    def run() -> None:
        try:
            work()
        except Exception:  # a prefetch that fails costs nothing: the page computes it and shows why
            log.debug("prefetch failed", exc_info=True)
        finally:
            _busy.release()

    threading.Thread(target=run, name="embspace-prefetch", daemon=True).start()
    return True
