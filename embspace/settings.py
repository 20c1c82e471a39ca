"""The operator's settings: every `EMBSPACE_*` variable, read once each, from the environment first and then
from the same key in `secrets` (e.g. Streamlit's st.secrets, passed in: embspace never imports streamlit).

`SETTINGS` maps each variable to the one function that parses it; `AnnotationSettings` groups the
annotation ones, and `hosting.HostingPolicy.from_env` reads the hosted-mode ones through this module.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embspace.errors import EmbspaceError

DATA_DIR_ENV = "EMBSPACE_DATA_DIR"
ANNOTATIONS_ENV = "EMBSPACE_ANNOTATIONS"  # "readonly" switches annotation writing off
SEED_ENV = "EMBSPACE_ANNOTATIONS_SEED"  # exported JSON file(s) shown read-only, os.pathsep-separated
HOSTED_ENV = "EMBSPACE_HOSTED"
ALLOWED_MODELS_ENV = "EMBSPACE_ALLOWED_MODELS"
ALLOW_ANY_HUB_ENV = "EMBSPACE_ALLOW_ANY_HUB"
CACHE_DIR_ENV = "EMBSPACE_CACHE_DIR"
CACHE_BYTES_ENV = "EMBSPACE_CACHE_BYTES"
MAX_UPLOAD_ENV = "EMBSPACE_MAX_UPLOAD_BYTES"
WEIGHT_BUDGET_ENV = "EMBSPACE_WEIGHT_BUDGET_GB"
ATLAS_DIR_ENV = "EMBSPACE_ATLAS_DIR"
COMPUTE_LOG_ENV = "EMBSPACE_COMPUTE_LOG"
CORPUS_BYTES_ENV = "EMBSPACE_CORPUS_BYTES"
EDITORS_ENV = "EMBSPACE_EDITORS"  # e-mail addresses that may edit a hosted deployment once signed in
EDIT_PASSPHRASE_ENV = "EMBSPACE_EDIT_PASSPHRASE"  # secret: never shown, logged or put in a repr
SECRET_SETTINGS = (EDIT_PASSPHRASE_ENV,)  # kept out of `snapshot` (a cache key) by their digest
ATLAS_CACHE_BYTES_ENV = "EMBSPACE_ATLAS_CACHE_BYTES"

ANNOTATION_MODES = ("readwrite", "readonly")
DEFAULT_CACHE_BYTES = 5_000_000_000
DEFAULT_HOSTED_MAX_UPLOAD_BYTES = 20_000_000
# Streamlit Community Cloud gives an app about 2.7 GB of memory; weights are read lazily, one
# layer at a time, but the files still have to fit on its disk and page cache next to torch.
DEFAULT_WEIGHT_BUDGET_BYTES = 2_000_000_000
# Uploaded corpora kept on disk (by content digest, least recently used evicted first) so a link reopens them.
# Hosted: ten uploads of the default maximum size, a small share beside the 5 GB hub cache; locally: 2 GB.
DEFAULT_HOSTED_CORPUS_BYTES = 10 * DEFAULT_HOSTED_MAX_UPLOAD_BYTES
DEFAULT_LOCAL_CORPUS_BYTES = 2_000_000_000
CORPUS_DIR_NAME = "corpora"  # inside the data directory
# Partition files fetched from atlases read by URI (hf://, s3://, ...), kept on local disk up to this size.
DEFAULT_ATLAS_CACHE_BYTES = 1_000_000_000
# "scheme://..." names a remote location (an atlas by URI); two letters at least, so "C:/x" stays a path.
URI_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})
SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}


@dataclass(frozen=True)
class SettingReader:
    """Where settings come from: `environ` first (an empty value counts as unset), then `secrets`."""

    environ: Mapping[str, str]
    secrets: Mapping | None = None

    @classmethod
    def of(cls, environ: Mapping[str, str] | None = None, secrets: Mapping | None = None) -> SettingReader:
        """A reader of `environ` (default: the process environment) and `secrets` (default: none)."""
        return cls(os.environ if environ is None else environ, secrets)

    def value(self, name: str) -> Any:
        """The raw value of setting `name` (a string from the environment, any TOML value from secrets), or None."""
        if self.environ.get(name) not in (None, ""):
            return self.environ[name]
        try:  # st.secrets raises when there is no secrets.toml at all
            return self.secrets.get(name) if self.secrets is not None else None
        except Exception:
            return None


# --- typed parsers: (setting name, raw value, default) -> value; errors name the setting ----------------


def parse_flag(name: str, raw: Any, default: bool = False) -> bool:
    """A yes/no setting: 1/0, true/false, yes/no, on/off (or a TOML boolean)."""
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in TRUE_WORDS or text in FALSE_WORDS:
        return text in TRUE_WORDS
    raise EmbspaceError(f"{name}={raw!r} is not a yes/no setting: use 1 or 0.")


def parse_bytes(name: str, raw: Any, default: int | None) -> int | None:
    """Bytes from 5000000000, "5e9", "5GB" or "500 MB" (decimal units)."""
    if raw is None or str(raw).strip() == "":
        return default
    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([a-zA-Z]*)\s*", str(raw))
    try:
        number = float(match.group(1)) * SIZE_UNITS[match.group(2).lower()] if match else None
    except (KeyError, ValueError):
        number = None
    if number is None or number < 0:
        raise EmbspaceError(f"{name}={raw!r} is not a size: write bytes, or a number with KB, MB or GB.")
    return int(number)


def parse_gigabytes(name: str, raw: Any, default: int) -> int:
    """Bytes from a number of gigabytes (1e9 bytes): "1.5" -> 1_500_000_000; negative counts as 0."""
    if raw is None or str(raw).strip() == "":
        return default
    try:
        return max(int(float(raw) * 1e9), 0)
    except ValueError:
        raise EmbspaceError(f"{name}={raw!r} is not a number of gigabytes.") from None


def parse_names(raw: Any) -> tuple[str, ...]:
    """A comma-separated string or a list (TOML) of names, trimmed, empties and repeats dropped."""
    if raw is None:
        return ()
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))


def parse_path(raw: Any) -> Path | None:
    """A path with ~ expanded, or None when unset."""
    return Path(str(raw)).expanduser() if raw else None


def parse_paths(raw: Any) -> tuple[Path, ...]:
    """An os.pathsep-separated string or a list (TOML) of paths, ~ expanded, empties dropped."""
    items = raw if isinstance(raw, list | tuple) else str(raw or "").split(os.pathsep)
    return tuple(Path(str(item)).expanduser() for item in items if str(item).strip())


def parse_choice(name: str, raw: Any, choices: tuple[str, ...]) -> str:
    """One of `choices`, case and dashes ignored ("read-only" is "readonly"); unset is the first choice."""
    choice = str(raw or choices[0]).strip().lower().replace("-", "")
    if choice not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {choice!r}.")
    return choice


# --- defaults that depend on the platform ---------------------------------------------------------------


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


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """~/.cache/embspace/hub (XDG_CACHE_HOME respected): the app's own, apart from the user's HF cache."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "embspace" / "hub"


