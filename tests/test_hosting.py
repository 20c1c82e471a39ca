"""Hosted mode: what visitors may open, the bounded download cache (LRU, single flight), upload limits.

The hub is not reachable from the tests: `FakeHub` is passed through the `hub=` parameter and lays
files out the way huggingface_hub.snapshot_download(cache_dir=...) does (blobs + snapshot links).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path

import huggingface_hub.constants
import pytest

from embspace import DEFAULT_MODEL, EmbspaceError, ModelTooLarge
from embspace.errors import Refused
from embspace.hosting import REFUSED_SOURCE, HostingPolicy
from embspace.model import ModelCache, repo_folder
from embspace.model.hub_cache import INDEX_FILE
from embspace.model.sources import HubClient


class FakeHub:
    """Stands in for the hub: each repository is a copy of `model_dir` plus a padding blob of `sizes[repo]` bytes."""

    def __init__(self, model_dir: Path | None = None, sizes: dict[str, int] | None = None, delay: float = 0.0):
        self.model_dir, self.sizes, self.delay = model_dir, sizes or {}, delay
        self.downloads: list[str] = []
        self.active = self.most_active = 0
        self._lock = threading.Lock()

    def client(self) -> HubClient:
        return HubClient(download=self.download, weight_files=self.weight_files)

    def weight_files(self, repo_id: str, revision: str | None) -> tuple[list[str], int]:
        return ["*.safetensors"], self._files_bytes(repo_id)

    def download(self, repo_id, *, revision=None, cache_dir=None, local_files_only=False, **_):
        assert cache_dir is not None, "hosted downloads must go to the app's own cache"
        with self._lock:
            self.downloads.append(repo_id)
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            time.sleep(self.delay)
            return str(self._lay_out(Path(cache_dir) / repo_folder(repo_id), repo_id))
        finally:
            with self._lock:
                self.active -= 1

    def _files(self, repo_id: str) -> dict[str, bytes]:
        files = {"config.json": b"{}"}
        if self.model_dir is not None:
            files = {p.name: p.read_bytes() for p in self.model_dir.iterdir() if p.is_file()}
        return {**files, "padding.bin": b"\0" * self.sizes.get(repo_id, 0)}

    def _files_bytes(self, repo_id: str) -> int:
        return sum(len(data) for data in self._files(repo_id).values())

    def _lay_out(self, repo: Path, repo_id: str) -> Path:
        snapshot = repo / "snapshots" / ("a" * 40)
        (repo / "blobs").mkdir(parents=True, exist_ok=True)
        snapshot.mkdir(parents=True, exist_ok=True)
        for name, data in self._files(repo_id).items():
            blob = repo / "blobs" / hashlib.sha256(data + name.encode()).hexdigest()
            blob.write_bytes(data)
            (snapshot / name).unlink(missing_ok=True)
            (snapshot / name).symlink_to(os.path.relpath(blob, snapshot))
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text("a" * 40)
        return snapshot


def hosted(tmp_path: Path, **settings) -> HostingPolicy:
    env = {"EMBSPACE_HOSTED": "1", "EMBSPACE_CACHE_DIR": str(tmp_path / "app-cache"), **settings}
    return HostingPolicy.from_env(env)


# --- settings ---------------------------------------------------------------------------------


def test_settings_come_from_the_environment_then_from_secrets(tmp_path):
    secrets = {"EMBSPACE_HOSTED": True, "EMBSPACE_ALLOWED_MODELS": ["gpt2", "org/model"], "EMBSPACE_CACHE_BYTES": "3GB"}
    policy = HostingPolicy.from_env({"EMBSPACE_CACHE_DIR": str(tmp_path), "EMBSPACE_CACHE_BYTES": "500MB"}, secrets)
    assert policy.hosted and policy.allowed_models == ("gpt2", "org/model")
    assert policy.cache_bytes == 500_000_000  # the environment wins over secrets
    assert policy.max_upload_bytes == 20_000_000  # hosted default
    assert policy.presets() == (DEFAULT_MODEL, "gpt2", "org/model") and not policy.accepts_typed_sources
    local = HostingPolicy.from_env({"EMBSPACE_WEIGHT_BUDGET_GB": "1.5"}, None)
    assert not local.hosted and local.max_upload_bytes is None and local.accepts_typed_sources
    assert local.weight_budget_bytes == 1_500_000_000 and local.presets(("a", "b")) == ("a", "b")


def test_secrets_that_cannot_be_read_count_as_absent():
    class NoSecretsFile(dict):
        def get(self, key, default=None):
            raise FileNotFoundError("no secrets.toml")

    assert not HostingPolicy.from_env({}, NoSecretsFile()).hosted


@pytest.mark.parametrize(
    ("name", "value"),
    [("EMBSPACE_HOSTED", "maybe"), ("EMBSPACE_CACHE_BYTES", "lots"), ("EMBSPACE_MAX_UPLOAD_BYTES", "-5")],
)
def test_a_bad_setting_is_named_in_one_message(name, value):
    with pytest.raises(EmbspaceError, match=name):
        HostingPolicy.from_env({name: value})


def test_the_app_cache_may_not_be_the_users_hf_cache(tmp_path, monkeypatch):
    hf_cache = tmp_path / "huggingface" / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_cache))
    for overlapping in (hf_cache, tmp_path / "huggingface"):
        with pytest.raises(EmbspaceError, match="never evict"):
            HostingPolicy.from_env({"EMBSPACE_HOSTED": "1", "EMBSPACE_CACHE_DIR": str(overlapping)})


# --- sources ----------------------------------------------------------------------------------


def test_refused_paths_get_one_message_whatever_exists(tmp_path, tiny_model, monkeypatch):
    """A visitor must not learn which server directories exist or hold a model."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "gpt2-local").symlink_to(tiny_model("gpt2"))
    monkeypatch.chdir(tmp_path)
    policy = hosted(tmp_path, EMBSPACE_ALLOW_ANY_HUB="1")
    probes = [str(tiny_model("gpt2")), str(empty), str(tmp_path / "missing"), "/etc", "../..", "./gpt2-local", "~"]
    messages = set()
    for probe in probes:
        with pytest.raises(Refused) as refused:
            policy.open_model(probe)
        messages.add(str(refused.value))
    assert messages == {REFUSED_SOURCE}


