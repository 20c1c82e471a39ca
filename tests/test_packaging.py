"""pyproject.toml: the same pins as requirements*.txt, the `embspace` console script, and what `pip install .` ships."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from setuptools import find_packages

import embspace.cli.main

REPO = Path(__file__).parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def pins(requirements: Path) -> list[str]:
    """The requirement lines of a pip requirements file: no comments, no pip options (-r, --extra-index-url)."""
    lines = (line.split("#", 1)[0].strip() for line in requirements.read_text(encoding="utf-8").splitlines())
    return sorted(line for line in lines if line and not line.startswith("-"))


def test_dependencies_are_the_pins_of_requirements_txt():
    """The two lists cannot drift: `pip install .` gets exactly what `pip install -r requirements.txt` gets."""
    assert sorted(PYPROJECT["project"]["dependencies"]) == pins(REPO / "requirements.txt")
    assert "torch==2.13.0" in PYPROJECT["project"]["dependencies"]


def test_ray_extra_is_the_pins_of_requirements_ray_txt():
    assert sorted(PYPROJECT["project"]["optional-dependencies"]["ray"]) == pins(REPO / "requirements-ray.txt")


def test_console_script_resolves_to_the_cli_main():
    module, _, attribute = PYPROJECT["project"]["scripts"]["embspace"].partition(":")
    entry_point = getattr(importlib.import_module(module), attribute)
    assert callable(entry_point) and entry_point is embspace.cli.main.main


def test_console_script_exit_status_is_mains_return_value(tmp_path):
    """The wrapper pip writes for a console script is `sys.exit(main())`: 0 on success, 2 on bad input."""
    module, _, attribute = PYPROJECT["project"]["scripts"]["embspace"].partition(":")
    script = tmp_path / "embspace"
    script.write_text(f"import sys\nfrom {module} import {attribute}\nsys.exit({attribute}())\n", encoding="utf-8")

    def run(*argv: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(script), *argv]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)}
        )

    done = run("info", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["origin"] == "bundled"
    failed = run("info", str(tmp_path / "no-such-model"))
    assert failed.returncode == 2 and failed.stdout == "" and failed.stderr.startswith("error: ")


def test_package_discovery_ships_embspace_and_nothing_else():
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    shipped = set(find_packages(where=str(REPO), include=include))
    engine = {".".join(init.parent.relative_to(REPO).parts) for init in (REPO / "embspace").rglob("__init__.py")}
    assert shipped == engine and {"embspace", "embspace.cli", "embspace.model.adapters"} <= shipped
