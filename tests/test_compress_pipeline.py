"""`gancomp-lite compress` end to end on the shipped quick ResNet-9 teacher (a few steps), budgets
refused before any training, settings checked on resume, and a finished run returned as it is."""
from __future__ import annotations

import json

import pytest
import torch

from gancomp_lite.cli import main
from gancomp_lite.compress import pipeline as P
from gancomp_lite.evaluate import load_generator


def test_budgets_outside_the_student_space_are_refused_naming_the_range(tmp_path, capsys):
    bundle = P.load_bundle("tpgan", "quick")
    low, high = P.budget_range(bundle)
    assert high / low >= 20
    for settings in (P.CompressSettings("tpgan", ratio=high / low * 1.5), P.CompressSettings("tpgan", budget=high * 2)):
        with pytest.raises(P.CompressError, match=f"{low:,}"):
            P.resolve_budget(settings, bundle)
    assert main(["compress", "--teacher", "tpgan", "--ratio", "1000", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "ratios 1 to" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()                      # nothing written, nothing trained


def test_settings_are_validated():
    with pytest.raises(P.CompressError, match="exactly one"):
        P.CompressSettings("tpgan", budget=1e6, ratio=10)
    with pytest.raises(P.CompressError, match="--ratio"):
        P.CompressSettings("tpgan", ratio=0.5)
    with pytest.raises(P.CompressError, match="--teacher"):
        P.CompressSettings("stylegan", ratio=10)
    with pytest.raises(P.CompressError, match="--steps-supernet"):
        P.CompressSettings("tpgan", ratio=10, steps_supernet=0)


@pytest.mark.slow
def test_compress_end_to_end_then_resume_and_refuse_other_settings(tmp_path):
    out = tmp_path / "c"
    args = ["compress", "--teacher", "resnet9", "--ratio", "5", "--steps-supernet", "2", "--steps-finetune", "2",
            "--candidates", "2", "--val-limit", "16", "--metric", "l1", "--out", str(out)]
    assert main(args) == 0
    for name in ("settings.json", "search.json", "search.png", "student.pt", "student.json", "student.ts",
                 "student.onnx", "report.json", "report.md", "faces.png", "supernet/last.pt", "finetune/last.pt"):
        assert (out / name).exists(), name
    report = json.loads((out / "report.json").read_text())
    assert report["table3"]["macs_ratio"] >= 5
    assert report["table3"]["student"]["macs"] <= report["budget"]
    assert set(report["paired_difference"]) == {"diff", "ci"}
    assert report["test"]["identities"] >= 20 and report["scored_by"]["sha256"]
    search = json.loads((out / "search.json").read_text())
    assert len(search["candidates"]) == 2 and search["validation"]["probes"] == 16
    assert all(c["cost"] <= search["budget"] for c in search["candidates"])
    student = load_generator(out / "student.pt")
    assert student.config == P.channel_space("resnet9", 64, **report_knobs(out)).decode(report["table3"]["student"]["config"])
    with torch.no_grad():
        assert student(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    assert "| compressed − teacher |" in (out / "report.md").read_text()

    sha = json.loads((out / "student.json").read_text())["sha256"]
    assert main(args) == 0                                     # finished: the report is returned as it is
    assert json.loads((out / "student.json").read_text())["sha256"] == sha
    assert main(args[:-2] + ["--seed", "1", "--out", str(out)]) == 2        # other settings: refused


def report_knobs(out):
    return json.loads((out / "student.json").read_text())["knobs"]


def test_latency_budget_is_one_of_the_three_budgets():
    with pytest.raises(P.CompressError, match="exactly one"):
        P.CompressSettings("tpgan", ratio=10, latency_budget=5.0)
    with pytest.raises(P.CompressError, match="milliseconds"):
        P.CompressSettings("tpgan", latency_budget=-1.0)
    settings = P.CompressSettings("resnet9", latency_budget=3.0)
    bundle = P.load_bundle("resnet9", "quick")
    assert P.resolve_budget(settings, bundle) == P.budget_range(bundle)[1]
