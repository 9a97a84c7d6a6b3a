"""Colab: every notebook's first cell installs the package on Colab only, and `setup()` reports device and preset."""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import torch
from IPython.core.inputtransformer2 import TransformerManager

from gancomp_lite import colab, presets

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _first_cell(path: Path) -> dict:
    return json.loads(path.read_text())["cells"][0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_starts_with_the_colab_cell(path):
    cell = _first_cell(path)
    assert cell["cell_type"] == "code", f"{path.name}: the first cell must be the Colab install cell"
    assert "".join(cell["source"]) == colab.first_cell_source(), \
        f"{path.name}: paste gancomp_lite.colab.first_cell_source() as the first cell"


def _run_first_cell(monkeypatch, in_colab: bool) -> list[tuple[str, str]]:
    """Execute the first cell as IPython would (magics transformed); return the line magics it ran."""
    calls: list[tuple[str, str]] = []
    shell = types.SimpleNamespace(run_line_magic=lambda name, line, *a: calls.append((name, line)))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(colab, "setup", lambda *a, **k: calls.append(("setup", "")))
    code = TransformerManager().transform_cell(colab.first_cell_source())
    exec(compile(code, "<first cell>", "exec"), {"get_ipython": lambda: shell})
    return calls


def test_first_cell_installs_this_repository_on_colab_only(monkeypatch):
    calls = _run_first_cell(monkeypatch, in_colab=True)
    assert calls[-1] == ("setup", "")
    (name, line), = calls[:-1]
    assert name == "pip" and line.startswith("install") and colab.REPO_URL in line
    words = line.replace('"', " ").split()
    assert not {"torch", "ipywidgets", "-U", "--upgrade", "--force-reinstall"} & set(words)   # Colab's own are kept
    assert _run_first_cell(monkeypatch, in_colab=False) == [("setup", "")]                  # elsewhere: nothing installed


def test_repo_url_is_defined_once_and_used_by_the_readme():
    assert colab.REPO_URL.startswith("https://github.com/") and colab.REPO_URL in colab.PIP_SPEC
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Open in Colab", 1)[1].split("\n## ", 1)[0]
    repo_path = colab.REPO_URL.removeprefix("https://github.com/")
    for path in NOTEBOOKS:
        assert f"colab.research.google.com/github/{repo_path}/blob/main/notebooks/{path.name}" in section, path.name


@pytest.fixture
def no_preset_env(monkeypatch):
    monkeypatch.delenv("GANCOMP_QUICK", raising=False)
    monkeypatch.delenv("CI", raising=False)


def test_fresh_runtime_gets_full_preset_with_its_cost_and_the_quick_offer(no_preset_env, capsys):
    info = colab.setup()
    out = capsys.readouterr().out
    assert info.preset == "full" and not info.preset_chosen
    full = presets.PRESETS["full"]
    images = (full.train_ids + full.test_ids) * 13 * full.illuminations
    assert f"{images:,} images" in out and "GB" in out and "minutes" in out
    assert "setup(quick=True)" in out and 'GANCOMP_QUICK"] = "1"' in out


def test_setup_quick_sets_the_preset_for_the_kernel(no_preset_env, monkeypatch, capsys):
    info = colab.setup(quick=True)
    assert info.preset == "quick" and info.preset_chosen and presets.notebook_config().name == "quick"
    assert "full preset renders" not in capsys.readouterr().out
    monkeypatch.delenv("GANCOMP_QUICK")


def test_setup_uses_the_gpu_when_present_and_says_so_on_colab(no_preset_env, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    info = colab.setup(quick=True)
    assert info.colab and info.device == torch.device("cpu")
    assert "Change runtime type > GPU" in capsys.readouterr().out
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla T4")
    info = colab.setup(quick=True, verbose=False)
    assert info.device == torch.device("cuda") == presets.notebook_device()
    assert "Tesla T4" in colab.setup_message(info)
    monkeypatch.delenv("GANCOMP_QUICK")
