"""`gancomp-lite compress` end to end on the shipped quick ResNet-9 teacher (a few steps), budgets
refused before any training, settings (with the teacher's sha256 and the data) checked on resume, and a
finished run returned as it is."""
from __future__ import annotations

import json
import shutil

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


def test_min_width_narrows_the_student_space_and_the_budgets_it_can_meet():
    wide, narrow = P.load_bundle("pim", "quick"), P.load_bundle("pim", "quick", min_width=2)
    space = P.channel_space("pim", narrow.size, **narrow.student_knobs)
    assert all(min(g.choices) == 2 for g in space.groups)
    (low, high), (wide_low, wide_high) = P.budget_range(narrow), P.budget_range(wide)
    assert high == wide_high and low > wide_low and high / low < 20 <= wide_high / wide_low
    with pytest.raises(P.CompressError, match=f"{low:,}"):
        P.resolve_budget(P.CompressSettings("pim", ratio=20, min_width=2), narrow)
    assert P.resolve_budget(P.CompressSettings("pim", ratio=20), wide) == int(wide_high / 20)
    with pytest.raises(P.CompressError, match="--min-width"):
        P.CompressSettings("pim", ratio=10, min_width=0)


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
            "--candidates", "2", "--val-limit", "16", "--metric", "l1", "--min-width", "8", "--out", str(out)]
    assert main(args) == 0
    for name in ("settings.json", "search_scores.json", "search.json", "search.png", "student.pt", "student.json",
                 "student.ts", "student.onnx", "report.json", "report.md", "faces.png", "supernet/last.pt", "finetune/last.pt"):
        assert (out / name).exists(), name
    report = json.loads((out / "report.json").read_text())
    assert report["table3"]["macs_ratio"] >= 5
    assert report["table3"]["student"]["macs"] <= report["budget"]
    assert set(report["paired_difference"]) == {"diff", "ci"}
    assert report["test"]["identities"] >= 20 and report["scored_by"]["sha256"]
    search = json.loads((out / "search.json").read_text())
    assert len(search["candidates"]) == 2 and search["validation"]["probes"] == 16
    assert all(c["cost"] <= search["budget"] for c in search["candidates"])
    saved = json.loads((out / "search_scores.json").read_text())["scores"]    # what a killed search would reuse
    assert {c["config"]: c["l1"] for c in search["candidates"]} == {key: m["l1"] for key, m in saved.items()}
    student = load_generator(out / "student.pt")
    assert report_knobs(out)["min_width"] == 8 and min(student.config.values()) >= 8
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


class _Killed(Exception):
    """Stands for a kill in the first training stage."""


def _killed(*args, **kwargs):
    raise _Killed


def test_a_resume_with_a_retrained_teacher_or_other_data_is_refused_naming_it(tmp_path, monkeypatch, capsys):
    from gancomp_lite import teachers
    from gancomp_lite.checkpoint import load_checkpoint, save_checkpoint

    weights, out, data = tmp_path / "weights", tmp_path / "c", {"root": tmp_path / "data"}
    weights.mkdir()
    for name in ("resnet9-quick", "lightcnn-quick", "judge-quick"):
        for suffix in (".pt", ".json"):
            shutil.copy(teachers.WEIGHTS_DIR / f"{name}{suffix}", weights)
    monkeypatch.setattr(teachers, "quick_splits", lambda preset, seed=0: teachers.Splits(data["root"], [0] * 8, [], []))
    monkeypatch.setattr(P, "train_supernet", _killed)
    settings = P.CompressSettings("resnet9", ratio=5)
    with pytest.raises(_Killed):                               # a first run, killed in its first stage
        P.compress(settings, out, weights_dir=weights, progress=False, log=lambda message: None)
    (out / "report.json").write_text('{"old": "report"}')     # or finished
    args = ["compress", "--teacher", "resnet9", "--ratio", "5", "--out", str(out), "--weights", str(weights)]

    original = (weights / "resnet9-quick.pt").read_bytes(), (weights / "resnet9-quick.json").read_bytes()
    state, manifest = load_checkpoint(weights / "resnet9-quick.pt")
    state["G"] = {k: v + 1 if v.is_floating_point() else v for k, v in state["G"].items()}
    save_checkpoint(weights / "resnet9-quick.pt", state, {k: v for k, v in manifest.items() if k not in ("file", "sha256")})
    capsys.readouterr()
    assert main(args) == 2                                     # a retrained teacher
    err = capsys.readouterr().err
    assert f"fingerprint.teacher: {manifest['sha256']!r} there" in err and err.count("\n") == 1

    (weights / "resnet9-quick.pt").write_bytes(original[0])
    (weights / "resnet9-quick.json").write_bytes(original[1])
    data["root"] = tmp_path / "other-data"
    assert main(args) == 2                                     # other data
    assert "fingerprint.data:" in capsys.readouterr().err

    data["root"] = tmp_path / "data"                           # the same teacher and data: the old report
    assert P.compress(settings, out, weights_dir=weights, log=lambda message: None) == {"old": "report"}


def test_students_take_their_teachers_objective_but_not_its_warm_up_from_scratch():
    from gancomp_lite.teachers import QUICK_TEACHERS

    teacher = QUICK_TEACHERS["crgan"].options
    student = P._recipe_options("crgan")
    assert teacher.get("warmup_steps", 0) > 0 and "warmup_steps" not in student
    assert student == {k: v for k, v in teacher.items() if k != "warmup_steps"}
