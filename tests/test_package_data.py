"""Whatever a notebook or a library function reads for results ships inside the package (a wheel has no docs/)."""
from __future__ import annotations

import fnmatch
import io
import json
import re
import tokenize
import tomllib
from pathlib import Path

import pytest

from gancomp_lite import presets
from gancomp_lite.viz import distill as vdist
from gancomp_lite.viz import sensitivity as V

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gancomp_lite"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
DOCS_READ = re.compile(r"""["']docs["']|["']docs/|\bdocs/\S+\.(json|md|csv|png|txt)""")


def _package_globs() -> list[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    return data["gancomp_lite"]


def _in_wheel(path: Path) -> bool:
    """Would setuptools put `path` into the wheel? (inside gancomp_lite/ and matched by a package-data glob)"""
    rel = path.resolve().relative_to(PACKAGE.resolve()).as_posix()
    return any(fnmatch.fnmatch(rel, glob) for glob in _package_globs())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_read_nothing_from_docs(path):
    for i, cell in enumerate(json.loads(path.read_text())["cells"]):
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            assert not DOCS_READ.search(source), f"{path.name} cell {i} reads from docs/: {source[:200]}"


def _string_literals(path: Path):
    """String literals of a module that are not docstrings (a docstring may mention docs/teachers.md)."""
    previous = tokenize.NEWLINE
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.STRING and previous not in (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT,
                                                            tokenize.DEDENT):
            yield tok.string
        if tok.type not in (tokenize.COMMENT,):
            previous = tok.type


def test_library_opens_no_path_under_docs():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for literal in _string_literals(path):
            if re.fullmatch(r"""[rfbu]*["']docs(/[^"']*)?["']""", literal):
                offenders.append(f"{path.relative_to(ROOT)}: {literal}")
    assert not offenders, offenders


def test_every_shipped_result_is_package_data():
    files = sorted(presets.RESULTS_DIR.iterdir())
    assert files and all(_in_wheel(f) for f in files if f.is_file()), [f.name for f in files if not _in_wheel(f)]


@pytest.mark.parametrize("arch", ["resnet9", "tpgan"])
def test_result_loaders_read_inside_the_package(arch):
    for path in (vdist.sweep_path(arch), vdist.baselines_path(arch), V.results_path(arch)):
        assert path.is_file() and _in_wheel(path), path
    assert vdist.load_sweep(arch)["arch"] == arch
    assert vdist.load_baselines(arch)["arch"] == arch
    assert V.load_shipped(arch)["arch"] == arch


def test_missing_result_names_the_command_that_writes_it():
    with pytest.raises(FileNotFoundError, match="benchmarks/sensitivity.py --arch crgan"):
        V.load_shipped("crgan")


def test_provenance_says_when_a_result_predates_the_shipped_teacher():
    manifest = vdist.shipped_teacher_manifest("resnet9")
    same = vdist.teacher_provenance("resnet9", manifest["sha256"], manifest["steps"])
    assert same["shipped"] and "shipped teacher" in same["text"]
    older = vdist.teacher_provenance("resnet9", "0" * 64, 10)
    assert not older["shipped"] and "OLDER" in older["text"] and manifest["sha256"][:8] in older["text"]
    study = V.provenance(V.load_shipped("resnet9"))
    assert not study["shipped"] and "does not record" in study["text"]   # the shipped study predates today's teacher


def test_baselines_table_and_rows():
    record = vdist.load_baselines("resnet9")
    measurement = record["measurements"][-1]
    table = vdist.baselines_table(measurement).splitlines()
    assert table[0].startswith("| student | D | MACs (M)") and len(table) == 2 + len(measurement["rows"])
    assert {r["student"] for r in measurement["rows"]} >= set(vdist.BASELINE_STUDENTS)
    assert vdist.baseline_row(measurement, "scratch")["D"] == "inherited"
    with pytest.raises(KeyError, match="no 'nobody' row"):
        vdist.baseline_row(measurement, "nobody")


def test_baselines_measurement_from_summaries():
    teacher = {"config": "t", "macs": 2e6, "params": 1e6, "sha256": "ab" * 32, "steps": 5,
               "metrics": {"l1": 0.03, "ssim": 0.8, "rank1": {"mean": 0.7, "15": 0.9},
                           "raw": {"l1": 0.1, "ssim": 0.5}, "rank1_raw": {"mean": 0.5, "15": 0.9}}}

    def summary(d):
        return {"teacher": teacher, "macs": 1e6, "params": 5e5, "d_source": d, "judge_sha256": "cd" * 32,
                "metrics": {"l1": 0.04, "ssim": 0.7, "rank1": {"mean": 0.4, "15": 0.6}}}

    m = vdist.baselines_measurement({"scratch": summary("inherited from the teacher"),
                                     "feature, random D": summary("random (inherit_d=False)")},
                                    label="x", device="cpu", command="c", steps=5, seed=0)
    assert [r["student"] for r in m["rows"]] == ["teacher", "raw profiles", "scratch", "feature, random D"]
    assert m["rows"][3]["D"] == "random" and m["teacher"]["sha256"] == "ab" * 32 and m["scored_by"]["note"] == "the judge"
    assert "| scratch | inherited | 1.0 |" in vdist.baselines_table(m)
