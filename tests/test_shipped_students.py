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
