"""Where embspace keeps what users write (annotations), and the operator's settings for it.

Read from the environment first, then from the same keys in `secrets` (e.g. Streamlit's st.secrets),
like `hosting.HostingPolicy`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA_DIR_ENV = "EMBSPACE_DATA_DIR"
ANNOTATIONS_ENV = "EMBSPACE_ANNOTATIONS"  # "readonly" switches annotation writing off
SEED_ENV = "EMBSPACE_ANNOTATIONS_SEED"  # exported JSON file(s) shown read-only, os.pathsep-separated
ANNOTATION_MODES = ("readwrite", "readonly")


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The per-user data directory, outside any repository: ~/.local/share/embspace on Linux.

    XDG_DATA_HOME is respected; macOS uses ~/Library/Application Support, Windows %LOCALAPPDATA%.
    """
    environ = os.environ if environ is None else environ
    if sys.platform == "win32":
        base = Path(environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "embspace"


@dataclass(frozen=True)
class AnnotationSettings:
    """The operator's choices for annotations: where the database lives, whether it may be written,
    and the shipped read-only set(s) shown underneath it."""

    data_dir: Path
    read_only: bool = False
    seed_paths: tuple[Path, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, secrets: Mapping | None = None) -> AnnotationSettings:
        """Settings from EMBSPACE_DATA_DIR, EMBSPACE_ANNOTATIONS and EMBSPACE_ANNOTATIONS_SEED.

        Raises ValueError naming the setting when EMBSPACE_ANNOTATIONS is neither readwrite nor readonly.
        """
        environ = os.environ if environ is None else environ

        def value(name: str) -> Any:
            if environ.get(name) not in (None, ""):
                return environ[name]
            try:  # st.secrets raises when there is no secrets.toml at all
                return secrets.get(name) if secrets is not None else None
            except Exception:
                return None

        raw_dir = value(DATA_DIR_ENV)
        data_dir = Path(str(raw_dir)).expanduser() if raw_dir else default_data_dir(environ)
        mode = str(value(ANNOTATIONS_ENV) or "readwrite").strip().lower().replace("-", "")
        if mode not in ANNOTATION_MODES:
            raise ValueError(f"{ANNOTATIONS_ENV} must be one of {', '.join(ANNOTATION_MODES)}, not {mode!r}.")
        raw_seed = value(SEED_ENV) or ()
        seeds = raw_seed if isinstance(raw_seed, list | tuple) else str(raw_seed).split(os.pathsep)
        seed_paths = tuple(Path(str(p)).expanduser() for p in seeds if str(p).strip())
        return cls(data_dir=data_dir, read_only=mode == "readonly", seed_paths=seed_paths)