# --- one function per setting ---------------------------------------------------------------------------


def data_dir(reader: SettingReader) -> Path:
    """EMBSPACE_DATA_DIR: where the annotation database lives (default: the per-user data directory)."""
    return parse_path(reader.value(DATA_DIR_ENV)) or default_data_dir(reader.environ)


def annotations_read_only(reader: SettingReader) -> bool:
    """EMBSPACE_ANNOTATIONS: readwrite (default) or readonly. Raises ValueError naming the setting."""
    return parse_choice(ANNOTATIONS_ENV, reader.value(ANNOTATIONS_ENV), ANNOTATION_MODES) == "readonly"


def annotation_seed_paths(reader: SettingReader) -> tuple[Path, ...]:
    """EMBSPACE_ANNOTATIONS_SEED: exported annotation files shown read-only underneath the database."""
    return parse_paths(reader.value(SEED_ENV))


def hosted(reader: SettingReader) -> bool:
    """EMBSPACE_HOSTED: a shared deployment (default off)."""
    return parse_flag(HOSTED_ENV, reader.value(HOSTED_ENV))


def allowed_models(reader: SettingReader) -> tuple[str, ...]:
    """EMBSPACE_ALLOWED_MODELS: presets / hub ids a hosted server opens besides the bundled model."""
    return parse_names(reader.value(ALLOWED_MODELS_ENV))


def allow_any_hub(reader: SettingReader) -> bool:
    """EMBSPACE_ALLOW_ANY_HUB: a hosted server also opens any typed hub id (default off)."""
    return parse_flag(ALLOW_ANY_HUB_ENV, reader.value(ALLOW_ANY_HUB_ENV))


def hub_cache_dir(reader: SettingReader) -> Path:
    """EMBSPACE_CACHE_DIR: the hosted app's own hub cache (default ~/.cache/embspace/hub)."""
    return parse_path(reader.value(CACHE_DIR_ENV)) or default_cache_dir(reader.environ)


def hub_cache_bytes(reader: SettingReader) -> int:
    """EMBSPACE_CACHE_BYTES: the hosted hub cache's size budget (default 5 GB)."""
    return parse_bytes(CACHE_BYTES_ENV, reader.value(CACHE_BYTES_ENV), DEFAULT_CACHE_BYTES)


def max_upload_bytes(reader: SettingReader) -> int | None:
    """EMBSPACE_MAX_UPLOAD_BYTES: the largest corpus upload (default: 20 MB when hosted, else no limit)."""
    default = DEFAULT_HOSTED_MAX_UPLOAD_BYTES if hosted(reader) else None
    return parse_bytes(MAX_UPLOAD_ENV, reader.value(MAX_UPLOAD_ENV), default)


def weight_budget_bytes(reader: SettingReader) -> int:
    """EMBSPACE_WEIGHT_BUDGET_GB: hub models with more weights than this are refused before download."""
    return parse_gigabytes(WEIGHT_BUDGET_ENV, reader.value(WEIGHT_BUDGET_ENV), DEFAULT_WEIGHT_BUDGET_BYTES)


