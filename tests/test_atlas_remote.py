"""embspace.atlas.remote: an atlas read from a URI (a local HTTP server through fsspec's HTTP filesystem, and
memory://), lazily and through a bounded cache; `atlas build --out URI`; hf:// addresses; the dashboard."""

from __future__ import annotations

import functools
import json
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from app_harness import app_fixture, assert_clean, fresh_server_fixture  # noqa: F401
from huggingface_hub import HfFileSystem

from embspace import open_model
from embspace.atlas import Atlas, AtlasError, build_atlas, find_atlas
from embspace.atlas.remote import AtlasLocation, HubAddress, PartitionCache, hub_address, is_uri
from embspace.cli.main import main
from embspace.compute.projections import head_top_pairs
from embspace.errors import EmbspaceError
from embspace.search.index import search
from embspace.settings import SettingReader, atlas_cache_bytes, atlas_dir

K = 12


class RangeHandler(SimpleHTTPRequestHandler):
    """http.server with Range requests (fsspec reads files by range) and a log of every GET path."""

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        wanted = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not wanted or not path.is_file():
            return super().do_GET()
        data = path.read_bytes()
        first, _, last = wanted.removeprefix("bytes=").partition("-")
        start, end = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self.wfile.write(data[start : end + 1])


@pytest.fixture(scope="module")
def built(tiny_model, tmp_path_factory):
    """(tiny GPT-2 directory, opened model, directory holding the atlas `gpt2/`)."""
    path = tiny_model("gpt2")
    model = open_model(str(path))
    root = tmp_path_factory.mktemp("served")
    build_atlas(model, root / "gpt2", k=K, progress=False)
    return path, model, root


@pytest.fixture(scope="module")
def server(built):
    """A local HTTP server over the atlas root; `server.requests` lists the GET paths it answered."""
    http = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(built[2])))
    http.requests = []
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    http.url = f"http://127.0.0.1:{http.server_address[1]}"
    yield http
    http.shutdown()


def rows(atlas: Atlas, table: str) -> pa.Table:
    """A whole table, in one order (every column ascending)."""
    whole = atlas.dataset(table).to_table()
    return whole.sort_by([(name, "ascending") for name in whole.column_names])


def parquet_reads(server) -> set[str]:
    """The Parquet files the server sent (some bytes of), as relative paths with '=' unquoted."""
    return {p.replace("%3D", "=").lstrip("/").removeprefix("gpt2/") for p in server.requests if p.endswith(".parquet")}


def test_remote_atlas_equals_the_local_one(built, server, tmp_path):
    path, model, root = built
    local = Atlas.open(root / "gpt2")
    remote = Atlas.open(f"{server.url}/gpt2", PartitionCache(tmp_path / "cache", 10**9))
    assert remote.directory == f"{server.url}/gpt2" and remote.manifest == local.manifest and remote.matches(model)
    for table in ("pairs", "neurons", "heads", "tokens"):
        assert remote.layers(table) == local.layers(table) == [0, 1]
    for layer in (0, 1):
        for kind in ("vo", "qk"):
            pd.testing.assert_frame_equal(remote.head_pairs(kind, layer, 1, "-"), local.head_pairs(kind, layer, 1, "-"))
        for vector, frame in local.neuron_tokens(layer, 5).items():
            pd.testing.assert_frame_equal(remote.neuron_tokens(layer, 5)[vector], frame)
    pd.testing.assert_frame_equal(remote.head_scores(), local.head_scores())
    assert rows(remote, "pairs").equals(rows(local, "pairs"))
    hits = search(model, ["the"], atlas=remote)
    assert hits and [h.as_dict() for h in hits] == [h.as_dict() for h in search(model, ["the"], atlas=local)]