def test_hosted_without_any_hub_opens_only_the_listed_models(tmp_path):
    policy = hosted(tmp_path, EMBSPACE_ALLOWED_MODELS="gpt2, org/model")
    for allowed in (DEFAULT_MODEL, "gpt2", "org/model"):
        policy.check_source(allowed)
    for refused in ("org/other", "gpt2-medium", str(tmp_path)):
        with pytest.raises(Refused, match="operator allows"):
            policy.check_source(refused)
    assert hosted(tmp_path, EMBSPACE_ALLOW_ANY_HUB="1").check_source("org/other") is None


def test_hosted_hub_id_is_never_read_as_a_server_path(tmp_path, tiny_model, monkeypatch):
    """A directory named like an allowed hub id in the working directory is not what gets opened."""
    decoy = tmp_path / "work" / "org" / "model"
    shutil.copytree(tiny_model("bert"), decoy)
    monkeypatch.chdir(tmp_path / "work")
    fake = FakeHub(tiny_model("gpt2"))
    model = hosted(tmp_path, EMBSPACE_ALLOWED_MODELS="org/model").open_model("org/model", hub=fake.client())
    assert model.shape.architecture == "gpt2" and model.info.origin == "hub"
    assert Path(model.info.path).is_relative_to(tmp_path / "app-cache") and fake.downloads == ["org/model"]


def test_local_mode_opens_local_directories_with_no_extra_step(tiny_model):
    model = HostingPolicy.from_env({}).open_model(str(tiny_model("gpt2")))
    assert model.info.origin == "local" and model.shape.n_layers == 2


def test_hosted_bundled_model_needs_no_download(tmp_path):
    fake = FakeHub()
    model = hosted(tmp_path).open_model(DEFAULT_MODEL, hub=fake.client())
    assert model.info.origin == "bundled" and fake.downloads == []


# --- the download cache -----------------------------------------------------------------------


def test_many_threads_asking_for_one_model_download_it_once(tmp_path, tiny_model):
    fake = FakeHub(tiny_model("gpt2"), delay=0.3)
    policy = hosted(tmp_path, EMBSPACE_ALLOWED_MODELS="org/model")
    models, errors = [], []

    def open_one():
        try:
            models.append(policy.open_model("org/model", hub=fake.client()))
        except Exception as err:  # collected: an assertion in a thread would be lost
            errors.append(err)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(models) == 8
    assert fake.downloads == ["org/model"]
    assert len({m.info.path for m in models}) == 1


