"""Notebook 02's library: gradient agreement, signal sizes, the sweep's lookups, plot and explorer."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gancomp_lite.viz import distill as vdist  # noqa: E402
from gancomp_lite.compress.distillation import make_adapters  # noqa: E402
from gancomp_lite.models.registry import build  # noqa: E402

SIZE = 16


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _pair():
    torch.manual_seed(0)
    teacher = build("resnet9", None, SIZE, ngf=8, step=4).eval()
    student = build("resnet9", "4_4_4_4_4_4_4_4", SIZE, ngf=8, step=4)
    return teacher, student


def test_output_distillation_pulls_where_the_ground_truth_already_does():
    teacher, student = _pair()
    profile = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    with torch.no_grad():
        perfect_frontal = teacher(profile)              # a teacher that reproduces the ground truth exactly
    cos = vdist.gradient_agreement(student, teacher, make_adapters(student, teacher), profile, perfect_frontal)
    assert cos["output vs ground truth"] == pytest.approx(1.0, abs=1e-6)
    assert cos["teacher L1 to ground truth"] == pytest.approx(0.0, abs=1e-7)
    assert abs(cos["feature vs ground truth"]) < 0.9
    other = vdist.gradient_agreement(student, teacher, make_adapters(student, teacher), profile,
                                     torch.rand(2, 3, SIZE, SIZE) * 2 - 1)
    assert other["output vs ground truth"] < cos["output vs ground truth"]


def test_signal_sizes_count_values_per_input():
    teacher, _ = _pair()
    sizes = vdist.signal_sizes(teacher, torch.zeros(3, 3, SIZE, SIZE))
    assert sizes["output image"] == 3 * SIZE * SIZE
    assert sizes["tap block9"] == 32 * (SIZE // 4) ** 2 and len(sizes) == 5


def _sweep() -> dict:
    def run(mode, taps=None, lam=0.0, l1=0.2, r1=0.5):
        hist = [{"step": s, "loss_G_pixel": 1.0 / s, **({"loss_G_distill": lam / s} if mode != "scratch" else {})}
                for s in (10, 20, 30)]
        return {"mode": mode, "taps": taps, "lambda_distill": lam, "history": hist,
                "metrics": {"l1": l1, "ssim": 0.5, "psnr": 20.0, "rank1": {"mean": r1, "15": r1}, "id_fid": 1.0}}
    runs = [run("scratch"), run("output", lam=1.0, l1=0.19)]
    runs += [run("feature", taps, lam, l1=0.15 + lam / 100, r1=0.6) for taps in ("all", "dec16") for lam in (0.1, 1.0)]
    return {"arch": "tpgan", "config": "x", "macs": 123e6, "convention": "gancomp", "runs": runs}


def test_sweep_lookups_and_tables():
    sweep = _sweep()
    assert vdist.tap_choices(sweep) == ["all", "dec16"] and vdist.lambda_choices(sweep) == [0.1, 1.0]
    assert vdist.find_run(sweep, "feature", "dec16", 1.0)["metrics"]["l1"] == pytest.approx(0.16)
    with pytest.raises(KeyError, match="taps \\['all', 'dec16'\\]"):
        vdist.find_run(sweep, "feature", "dec32", 1.0)
    cols = vdist.history(sweep["runs"][1])
    assert cols["step"] == [10, 20, 30] and cols["loss_G_distill"] == [0.1, 0.05, 1.0 / 30]
    assert vdist.sweep_table(sweep).count("\n") == 1 + len(sweep["runs"])
    assert vdist.taps_label(["dec64", "dec16"], ["dec16", "dec32", "dec64"]) == "dec16+dec64"
    assert vdist.taps_label(None, ["dec16", "dec32"]) == "all"


def test_sweep_plot_and_explorer_follow_the_controls(tmp_path):
    sweep = _sweep()
    fig = vdist.plot_sweep_run(sweep, "dec16", 0.1)
    left, middle, right = fig.axes[:3]
    assert len(left.lines) == 3 and len(middle.lines) == 2           # scratch has no distillation term
    assert [p.get_height() for p in right.patches] == pytest.approx([0.2, 0.19, 0.151])
    ui = vdist.distill_explorer(sweep)
    taps, lam = ui.children[0].children
    assert taps.options == ("all", "dec16") and lam.value == 1.0
    taps.value = "dec16"                                             # the callback redraws without error
    path = tmp_path / "sweep.json"
    with pytest.raises(FileNotFoundError, match="distill_baselines.py --arch resnet9 --sweep"):
        vdist.load_sweep("resnet9", path)


def test_sweep_from_summaries_keeps_inherited_d_runs_of_one_setting():
    def summary(mode, taps=None, lam=0.0, d="inherited from the teacher", steps=10):
        return {"arch": "tpgan", "config": "c", "steps": steps, "seed": 0, "batch_size": 8, "macs": 5, "params": 3,
                "convention": "gancomp", "teacher": {"taps": ["dec16", "dec32"], "config": "t"}, "mode": mode,
                "taps": taps, "lambda_distill": lam, "d_source": d, "history": [], "train_seconds_last_call": 1.0,
                "metrics": {"l1": 0.1, "ssim": 0.5, "psnr": 20.0, "rank1": {"mean": 0.5}, "id_fid": 1.0, "raw": {}}}
    runs = [summary("scratch"), summary("feature", ["dec16", "dec32"], 1.0), summary("feature", ["dec32"], 0.1),
            summary("feature", ["dec16", "dec32"], 1.0, d="random (inherit_d=False)")]
    sweep = vdist.sweep_from_summaries(runs, "cpu")
    assert [(r["mode"], r["taps"], r["lambda_distill"]) for r in sweep["runs"]] == [
        ("scratch", None, 0.0), ("feature", "all", 1.0), ("feature", "dec32", 0.1)]
    assert "raw" not in sweep["runs"][0]["metrics"] and sweep["macs"] == 5
    with pytest.raises(ValueError, match="differ in steps"):
        vdist.sweep_from_summaries(runs + [summary("output", steps=20)])
