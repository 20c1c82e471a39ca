"""Process-wide compute policy (threads, float32 matmul precision), set once at start-up.

A server that runs many sessions must not switch process settings around a call: two sessions
would interleave the switches. The entry points (CLI, app) call `configure()` once; the engine
only reads the policy (`scan_workers`).
"""

from __future__ import annotations

import os
import threading
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
        _policy = Policy(workers=threads or available_cores(), matmul_precision="highest")
        return _policy


def current() -> Policy | None:
    """The policy `configure` set, or None when it was never called (a notebook, a test)."""
    return _policy


def scan_workers() -> int:
    """Worker threads for a tile scan under the current policy.

    Configured: the policy's workers. Not configured: 1 when torch already parallelises each
    matmul itself (its default), so two layers of threads never oversubscribe the cores.
    """
    if _policy is not None:
        return _policy.workers
    return available_cores() if torch.get_num_threads() == 1 else 1