def test_different_models_download_side_by_side(tmp_path):
    fake = FakeHub(sizes={"org/a": 10, "org/b": 10}, delay=0.5)
    cache = ModelCache(tmp_path / "cache", 10**6)
    threads = [
        threading.Thread(target=cache.fetch, args=(repo,), kwargs={"hub": fake.client()}) for repo in ("org/a", "org/b")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(fake.downloads) == ["org/a", "org/b"] and fake.most_active == 2  # no global lock


def test_least_recently_used_models_are_evicted_to_fit_the_budget(tmp_path):
    fake = FakeHub(sizes={"org/a": 1000, "org/b": 1000, "org/c": 1000})
    user_cache = tmp_path / "user-hf-cache" / "models--org--a"
    user_cache.mkdir(parents=True)
    (user_cache / "weights").write_bytes(b"\0" * 5000)
    cache = ModelCache(tmp_path / "cache", budget_bytes=2500)
    cache.fetch("org/a", hub=fake.client())
    cache.fetch("org/b", hub=fake.client())
    time.sleep(0.01)
    cache.fetch("org/a", hub=fake.client())  # a cache hit: a is now more recent than b
    cache.fetch("org/c", hub=fake.client())
    usage = cache.usage()
    assert sorted(usage) == ["models--org--a", "models--org--c"]
    assert sum(usage.values()) <= 2500 and fake.downloads == ["org/a", "org/b", "org/c"]
    assert (user_cache / "weights").stat().st_size == 5000  # outside the app's cache: never touched


def test_eviction_makes_room_before_the_download(tmp_path):
    fake = FakeHub(sizes={"org/a": 1000, "org/b": 1000})
    cache = ModelCache(tmp_path / "cache", budget_bytes=1500)
    cache.fetch("org/a", hub=fake.client())
    seen_during_download = []
    original = fake.download
    fake.download = lambda repo, **kw: seen_during_download.append(sorted(cache.usage())) or original(repo, **kw)
    cache.fetch("org/b", hub=fake.client())
    assert seen_during_download == [[]]  # a was gone before b's files arrived
    assert sorted(cache.usage()) == ["models--org--b"]


def test_a_model_in_use_is_not_evicted(tmp_path):
    fake = FakeHub(sizes={"org/a": 1000, "org/b": 1000})
    cache = ModelCache(tmp_path / "cache", budget_bytes=1500)
    cache.fetch("org/a", hub=fake.client())
    lease = cache.lease("org/a")  # what HostingPolicy.open_model holds while the model is alive
    cache.fetch("org/b", hub=fake.client())
    assert sorted(cache.usage()) == ["models--org--a", "models--org--b"]  # over budget rather than break a
    lease.close()
    assert cache.evict() == ["models--org--a"]


def test_a_lease_of_a_collected_model_ends_with_it(tmp_path):
    """A model dropped without closing its lease (the usual end in a server) no longer pins its files."""
    fake = FakeHub(sizes={"org/a": 1000, "org/b": 1000})
    cache = ModelCache(tmp_path / "cache", budget_bytes=1500)
    cache.fetch("org/a", hub=fake.client())
    lease = cache.lease("org/a")
    assert cache.evict(1000) == []  # held
    del lease
    gc.collect()
    assert cache.evict(1000) == ["models--org--a"]


def test_the_cache_index_is_written_whole_and_leaves_no_temporary(tmp_path):
    cache = ModelCache(tmp_path / "cache", budget_bytes=10**6)
    cache.fetch("org/a", revision="v1", hub=FakeHub().client())
    index = json.loads((tmp_path / "cache" / INDEX_FILE).read_text(encoding="utf-8"))
    assert set(index) == {"models--org--a"} and set(index["models--org--a"]["snapshots"]) == {"v1"}
    assert not [p.name for p in (tmp_path / "cache").iterdir() if p.name.endswith(".tmp")]


def test_a_model_bigger_than_the_cache_is_refused_before_download(tmp_path):
    fake = FakeHub(sizes={"org/big": 5000})
    with pytest.raises(ModelTooLarge):
        ModelCache(tmp_path / "cache", budget_bytes=1000).fetch("org/big", hub=fake.client())
    assert fake.downloads == []


def test_the_opened_model_works_after_other_models_fill_the_cache(tmp_path, tiny_model):
    """The lease keeps a live model's files while later downloads evict everything else."""
    size = sum(p.stat().st_size for p in tiny_model("gpt2").iterdir())
    fake = FakeHub(tiny_model("gpt2"))
    policy = hosted(tmp_path, EMBSPACE_ALLOW_ANY_HUB="1", EMBSPACE_CACHE_BYTES=str(int(size * 1.5)))
    first = policy.open_model("org/first", hub=fake.client())
    policy.open_model("org/second", hub=fake.client())
    assert first.layer(1).W_V.shape[0] == 4  # its files are still there to read
    index = json.loads((tmp_path / "app-cache" / "embspace-index.json").read_text())
    assert {"models--org--first", "models--org--second"} <= set(index)


# --- uploads ----------------------------------------------------------------------------------


def test_uploads_over_the_limit_are_refused(tmp_path):
    policy = hosted(tmp_path, EMBSPACE_MAX_UPLOAD_BYTES="1KB")
    policy.check_upload(1000)
    with pytest.raises(Refused, match=r"upload is 2.5 kB; this server accepts uploads up to 1.0 kB"):
        policy.check_upload(2500)
    with pytest.raises(Refused):
        list(policy.upload_texts(b"x" * 2000, "big.txt"))


def test_an_upload_is_read_in_memory_and_never_written_under_its_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    texts = list(HostingPolicy().upload_texts(b'{"text": "hello"}\n', "../../evil/name.jsonl"))
    assert texts == ["hello"]
    assert sorted(tmp_path.rglob("*")) == before and not (tmp_path.parent.parent / "evil").exists()


def test_hosted_offline_reads_the_apps_own_cache_through_huggingface_hub(tmp_path, tiny_model, monkeypatch):
    """The real snapshot_download(cache_dir=..., local_files_only=True) path: the app's cache, not the user's."""
    app_cache = tmp_path / "app-cache"
    repo = app_cache / "models--someone--tiny"
    shutil.copytree(tiny_model("gpt2"), repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "user-hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = hosted(tmp_path, EMBSPACE_ALLOWED_MODELS="someone/tiny").open_model("someone/tiny")
    assert model.info.origin == "hub" and Path(model.info.path) == repo / "snapshots" / ("0" * 40)
    assert not (tmp_path / "user-hf-cache").exists()