def test_a_view_reads_only_its_partition_once_and_listing_reads_none(built, server, tmp_path):
    """Counted at the server: opening reads the manifest, listing layers reads no Parquet file, a head view
    reads its (layer, kind) partition only, and a second head of that partition is served by the cache."""
    cache = PartitionCache(tmp_path / "cache", 10**9)
    server.requests.clear()
    atlas = Atlas.open(f"{server.url}/gpt2", cache)
    assert server.requests == ["/gpt2/manifest.json"]
    assert atlas.layers("pairs") == [0, 1] and atlas.layers("neurons") == [0, 1]
    assert parquet_reads(server) == set()
    atlas.head_pairs("vo", 1, 0)
    assert parquet_reads(server) == {"pairs/layer=1/kind=vo/part.parquet"}
    before = len(server.requests)
    atlas.head_pairs("vo", 1, 1)
    assert len(server.requests) == before  # the cached file; the listing is not read again either
    atlas.neuron_tokens(0, 3)
    assert parquet_reads(server) == {"pairs/layer=1/kind=vo/part.parquet", "neurons/layer=0/part.parquet"}
    server.requests.clear()
    search(built[1], ["the"], atlas=atlas)
    # a token search scans the pairs and the token-sorted index (by range), never the neuron lists
    assert {path.split("/")[0] for path in parquet_reads(server)} == {"pairs", "tokens"}


def test_the_cache_stays_within_its_budget_least_recently_used_first(built, server, tmp_path):
    root = built[2] / "gpt2"
    sizes = {p: p.stat().st_size for p in root.glob("neurons/layer=*/part.parquet")}
    budget = max(sizes.values()) + 100  # one neuron partition fits, not two
    cache = PartitionCache(tmp_path / "cache", budget)
    atlas = Atlas.open(f"{server.url}/gpt2", cache)
    local = Atlas.open(root)
    for layer in (0, 1, 0):
        pd.testing.assert_frame_equal(atlas.neuron_tokens(layer, 2)["V"], local.neuron_tokens(layer, 2)["V"])
        stored = cache.stored()
        assert sum(stat.st_size for stat in stored.values()) <= budget
        assert [p.relative_to(cache.directory / atlas.location.identity).as_posix() for p in stored] == [
            f"neurons/layer={layer}/part.parquet"
        ]
    tiny = PartitionCache(tmp_path / "tiny", 10)  # smaller than any file: read by range, nothing kept
    through = Atlas.open(f"{server.url}/gpt2", tiny)
    assert isinstance(through._partition("neurons", layer=1), pa.NativeFile)
    pd.testing.assert_frame_equal(through.neuron_tokens(1, 2)["K"], local.neuron_tokens(1, 2)["K"])
    assert tiny.stored() == {}


def test_a_rebuilt_remote_atlas_never_reads_the_stale_cache(built, tmp_path):
    """The cache key holds the manifest's bytes: a new manifest at the same URI starts a new cache folder."""
    fs = fsspec.filesystem("memory")
    shutil_copy_to_memory(built[2] / "gpt2", fs, "/rebuilt/gpt2")
    cache = PartitionCache(tmp_path / "cache", 10**9)
    first = Atlas.open("memory://rebuilt/gpt2", cache)
    first.head_pairs("qk", 0, 0)
    manifest = json.loads(fs.cat_file("/rebuilt/gpt2/manifest.json"))
    fs.pipe_file("/rebuilt/gpt2/manifest.json", json.dumps({**manifest, "created": "later"}).encode())
    fs.rm("/rebuilt/gpt2/pairs/layer=0/kind=qk/part.parquet")
    second = Atlas.open("memory://rebuilt/gpt2", cache)
    assert second.location.identity != first.location.identity
    with pytest.raises(EmbspaceError, match="has no pairs"):
        second.head_pairs("qk", 0, 0)


def shutil_copy_to_memory(local: Path, fs, root: str) -> None:
    for path in local.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            fs.pipe_file(f"{root}/{path.relative_to(local).as_posix()}", path.read_bytes())


