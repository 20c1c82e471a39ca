"""embspace.settings: every EMBSPACE_* setting read once, from the environment first, then from secrets."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

from embspace import EmbspaceError, settings
from embspace.hosting import HostingPolicy
from embspace.settings import SETTINGS, AnnotationSettings, SettingReader

ROOT = Path(__file__).resolve().parents[1]
VARIABLE = re.compile(r"EMBSPACE_[A-Z_]+")


class NoSecretsFile(dict):
    """What st.secrets does without a .streamlit/secrets.toml: every read raises."""

    def get(self, key, default=None):
        raise FileNotFoundError("no secrets.toml")


class RecordingEnviron(dict):
    """An empty environment that remembers which names were asked for."""

    def __init__(self):
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)


def test_the_environment_beats_secrets_and_an_empty_value_counts_as_unset():
    reader = SettingReader.of(
        {"EMBSPACE_CACHE_BYTES": "1GB", "EMBSPACE_ATLAS_DIR": ""},
        {"EMBSPACE_CACHE_BYTES": "3GB", "EMBSPACE_ATLAS_DIR": "/srv/atlases"},
    )
    assert settings.hub_cache_bytes(reader) == 1_000_000_000
    assert settings.atlas_dir(reader) == Path("/srv/atlases")


def test_secrets_give_toml_values_the_environment_cannot():
    secrets = {
        "EMBSPACE_HOSTED": True,
        "EMBSPACE_ALLOWED_MODELS": ["gpt2", " gpt2", "org/m"],
        "EMBSPACE_ANNOTATIONS_SEED": ["~/a.json", ""],
    }
    reader = SettingReader.of({}, secrets)
    assert settings.hosted(reader) is True and settings.allowed_models(reader) == ("gpt2", "org/m")
    assert settings.annotation_seed_paths(reader) == (Path("~/a.json").expanduser(),)
    assert settings.max_upload_bytes(reader) == settings.DEFAULT_HOSTED_MAX_UPLOAD_BYTES  # the hosted default


def test_a_missing_secrets_file_counts_as_no_secrets(tmp_path):
    reader = SettingReader.of({"XDG_CACHE_HOME": str(tmp_path)}, NoSecretsFile())
    assert {name: parse(reader) for name, parse in SETTINGS.items()} == {
        name: parse(SettingReader.of({"XDG_CACHE_HOME": str(tmp_path)})) for name, parse in SETTINGS.items()
    }
    assert settings.hub_cache_dir(reader) == tmp_path / "embspace" / "hub"
    assert settings.weight_budget_bytes(reader) == settings.DEFAULT_WEIGHT_BUDGET_BYTES
    assert AnnotationSettings.from_env({"EMBSPACE_DATA_DIR": str(tmp_path)}, NoSecretsFile()).data_dir == tmp_path


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("EMBSPACE_HOSTED", "maybe", "is not a yes/no setting"),
        ("EMBSPACE_ALLOW_ANY_HUB", "sometimes", "is not a yes/no setting"),
        ("EMBSPACE_CACHE_BYTES", "lots", "is not a size"),
        ("EMBSPACE_MAX_UPLOAD_BYTES", "-5", "is not a size"),
        ("EMBSPACE_WEIGHT_BUDGET_GB", "big", "is not a number of gigabytes"),
    ],
)
def test_a_bad_value_is_one_message_naming_the_setting(name, value, message):
    with pytest.raises(EmbspaceError, match=f"^{name}={value!r} {message}"):
        SETTINGS[name](SettingReader.of({name: value}))


def test_a_bad_annotation_mode_names_the_setting_and_the_choices():
    with pytest.raises(ValueError, match="EMBSPACE_ANNOTATIONS must be one of readwrite, readonly, not 'sometimes'"):
        AnnotationSettings.from_env({"EMBSPACE_ANNOTATIONS": "sometimes"})
    assert AnnotationSettings.from_env({"EMBSPACE_ANNOTATIONS": "Read-Only"}).read_only


def test_sizes_and_gigabytes_in_every_accepted_spelling():
    assert [settings.parse_bytes("X", raw, None) for raw in (5000, "5e3", "5kB", " 5 KB ", "", None)] == [
        5000,
        5000,
        5000,
        5000,
        None,
        None,
    ]
    assert [settings.parse_gigabytes("X", raw, 7) for raw in ("1.5", 2, "-1", " ", None)] == [
        1_500_000_000,
        2_000_000_000,
        0,
        7,
        7,
    ]
    assert [settings.parse_flag("X", raw) for raw in ("on", "OFF", " yes", "0", "", False, None)] == [
        True,
        False,
        True,
        False,
        False,
        False,
        False,
    ]


def test_each_setting_is_parsed_by_one_function_that_reads_it():
    """SETTINGS names the one parser of each variable, and that parser asks for it (max upload also asks
    whether the server is hosted: its default depends on it)."""
    for name, parse in SETTINGS.items():
        environ = RecordingEnviron()
        parse(SettingReader.of(environ))
        assert name in environ.asked and environ.asked <= {
            name,
            "EMBSPACE_HOSTED",
            "XDG_CACHE_HOME",
            "XDG_DATA_HOME",
            "LOCALAPPDATA",
        }


def test_no_module_but_settings_names_an_embspace_variable():
    """Every EMBSPACE_* name the engine or the dashboard uses is a constant of embspace/settings.py."""
    sources = [
        *ROOT.glob("embspace/**/*.py"),
        *ROOT.glob("dashboard/**/*.py"),
        *ROOT.glob("pages/**/*.py"),
        ROOT / "app.py",
    ]
    named: dict[str, set[str]] = {}
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and VARIABLE.fullmatch(node.value):
                named.setdefault(node.value, set()).add(str(path.relative_to(ROOT)))
    assert named and all(places == {os.path.join("embspace", "settings.py")} for places in named.values()), named
    assert set(named) == set(SETTINGS)


def test_the_hosting_policy_reads_its_settings_through_settings(tmp_path):
    environ = {"EMBSPACE_HOSTED": "1", "EMBSPACE_CACHE_DIR": str(tmp_path), "EMBSPACE_WEIGHT_BUDGET_GB": "0.5"}
    policy = HostingPolicy.from_env(environ, {"EMBSPACE_ALLOW_ANY_HUB": "yes", "EMBSPACE_MAX_UPLOAD_BYTES": "1MB"})
    reader = SettingReader.of(environ, {"EMBSPACE_ALLOW_ANY_HUB": "yes", "EMBSPACE_MAX_UPLOAD_BYTES": "1MB"})
    assert (
        policy.hosted,
        policy.allow_any_hub,
        policy.cache_dir,
        policy.max_upload_bytes,
        policy.weight_budget_bytes,
    ) == (True, True, tmp_path, 1_000_000, 500_000_000)
    assert settings.hosted(reader) and settings.hub_cache_dir(reader) == tmp_path
