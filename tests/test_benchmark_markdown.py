"""Benchmark scripts that regenerate a doc keep the prose written beside their tables."""
from __future__ import annotations

import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compress_baselines_markdown_keeps_the_notes_and_a_first_time_file(tmp_path):
    baselines = _load("compress_baselines")
    marker, path = baselines.NOTES_MARKER, tmp_path / "baselines.md"
    path.write_text("prose written before the marker existed\n")
    baselines.write_markdown(path, "| table 1 |")
    assert path.read_text() == f"| table 1 |\n{marker}\nprose written before the marker existed\n"
    baselines.write_markdown(path, "| table 2 |")
    assert path.read_text() == f"| table 2 |\n{marker}\nprose written before the marker existed\n"
    fresh = tmp_path / "new.md"
    baselines.write_markdown(fresh, "| table |")
    assert fresh.read_text() == f"| table |\n{marker}\n"