def test_build_out_a_uri_uploads_the_manifest_last_and_reads_back(built, tiny_model, capsys):
    path, model, root = built
    assert main(["atlas", "build", str(path), "--out", "memory://built/gpt2", "--k", str(K), "--no-progress"]) == 0
    assert "memory://built/gpt2" in capsys.readouterr().out
    store = [name for name in fsspec.filesystem("memory").store if name.startswith("/built/gpt2/")]
    assert store[-1] == "/built/gpt2/manifest.json" and len(store) > 1  # written last
    assert not any("/." in name for name in store)  # no lock file, no temporaries
    remote, local = Atlas.open("memory://built/gpt2"), Atlas.open(root / "gpt2")
    assert {k: v for k, v in remote.manifest.items() if k != "created"} == {
        k: v for k, v in local.manifest.items() if k != "created"
    }
    for table in ("pairs", "neurons", "heads", "tokens"):
        assert rows(remote, table).equals(rows(local, table))
    other = tiny_model("llama")
    assert main(["atlas", "build", str(other), "--out", "memory://built/gpt2", "--k", str(K), "--no-progress"]) == 2
    assert "holds an atlas of" in capsys.readouterr().err
    assert Atlas.open("memory://built/gpt2").manifest == remote.manifest  # nothing overwritten


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("/gpt2-missing", "holds no atlas"),
        ("nope://somewhere/atlas", "Protocol not known"),
        ("hf://datasets/only-org", "is not a Hugging Face address"),
    ],
)
def test_a_wrong_uri_is_one_clear_error(server, address, message, capsys, built):
    uri = server.url + address if address.startswith("/") else address
    with pytest.raises(AtlasError, match=message):
        Atlas.open(uri)
    assert main(["search", "the", "--model", str(built[0]), "--atlas", uri]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_an_unreachable_server_is_one_clear_error():
    with pytest.raises(AtlasError, match="cannot read http://127.0.0.1:9/atlas/manifest.json"):
        Atlas.open("http://127.0.0.1:9/atlas")


def test_find_atlas_looks_one_level_down_a_uri(built, server, tmp_path, tiny_model):
    path, model, _ = built
    found = find_atlas(model, [tmp_path / "none", server.url], PartitionCache(tmp_path, 10**9))
    assert found is not None and found.directory == f"{server.url}/gpt2"
    assert find_atlas(open_model(str(tiny_model("llama"))), [server.url]) is None


def test_hub_addresses_are_parsed_without_the_network(monkeypatch):
    assert hub_address("hf://datasets/org/atlases@v2/minilm") == HubAddress("dataset", "org/atlases", "v2", "minilm")
    assert hub_address("hf://datasets/org/atlases") == HubAddress("dataset", "org/atlases", None, "")
    assert hub_address("hf://org/model-atlas/x/y") == HubAddress("model", "org/model-atlas", None, "x/y")
    for wrong in ("hf://datasets/org", "hf://", "hf://datasets/org/@v1"):
        with pytest.raises(AtlasError, match="hf://datasets/ORG/NAME"):
            hub_address(wrong)
    location = AtlasLocation.of("hf://datasets/org/atlases@v2/minilm")
    assert isinstance(location.fs, HfFileSystem) and location.root == "datasets/org/atlases@v2/minilm"
    assert location.remote and is_uri("hf://datasets/org/atlases") and not is_uri("C:/atlases")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AtlasError, match="cannot read datasets/org/atlases/manifest.json"):
        Atlas.open("hf://datasets/org/atlases")


def test_settings_keep_a_uri_and_parse_the_cache_budget():
    reader = SettingReader.of({"EMBSPACE_ATLAS_DIR": "hf://datasets/org/atlases", "EMBSPACE_ATLAS_CACHE_BYTES": "2MB"})
    assert atlas_dir(reader) == "hf://datasets/org/atlases" and atlas_cache_bytes(reader) == 2_000_000
    assert atlas_dir(SettingReader.of({"EMBSPACE_ATLAS_DIR": "atlases/x"})) == Path("atlases/x")
    assert PartitionCache.from_settings(reader).budget_bytes == 2_000_000


def test_the_dashboard_reads_an_atlas_named_by_uri(app, built, server, monkeypatch, tmp_path):
    path, model, _ = built
    monkeypatch.setenv("EMBSPACE_ATLAS_DIR", server.url)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    at = app("pages/vo.py", model=str(path), layer="1", head="1", k="5", pairs="5")
    assert_clean(at)
    assert any(f"From the atlas in `{server.url}/gpt2`" in caption.value for caption in at.caption)
    np.testing.assert_allclose(at.dataframe[0].value["score"], head_top_pairs(model, "vo", 1, 1, 5).scores, rtol=1e-5)
    assert os.listdir(tmp_path / "embspace" / "atlas")  # the fetched partition, in the cache beside the hub's
