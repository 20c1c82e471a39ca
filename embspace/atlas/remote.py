"""Where an atlas lies: a local directory or a URI that fsspec reads (hf://datasets/ORG/NAME, s3://, http(s)://,
file://, memory://). Partitions are listed from the filesystem, a remote partition file is fetched whole into
a bounded local cache, scans read remote files by range, and a finished local build is uploaded manifest last.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from fsspec.implementations.local import LocalFileSystem
from huggingface_hub import HfApi

from embspace.atlas.manifest import FORMAT, MANIFEST, AtlasError, check_same_atlas, read_manifest
from embspace.files import TEMPORARY_SUFFIX, locked, write_atomic
from embspace.settings import URI_PATTERN, SettingReader, atlas_cache_bytes, default_cache_dir

LOG = logging.getLogger(__name__)
# Range reads of remote Parquet files (fsspec's HTTP default block is 5 MB: a footer read would fetch it all).
READ_BLOCK_BYTES = 2**20
CACHE_LOCK = ".lock"
HUB_REPO_TYPES = {"datasets": "dataset", "models": "model", "spaces": "space"}
HUB_FORM = "hf://datasets/ORG/NAME[@REVISION][/FOLDER]"


def is_uri(target: str | Path) -> bool:
    """Whether `target` names a location by URI (scheme://...) rather than a local directory."""
    return isinstance(target, str) and URI_PATTERN.match(target) is not None


def local_directory(target: str | Path) -> Path | None:
    """`target` as a local directory (a path, or a file:// URI), or None for a remote URI."""
    if not is_uri(target):
        return Path(target)
    return Path(urllib.parse.unquote(urllib.parse.urlparse(str(target)).path)) if target.startswith("file://") else None


@dataclass(frozen=True)
class HubAddress:
    """An atlas in a Hugging Face repository, as huggingface_hub's HfFileSystem reads hf:// addresses."""

    repo_type: str  # "dataset" | "model" | "space"
    repo_id: str  # ORG/NAME
    revision: str | None  # a branch, tag or commit; None: the default branch
    folder: str  # "" for the repository's root


def hub_address(uri: str) -> HubAddress:
    """hf://datasets/ORG/NAME[@REVISION][/FOLDER] (or models/, spaces/, or no prefix for a model) parsed;
    AtlasError naming the form when `uri` is not one."""
    parts = uri.removeprefix("hf://").strip("/").split("/")
    repo_type = HUB_REPO_TYPES.get(parts[0], "model")
    if parts[0] in HUB_REPO_TYPES:
        parts = parts[1:]
    if not uri.startswith("hf://") or len(parts) < 2 or not all(parts[:2]) or parts[1].startswith("@"):
        raise AtlasError(f"{uri!r} is not a Hugging Face address: write {HUB_FORM}.")
    name, _, revision = parts[1].partition("@")
    return HubAddress(repo_type, f"{parts[0]}/{name}", urllib.parse.unquote(revision) or None, "/".join(parts[2:]))


def open_filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """(fsspec filesystem, path in it) for `uri`; AtlasError with one line for a malformed or unsupported one."""
    if uri.startswith("hf://"):
        hub_address(uri)  # a malformed address is one line, before any request
    try:
        return fsspec.core.url_to_fs(uri)
    except ImportError as err:  # e.g. s3:// without s3fs
        raise AtlasError(f"cannot open {uri}: {err} (pip install it).") from None
    except ValueError as err:
        raise AtlasError(f"cannot open {uri}: {err}.") from None


class RangeReads(pafs.FSSpecHandler):
    """pyarrow's handler over an fsspec filesystem, opening files for small range reads: a scan reads each
    file's footer and the row groups its filter keeps, not fsspec's default blocks."""

    def open_input_file(self, path: str) -> pa.NativeFile:
        return pa.PythonFile(self.fs.open(path, mode="rb", block_size=READ_BLOCK_BYTES), mode="r")


def template_pattern(template: str) -> re.Pattern:
    """'pairs/layer={layer}/kind={kind}/part.parquet' -> a regex with one named group per key."""
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)))


