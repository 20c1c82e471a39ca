"""Where the batched scans run: "cpu" (default) or "cuda", checked once at the boundary."""

from __future__ import annotations

import torch

from embspace.errors import EmbspaceError

DEVICE_CHOICES = ("cpu", "cuda")


def resolve_device(device: str | torch.device | None = "cpu") -> torch.device:
    """A usable torch.device for `device` ("cpu", "cuda", "cuda:1", None = cpu).

    Raises EmbspaceError in one line when CUDA is asked for but torch sees no GPU (a CPU-only
    torch build, no driver, or CUDA_VISIBLE_DEVICES hiding every GPU).
    """
    resolved = torch.device("cpu" if device is None else device)
    if resolved.type == "cpu":
        return resolved
    if resolved.type != "cuda":
        raise EmbspaceError(f"device must be one of {', '.join(DEVICE_CHOICES)}, not {str(device)!r}.")
    if not torch.cuda.is_available():
        build = "a CPU-only torch build" if torch.version.cuda is None else "no visible CUDA GPU"
        raise EmbspaceError(f"--device cuda: CUDA is not available here ({build}); run with --device cpu.")
    if resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise EmbspaceError(f"--device {resolved}: only {torch.cuda.device_count()} CUDA device(s) are visible.")
    return resolved