def corpus_store_bytes(reader: SettingReader) -> int:
    """EMBSPACE_CORPUS_BYTES: the disk budget of kept corpus uploads (default: 200 MB hosted, else 2 GB)."""
    default = DEFAULT_HOSTED_CORPUS_BYTES if hosted(reader) else DEFAULT_LOCAL_CORPUS_BYTES
    return parse_bytes(CORPUS_BYTES_ENV, reader.value(CORPUS_BYTES_ENV), default)


def corpus_store_dir(reader: SettingReader) -> Path:
    """Where uploaded corpora are kept: the `corpora` folder of the data directory (EMBSPACE_DATA_DIR)."""
    return data_dir(reader) / CORPUS_DIR_NAME


def atlas_dir(reader: SettingReader | None = None) -> Path | str | None:
    """EMBSPACE_ATLAS_DIR: where atlases are looked for (after atlases/ beside the app) and built; None if unset.
    A URI (hf://datasets/ORG/NAME, s3://...) is kept as a string (a Path would fold its "//")."""
    reader = reader or SettingReader.of()
    raw = reader.value(ATLAS_DIR_ENV)
    if raw and URI_PATTERN.match(str(raw)):
        return str(raw)
    return Path(str(raw)) if raw else None


def atlas_cache_bytes(reader: SettingReader | None = None) -> int:
    """EMBSPACE_ATLAS_CACHE_BYTES: local disk kept for partitions fetched from atlases read by URI (default 1 GB)."""
    reader = reader or SettingReader.of()
    return parse_bytes(ATLAS_CACHE_BYTES_ENV, reader.value(ATLAS_CACHE_BYTES_ENV), DEFAULT_ATLAS_CACHE_BYTES)


def compute_log(reader: SettingReader | None = None) -> Path | None:
    """EMBSPACE_COMPUTE_LOG: a file the dashboard appends one line to per real computation (benchmarks)."""
    reader = reader or SettingReader.of()
    raw = reader.value(COMPUTE_LOG_ENV)
    return Path(str(raw)) if raw else None


def editors(reader: SettingReader) -> frozenset[str]:
    """EMBSPACE_EDITORS: e-mail addresses (comma- or whitespace-separated, or a TOML list) that may edit a hosted
    deployment once signed in; compared case-insensitively, so kept lower-cased."""
    raw = reader.value(EDITORS_ENV)
    items = re.split(r"[,\s]+", raw) if isinstance(raw, str) else [str(item) for item in raw or ()]
    return frozenset(item.strip().lower() for item in items if item.strip())


def edit_passphrase(reader: SettingReader) -> str | None:
    """EMBSPACE_EDIT_PASSPHRASE: the lab's passphrase that unlocks editing on a hosted deployment (None: unset).

    A secret: callers compare it (embspace.editing.EditPolicy.check_passphrase) and never show or log it."""
    raw = reader.value(EDIT_PASSPHRASE_ENV)
    return str(raw) if raw not in (None, "") else None


# Each setting and the one function that parses it (docs/DEPLOYMENT.md lists them).
SETTINGS: dict[str, Callable[[SettingReader], Any]] = {
    DATA_DIR_ENV: data_dir,
    ANNOTATIONS_ENV: annotations_read_only,
    SEED_ENV: annotation_seed_paths,
    HOSTED_ENV: hosted,
    ALLOWED_MODELS_ENV: allowed_models,
    ALLOW_ANY_HUB_ENV: allow_any_hub,
    CACHE_DIR_ENV: hub_cache_dir,
    CACHE_BYTES_ENV: hub_cache_bytes,
    MAX_UPLOAD_ENV: max_upload_bytes,
    WEIGHT_BUDGET_ENV: weight_budget_bytes,
    ATLAS_DIR_ENV: atlas_dir,
    COMPUTE_LOG_ENV: compute_log,
    CORPUS_BYTES_ENV: corpus_store_bytes,
    EDITORS_ENV: editors,
    EDIT_PASSPHRASE_ENV: edit_passphrase,
    ATLAS_CACHE_BYTES_ENV: atlas_cache_bytes,
}


# Environment variables the settings' defaults read (where the data and cache directories lie).
DEFAULT_SOURCES = ("HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "LOCALAPPDATA", "HF_HOME", "HF_HUB_CACHE")


def snapshot(reader: SettingReader) -> tuple[tuple[str, str], ...]:
    """Every setting's raw value and the environment its defaults read: a key that changes whenever
    anything the parsers above would read changes (so a server may parse them once per change)."""
    raw = tuple((name, _fingerprint(name, reader.value(name))) for name in SETTINGS)
    return raw + tuple((name, repr(reader.environ.get(name))) for name in DEFAULT_SOURCES)


def _fingerprint(name: str, value: Any) -> str:
    """The raw value's repr, or for a secret its sha256 (a cache key must not hold the passphrase)."""
    if name in SECRET_SETTINGS and value is not None:
        return hashlib.sha256(str(value).encode("utf-8")).hexdigest()
    return repr(value)


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
        reader = SettingReader.of(environ, secrets)
        return cls(
            data_dir=data_dir(reader),
            read_only=annotations_read_only(reader),
            seed_paths=annotation_seed_paths(reader),
        )
