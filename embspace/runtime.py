"""Process-wide compute policy (threads, float32 matmul precision), set once at start-up.

A server that runs many sessions must not switch process settings around a call: two sessions
would interleave the switches. The entry points (CLI, app) call `configure()` once; the engine
only reads the policy (`scan_workers`).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from threadpoolctl import threadpool_limits


@dataclass(frozen=True)
class Policy:
    """What `configure` set: `workers` threads for embspace's own tile scans, each running its
    torch / BLAS / OpenMP calls single-threaded."""

    workers: int
    matmul_precision: str


_lock = threading.Lock()
_policy: Policy | None = None
_blas_limits = None  # threadpoolctl's handle; kept so the limit is not garbage collected


def available_cores() -> int:
    """CPUs this process may run on (affinity / container cpuset aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def configure(threads: int | None = None) -> Policy:
    """Set the process policy once; later calls return it unchanged (idempotent).

    threads: cores embspace's tile scans may use (default: `available_cores()`). torch and the
    BLAS / OpenMP pools (t-SNE included) run single-threaded: work is spread over cores by
    `top_pairs` itself, one tile per worker, so a core taken by another process slows one worker
    instead of stalling every thread at an OpenMP barrier (an 8x collapse measured under load).
    float32 matmuls are exact fp32 ("highest"); `top_pairs` relies on it for its rounding bound.
    glibc's allocator is told to give large freed blocks back to the system (see
    `_return_freed_memory`).
    """
    global _policy, _blas_limits
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, not {threads!r}.")
    with _lock:
        if _policy is not None:
            return _policy
        torch.set_num_threads(1)
        torch.set_float32_matmul_precision("highest")
        _blas_limits = threadpool_limits(limits=1)  # numpy's BLAS and sklearn's OpenMP (t-SNE)
        _return_freed_memory()
        _policy = Policy(workers=threads or available_cores(), matmul_precision="highest")
        return _policy


# glibc mallopt parameters
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 4 << 20
ARENA_MAX = 2


def _return_freed_memory() -> None:
    """Fix glibc's mmap threshold at 4 MiB and cap its arenas (glibc only; elsewhere nothing).

    By default the threshold rises to the size of the largest block freed (up to 32 MiB), so
    layer tensors and factors end up on the heap, which keeps their pages after they are freed
    (serving a GPT-2-medium-sized model: 797 MB resident after 10 layers, 683 MB with this), and
    every worker thread may get its own arena (8 per core).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        libc.mallopt(_M_ARENA_MAX, ARENA_MAX)
    except (OSError, AttributeError):  # musl or another libc: its own defaults stay
        return


def current() -> Policy | None:
    """The policy `configure` set, or None when it was never called (a notebook, a test)."""
    return _policy


def scan_workers() -> int:
    """Worker threads for a tile scan under the current policy.

    Configured: the policy's workers. Not configured: 1 when torch already parallelises each
    matmul itself (its default), so two layers of threads never oversubscribe the cores.
    """
    if _policy is not None:
        workers = _policy.workers
    else:
        workers = available_cores() if torch.get_num_threads() == 1 else 1
    limit = getattr(_this_thread, "scan_workers", None)
    return min(workers, limit) if limit else workers


_this_thread = threading.local()


@functools.cache
def native_bf16_matmul() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX): only then are bf16 tiles
    faster than fp32. Elsewhere oneDNN emulates them: 0.6 GFLOP/s against 75 for fp32 measured
    on an AVX2-only core, so `top_pairs` screens in bf16 only where this is True."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
    except (RuntimeError, AttributeError):  # private probes: a torch without them has no answer
        return False


@contextlib.contextmanager
def scan_workers_at_most(limit: int) -> Iterator[None]:
    """Scans started in this thread use at most `limit` workers: for callers that run several at once
    (the export runs one head per core, so the serial parts of each head overlap too)."""
    previous = getattr(_this_thread, "scan_workers", None)
    _this_thread.scan_workers = limit
    try:
        yield
    finally:
        _this_thread.scan_workers = previous
