"""The shipped compressed students: they load as plain generators, match their reports, and name the
teacher and the judge they were measured against."""
from __future__ import annotations

import json

import pytest
import torch

from gancomp_lite.checkpoint import read_manifest, sha256_file
from gancomp_lite.compress.pipeline import RESULTS_DIR, SHIPPED_FILE, TEACHERS, shipped_reports
from gancomp_lite.evaluate import load_generator
from gancomp_lite.teachers import JUDGE_FILE, TEACHER_FILE, WEIGHTS_DIR

SHIPPED = [arch for arch in TEACHERS if (WEIGHTS_DIR / SHIPPED_FILE.format(arch=arch, preset="quick")).exists()]


def test_at_least_one_student_is_shipped():
    assert SHIPPED, "no compressed quick student in gancomp_lite/weights"
    assert sorted(shipped_reports("quick")) == sorted(SHIPPED)


@pytest.mark.parametrize("arch", SHIPPED)
def test_shipped_student_loads_and_matches_its_report(arch):
    path = WEIGHTS_DIR / SHIPPED_FILE.format(arch=arch, preset="quick")
    manifest = read_manifest(path)
    report = json.loads((RESULTS_DIR / manifest["results"]).read_text())
    student = load_generator(path)
    assert manifest["config"] == report["table3"]["student"]["config"]
    assert report["table3"]["macs_ratio"] >= 10 and manifest["macs"] == report["table3"]["student"]["macs"]
    assert manifest["teacher"]["sha256"] == sha256_file(WEIGHTS_DIR / TEACHER_FILE.format(arch=arch, preset="quick"))
    assert report["scored_by"]["sha256"] == read_manifest(WEIGHTS_DIR / JUDGE_FILE.format(preset="quick"))["sha256"]
    assert sum(p.numel() for p in student.parameters()) == report["table3"]["student"]["params"]
    with torch.no_grad():
        out = student(torch.zeros(1, 3, manifest["size"], manifest["size"]))
    assert out.shape == (1, 3, manifest["size"], manifest["size"]) and torch.isfinite(out).all()


def _copy_shipped(arch: str, tmp_path):
    """The files rescoring `arch` reads, copied so that it can rewrite them: (weights_dir, results_dir)."""
    import shutil

    weights, results = tmp_path / "weights", tmp_path / "results"
    weights.mkdir(), results.mkdir()
    for name in (TEACHER_FILE.format(arch=arch, preset="quick"), JUDGE_FILE.format(preset="quick"),
                 SHIPPED_FILE.format(arch=arch, preset="quick")):
        for path in (WEIGHTS_DIR / name, (WEIGHTS_DIR / name).with_suffix(".json")):
            if path.exists():
                shutil.copy(path, weights / path.name)
    shutil.copy(RESULTS_DIR / f"compress_{arch}-quick.json", results)
    return weights, results


def _assert_close(got, want, where: str = "") -> None:
    """Nested dicts and lists equal; numbers to 1e-6, or 1e-4 relative: float32 sums (ID-FID's matrix square
    root most) move in their last digits between CPUs, while one probe more or less moves a rank-1 by 1e-3."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), where
        for key in want:
            _assert_close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_close(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-4, abs=1e-6), where
    else:
        assert got == want, where


def test_rescoring_a_shipped_student_reproduces_its_report(tmp_path):
    """The shipped report is what today's test split and judge measure (else: compress_results.py --rescore)."""
    from gancomp_lite.compress.pipeline import rescore_shipped

    arch = "pim" if "pim" in SHIPPED else SHIPPED[0]
    weights, results = _copy_shipped(arch, tmp_path)
    shipped = json.loads((results / f"compress_{arch}-quick.json").read_text())
    rescored = rescore_shipped(arch, weights_dir=weights, results_dir=results, progress=False)
    for key in ("teacher", "student", "raw", "test", "scored_by", "paired_difference"):
        _assert_close(rescored[key], shipped[key], key)
    assert read_manifest(weights / SHIPPED_FILE.format(arch=arch, preset="quick"))["metrics"]["rank1"]["mean"] == \
        pytest.approx(shipped["student"]["rank1"]["mean"], abs=1e-6)


def test_rescoring_refuses_a_student_of_another_teacher(tmp_path):
    from gancomp_lite.checkpoint import load_checkpoint, save_checkpoint
    from gancomp_lite.compress.pipeline import CompressError, rescore_shipped

    arch = SHIPPED[0]
    weights, results = _copy_shipped(arch, tmp_path)
    path = weights / SHIPPED_FILE.format(arch=arch, preset="quick")
    state, manifest = load_checkpoint(path)
    save_checkpoint(path, state, {**manifest, "teacher": {**manifest["teacher"], "sha256": "0" * 64}})
    before = (results / f"compress_{arch}-quick.json").read_bytes()
    with pytest.raises(CompressError, match="another .* teacher"):
        rescore_shipped(arch, weights_dir=weights, results_dir=results, progress=False)
    assert (results / f"compress_{arch}-quick.json").read_bytes() == before


def test_ship_copies_a_finished_compression_into_the_package_folders(tmp_path):
    from gancomp_lite.checkpoint import load_checkpoint, save_checkpoint
    from gancomp_lite.compress.pipeline import CompressError, ship

    out, weights, results = tmp_path / "run", tmp_path / "weights", tmp_path / "results"
    for folder in (out, weights, results):
        folder.mkdir()
    with pytest.raises(CompressError, match="no finished compression"):
        ship(out, weights_dir=weights, results_dir=results)
    state = {"w": torch.arange(3.0)}
    save_checkpoint(out / "student.pt", state, {"arch": "pim", "config": "1_2", "size": 64})
    (out / "report.json").write_text(json.dumps({"arch": "pim", "preset": "quick", "table3": {}}))
    (out / "search.json").write_text(json.dumps({"best": {"config": "1_2"}}))
    target = ship(out, weights_dir=weights, results_dir=results)
    shipped_state, manifest = load_checkpoint(target)
    assert target.name == SHIPPED_FILE.format(arch="pim", preset="quick")
    assert torch.equal(shipped_state["w"], state["w"]) and manifest["config"] == "1_2"
    assert manifest["results"] == "compress_pim-quick.json" and manifest["sha256"] == sha256_file(target)
    assert json.loads((results / "compress_pim-quick.json").read_text())["arch"] == "pim"
    assert json.loads((results / "search_pim-quick.json").read_text())["best"]["config"] == "1_2"