class AtlasLocation:
    """An atlas's filesystem (fsspec, for listing and fetching; pyarrow, for scans) and its root in it.

    A remote atlas's listings are read once: its files never change under one manifest (`identity`), so
    a page that asks which layers are built on every rerun costs no request after the first.
    """

    def __init__(self, name: str | Path, fs: fsspec.AbstractFileSystem, root: str, cache: PartitionCache | None):
        self.name, self.fs, self.root, self.cache = name, fs, root.rstrip("/"), cache
        self.remote = not isinstance(fs, LocalFileSystem)
        self.arrow_fs = pafs.PyFileSystem(RangeReads(fs)) if self.remote else pafs.LocalFileSystem()
        self.identity = ""  # set by read_manifest
        self._listings: dict[str, dict[str, int | None]] = {}
        self._lock = threading.Lock()  # one location is shared by every session of a server

    @classmethod
    def of(cls, target: str | Path, cache: PartitionCache | None = None) -> AtlasLocation:
        """A local directory (a Path or a plain string; a file:// URI) or a remote URI."""
        directory = local_directory(target)
        if directory is not None:
            return cls(directory, LocalFileSystem(), directory.absolute().as_posix(), cache)
        fs, root = open_filesystem(str(target))
        return cls(str(target), fs, root, cache or PartitionCache.from_settings())

    def path(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def read_manifest(self) -> dict:
        """The manifest (AtlasError when it is missing, unreadable or not an atlas's); sets `identity`."""
        if not self.remote:
            return read_manifest(Path(self.root))
        try:
            raw = self.fs.cat_file(self.path(MANIFEST))
        except FileNotFoundError:
            raise AtlasError(f"{self.name} holds no atlas ({MANIFEST} is missing).") from None
        except Exception as err:  # the network, credentials, a hub error: one line naming the address
            raise AtlasError(f"cannot read {self.path(MANIFEST)}: {type(err).__name__}: {err}") from None
        try:
            manifest = json.loads(raw)
        except ValueError as err:
            raise AtlasError(f"{self.path(MANIFEST)} cannot be read as JSON ({err}).") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise AtlasError(f"{self.path(MANIFEST)} is not an embspace atlas manifest.")
        self.identity = hashlib.sha256(f"{self.name}\n".encode() + raw).hexdigest()[:32]
        return manifest

    def files(self, table: str) -> dict[str, int | None]:
        """{relative path: size in bytes or None} of every file under `table/` (a remote one listed once)."""
        with self._lock:
            if table not in self._listings or not self.remote:
                self._listings[table] = self._list(table)
            return self._listings[table]

    def _list(self, table: str) -> dict[str, int | None]:
        try:
            found = self.fs.find(self.path(table), detail=True)
        except FileNotFoundError:
            return {}
        except Exception as err:
            raise AtlasError(f"cannot list {self.path(table)}: {type(err).__name__}: {err}") from None
        prefix = self.path(table) + "/"
        return {
            table + "/" + urllib.parse.unquote(name.removeprefix(prefix)): info.get("size")
            for name, info in found.items()
            if name.startswith(prefix) and info.get("type") != "directory"
        }

    def partitions(self, template: str) -> dict[str, dict[str, str]]:
        """{relative path: {key: value}} of the files matching `template` (one of manifest.PATHS)."""
        pattern = template_pattern(template)
        matches = (pattern.fullmatch(relative) for relative in self.files(template.split("/", 1)[0]))
        return {match.string: match.groupdict() for match in matches if match}

    def dataset(self, template: str, schema: pa.Schema | None) -> ds.Dataset:
        """Every partition of `template` as one pyarrow dataset; a remote one is read by range, lazily."""
        paths = [self.path(relative) for relative in sorted(self.partitions(template))]
        return ds.dataset(paths, schema=schema, format="parquet", filesystem=self.arrow_fs)

    def partition_file(self, relative: str) -> Path | pa.NativeFile | None:
        """One partition for pq.read_table: a local path (remote: fetched into the cache), or a remote file
        read by range when it is larger than the whole cache; None when the atlas lacks it."""
        if not self.remote:
            path = Path(self.root) / relative
            return path if path.exists() else None
        files = self.files(relative.split("/", 1)[0])
        if relative not in files:
            return None
        size = files[relative] if files[relative] is not None else self.fs.size(self.path(relative))
        return self.cache.fetch(self, relative, size) or self.arrow_fs.open_input_file(self.path(relative))

    def child_atlases(self) -> list[str | Path]:
        """This location if it is an atlas, else the atlases one level down (names as given to Atlas.open)."""
        if not self.remote:
            root = Path(self.name)
            found = [root] if (root / MANIFEST).exists() else sorted(root.glob(f"*/{MANIFEST}"))
            return [path if path.is_dir() else path.parent for path in found]
        try:
            if self.fs.exists(self.path(MANIFEST)):
                return [self.name]
            children = self.fs.ls(self.root, detail=True)
        except Exception as err:  # an unreachable address is not an error of the app: warn, look elsewhere
            LOG.warning("no atlas read from %s: %s: %s", self.name, type(err).__name__, err)
            return []
        names = (child["name"].rstrip("/").rsplit("/", 1)[-1] for child in children if child["type"] == "directory")
        return [f"{str(self.name).rstrip('/')}/{urllib.parse.unquote(name)}" for name in names]


class PartitionCache:
    """Remote partition files kept whole on local disk, the least recently used evicted past `budget_bytes`.

    Whole files rather than fsspec's filecache/blockcache (which have no byte budget): a page reads many units
    of one partition (neuron after neuron of a layer), so one GET serves them all. Files are kept under the
    atlas's identity (its URI and manifest bytes), so a rebuilt remote atlas never meets a stale copy; the
    cache is a directory shared by processes, written atomically and evicted under a file lock.
    """

    def __init__(self, directory: Path, budget_bytes: int):
        self.directory = Path(directory)
        self.budget_bytes = budget_bytes

    @classmethod
    def from_settings(cls, reader: SettingReader | None = None) -> PartitionCache:
        """~/.cache/embspace/atlas (XDG_CACHE_HOME respected), EMBSPACE_ATLAS_CACHE_BYTES big."""
        reader = reader or SettingReader.of()
        return cls(default_cache_dir(reader.environ).parent / "atlas", atlas_cache_bytes(reader))

    def fetch(self, location: AtlasLocation, relative: str, size: int) -> Path | None:
        """The local copy of `relative` in `location`, fetched if needed; None if `size` exceeds the budget."""
        path = self.directory / location.identity / relative
        try:
            os.utime(path)  # mtime is the LRU clock
            return path
        except FileNotFoundError:
            pass
        if size > self.budget_bytes:
            return None
        write_atomic(path, lambda temporary: location.fs.get_file(location.path(relative), str(temporary)))
        self.evict(keep=path)
        return path

    def stored(self) -> dict[Path, os.stat_result]:
        """Every cached file (not the lock, not a download in progress) and its stat."""
        if not self.directory.is_dir():
            return {}
        files = (p for p in self.directory.rglob("*") if p.name != CACHE_LOCK and not p.name.endswith(TEMPORARY_SUFFIX))
        return {path: stat for path in files if (stat := _stat_file(path))}

    def evict(self, keep: Path) -> None:
        """Remove the least recently used files until the cache fits its budget (never `keep`, just fetched)."""
        with locked(self.directory / CACHE_LOCK):
            stored = self.stored()
            total = sum(stat.st_size for stat in stored.values())
            for path, stat in sorted(stored.items(), key=lambda item: item[1].st_mtime):
                if total <= self.budget_bytes:
                    break
                if path != keep:
                    path.unlink(missing_ok=True)
                    total -= stat.st_size


def _stat_file(path: Path) -> os.stat_result | None:
    try:
        stat = path.stat()
    except FileNotFoundError:  # evicted by another process meanwhile
        return None
    return stat if path.is_file() else None


def check_remote_out(uri: str, manifest: dict) -> None:
    """Refuse (AtlasError, nothing written) a URI that holds another atlas, or files and no manifest."""
    location = AtlasLocation.of(uri)
    fs = location.fs
    try:
        has_manifest = fs.exists(location.path(MANIFEST))
        holds_files = not has_manifest and fs.exists(location.root) and bool(fs.ls(location.root))
    except Exception as err:  # the network, credentials: one line naming the address
        raise AtlasError(f"cannot read {uri}: {type(err).__name__}: {err}") from None
    if holds_files:
        raise AtlasError(f"{uri} is not empty and holds no atlas ({MANIFEST} missing); choose another --out.")
    if has_manifest:
        check_same_atlas(location.read_manifest(), manifest, uri)


def upload_atlas(local: Path, uri: str) -> None:
    """Copy a finished local atlas to `uri`, the manifest last: a reader never sees a manifest without its tables."""
    if uri.startswith("hf://"):
        upload_to_hub(local, hub_address(uri))
        return
    fs, root = open_filesystem(uri)
    files = sorted((p for p in local.rglob("*") if p.is_file() and not p.name.startswith(".")), key=_manifest_last)
    try:
        for path in files:
            target = f"{root.rstrip('/')}/{path.relative_to(local).as_posix()}"
            fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            fs.put_file(str(path), target)
    except (NotImplementedError, OSError) as err:
        raise AtlasError(f"cannot write the atlas to {uri}: {type(err).__name__}: {err}") from None


def _manifest_last(path: Path) -> tuple[bool, str]:
    return path.name == MANIFEST, path.as_posix()


def upload_to_hub(local: Path, address: HubAddress) -> None:
    """Two commits, the tables then the manifest (HfFileSystem would make one commit per file)."""
    api = HfApi()
    repo = {"repo_id": address.repo_id, "repo_type": address.repo_type, "revision": address.revision}
    api.upload_folder(
        folder_path=local,
        path_in_repo=address.folder or None,
        ignore_patterns=[MANIFEST, ".*", "**/.*"],
        commit_message="embspace atlas: tables",
        **repo,
    )
    manifest_path = f"{address.folder}/{MANIFEST}".lstrip("/")
    api.upload_file(
        path_or_fileobj=local / MANIFEST, path_in_repo=manifest_path, commit_message="embspace atlas: manifest", **repo
    )
