"""Read named tensors from a checkpoint directory lazily, one tensor at a time.

`*.safetensors` (single file or sharded through an index) is the format of choice; a
`pytorch_model.bin` is read only through torch's weights-only unpickler, never arbitrary pickles.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from embspace.errors import EmbspaceError

SAFETENSORS_INDEX = "model.safetensors.index.json"
SAFETENSORS_FILE = "model.safetensors"
PYTORCH_INDEX = "pytorch_model.bin.index.json"
PYTORCH_FILE = "pytorch_model.bin"


class CheckpointError(EmbspaceError):
    """A checkpoint is missing, malformed, or would need code execution to load."""


class TensorReader:
    """Named tensors of one checkpoint directory, read from disk when asked for.

    Construction reads only the safetensors headers or the shard index (plus, for a single
    `pytorch_model.bin`, a memory map of it), so opening a multi-gigabyte model costs nothing
    until `get()` is called for a tensor.

    Memory: `get()` returns a copy in ordinary memory and unmaps the safetensors file again, so
    resident memory holds only the tensors callers keep, never the checkpoint's pages.
    `pytorch_model.bin` state dicts stay mapped until `release()`.
    """

    def __init__(self, model_dir: Path | str):
        self.model_dir = Path(model_dir)
        if not self.model_dir.is_dir():
            raise CheckpointError(
                f"{self.model_dir} is not a directory; pass the folder that holds config.json "
                "and the model's weight files."
            )
        # Name -> file holding it. safetensors files are opened per read; pickled state dicts are
        # memory-mapped on first use and kept until `release()`.
        self._file_of: dict[str, Path] = {}
        self._state_dicts: dict[Path, dict[str, torch.Tensor]] = {}
        self._is_safetensors = True
        self._files = self._discover()

    # ------------------------------------------------------------------ public contract

    @property
    def names(self) -> frozenset[str]:
        """Every tensor name in the checkpoint."""
        return frozenset(self._file_of)

    @property
    def total_bytes(self) -> int:
        """Size on disk of all weight files."""
        return sum(path.stat().st_size for path in self._files)

    def has(self, name: str) -> bool:
        return name in self._file_of

    def first(self, *candidates: str) -> str:
        """The first of `candidates` present in the checkpoint."""
        for name in candidates:
            if name in self._file_of:
                return name
        sample = ", ".join(sorted(self._file_of)[:8])
        raise CheckpointError(
            f"none of {list(candidates)} is in the checkpoint at {self.model_dir} "
            f"(it has e.g. {sample}); the checkpoint does not match the architecture "
            "its config.json names, or uses a naming this adapter does not know yet."
        )

    def get(self, name: str) -> torch.Tensor:
        """Tensor `name` as float32 on CPU (floating dtypes are converted; integer buffers kept)."""
        path = self._file_of.get(name)
        if path is None:
            raise CheckpointError(
                f"tensor {name!r} is not in the checkpoint at {self.model_dir}; "
                "check `reader.names` for the names it holds."
            )
        if self._is_safetensors:
            with self._open_safetensors(path) as handle:
                tensor = _copy_out(handle.get_tensor(name))  # a view of the map until copied
        else:
            # A copy, so a caller writing into it cannot change what the next get() returns.
            tensor = _copy_out(self._open_pickle(path)[name])
        return tensor

    def release(self) -> None:
        """Drop memory-mapped state dicts (`pytorch_model.bin`), so their pages leave resident memory.

        safetensors files need nothing: each read unmaps its file. Reading again re-maps lazily.
        """
        self._state_dicts.clear()

    # ------------------------------------------------------------------ discovery

    def _discover(self) -> tuple[Path, ...]:
        directory = self.model_dir
        if (directory / SAFETENSORS_INDEX).is_file():
            return self._read_index(directory / SAFETENSORS_INDEX)
        if (directory / SAFETENSORS_FILE).is_file():
            path = directory / SAFETENSORS_FILE
            with self._open_safetensors(path) as handle:
                for name in handle.keys():
                    self._file_of[name] = path
            return (path,)
        self._is_safetensors = False
        if (directory / PYTORCH_INDEX).is_file():
            return self._read_index(directory / PYTORCH_INDEX)
        if (directory / PYTORCH_FILE).is_file():
            path = directory / PYTORCH_FILE
            for name in self._open_pickle(path):
                self._file_of[name] = path
            return (path,)
        raise CheckpointError(
            f"no readable weights in {directory}: expected {SAFETENSORS_FILE}, "
            f"{SAFETENSORS_INDEX}, {PYTORCH_FILE} or {PYTORCH_INDEX}. Download the weights too "
            "(e.g. huggingface_hub.snapshot_download(repo_id, allow_patterns=['*.json', "
            "'*.safetensors', '*.txt', '*.model'])); TensorFlow/Flax-only repositories are not supported."
        )

    def _read_index(self, index_path: Path) -> tuple[Path, ...]:
        try:
            weight_map = json.loads(index_path.read_text())["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CheckpointError(
                f"{index_path} is not a valid shard index (a JSON object with a 'weight_map'); "
                f"re-download it ({error})."
            ) from error
        shards: dict[str, Path] = {}
        for name, shard in weight_map.items():
            path = shards.setdefault(shard, self.model_dir / shard)
            self._file_of[name] = path
        missing = sorted(shard for shard, path in shards.items() if not path.is_file())
        if missing:
            raise CheckpointError(
                f"{index_path.name} lists shard files that are not in {self.model_dir}: "
                f"{', '.join(missing)}; download the missing shards."
            )
        return tuple(sorted(set(shards.values())))

    # ------------------------------------------------------------------ file access

    @staticmethod
    def _open_safetensors(path: Path) -> Any:
        """A fresh safe_open handle (a context manager: leaving it unmaps the file)."""
        try:
            return safe_open(str(path), framework="pt", device="cpu")
        except Exception as error:  # safetensors raises its own untyped errors
            raise CheckpointError(f"{path} is not a readable safetensors file ({error}); re-download it.") from error

    def _open_pickle(self, path: Path) -> dict[str, torch.Tensor]:
        state = self._state_dicts.get(path)
        if state is None:
            state = _load_weights_only(path)
            self._state_dicts[path] = state
        return state


def _copy_out(tensor: torch.Tensor) -> torch.Tensor:
    """A copy owning its memory: float32 for floating dtypes, integer buffers kept as they are."""
    if tensor.is_floating_point():
        return tensor.to(torch.float32, copy=True)
    return tensor.clone()


def _load_weights_only(path: Path) -> dict[str, torch.Tensor]:
    """A `pytorch_model.bin` state dict, memory-mapped, through torch's weights-only unpickler."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path} is a pickle that needs arbitrary code execution to load (it holds objects "
            "other than tensors), which embspace refuses to do. Use a revision of the model that "
            "ships model.safetensors (on the Hugging Face Hub, look for the safetensors "
            "conversion pull request, revision 'refs/pr/N')."
        ) from error
    except RuntimeError as error:
        if "mmap" not in str(error):
            raise CheckpointError(f"{path} could not be read as a PyTorch checkpoint ({error}).") from error
        # Files written before torch 1.6 are not zip archives and cannot be memory-mapped;
        # the weights-only unpickler still guards them.
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as inner:
            raise CheckpointError(
                f"{path} is a pickle that needs arbitrary code execution to load, which embspace "
                "refuses to do. Use a revision of the model that ships model.safetensors."
            ) from inner
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise CheckpointError(
            f"{path} does not hold a flat state dict of named tensors; save it with "
            "model.save_pretrained(..., safe_serialization=True) and open that folder instead."
        )
    return state
