"""environment.yml (conda users) and pyproject.toml (pip, CI) must ask for the same packages."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}          # the same package under conda-forge's name


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_every_runtime_and_test_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["test"] \
        + project["optional-dependencies"]["notebooks"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(dep) for dep in env["dependencies"] if isinstance(dep, str)}
    pip = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    assert env["channels"] == ["conda-forge"]
    assert "-e ." in pip                      # the package itself, from the checkout
    missing = sorted({CONDA_NAMES.get(_name(r), _name(r)) for r in wanted} - conda)
    assert not missing, f"environment.yml lacks {missing}"
