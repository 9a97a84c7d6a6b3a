"""The notebook-01 experiments: data subset, sharpness score, seeded runs and the lambda_recon sweep."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from data_tools.protocol import NEUTRAL_ILLUMINATION
from data_tools.records import FaceRecord
from data_tools.synthpie import render_synthpie
from gancomp_lite.viz import objective_demo as od
from gancomp_lite.presets import get_preset
from gancomp_lite.recipes import OptimConfig

TINY = od.DemoConfig(size=32, train_ids=3, test_images=6, ngf=8, ndf=8, d_layers=2, steps=4, batch_size=4,
                     lr=1e-3, threads=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthpie")
    render_synthpie(root, ids=4, size=32, illums=2, progress=False, device="cpu")   # 3 train ids, 1 test id
    return od.load_demo_data(TINY, root=root)


# ------------------------------------------------------------------ sharpness
def test_gradient_magnitude_of_known_images():
    flat = torch.zeros(2, 3, 8, 8)
    ramp = torch.arange(8.0).mul(0.25).expand(1, 3, 8, 8)          # +0.25 per column, in every channel
    assert od.gradient_magnitude(flat).tolist() == [0.0, 0.0]
    assert od.gradient_magnitude(ramp).item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        od.gradient_magnitude(torch.zeros(3, 8, 8))


def test_blur_lowers_relative_sharpness():
    torch.manual_seed(0)
    target = torch.rand(4, 3, 16, 16) * 2 - 1
    blurred = F.avg_pool2d(target, 3, stride=1, padding=1, count_include_pad=False)
    assert od.relative_sharpness(target, target) == pytest.approx(1.0)
    assert od.relative_sharpness(blurred, target) < 0.6
    assert od.relative_sharpness(2 * target, target) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="differ"):
        od.relative_sharpness(blurred[:2], target)


# ------------------------------------------------------------------ config and data
def test_config_from_presets():
    quick = od.DemoConfig.from_preset(get_preset("quick"), steps=7)
    full = od.DemoConfig.from_preset(get_preset("full"))
    assert (quick.preset, quick.size, quick.steps, quick.threads) == ("quick", 32, 7, 1)
    assert (full.preset, full.size, full.threads) == ("full", 128, None)
    assert full.ngf > quick.ngf and full.steps > quick.steps


def test_demo_data_subset(data):
    train, test = data.train, data.test
    assert {r.illumination for r in train.records} == {NEUTRAL_ILLUMINATION}
    assert len({r.identity for r in train.records}) == TINY.train_ids and len(train) == TINY.train_ids * 13
    assert test["profile"].shape == test["frontal"].shape == (TINY.test_images, 3, 32, 32)
    assert sorted(test["yaw"].tolist()) == [15, 30, 45, 60, 75, 90]   # every pose, mirrored to one side


def test_demo_data_refuses_too_few_test_images(data, tmp_path):
    render_synthpie(tmp_path, ids=2, size=32, illums=1, progress=False, device="cpu")
    with pytest.raises(ValueError, match="12 non-frontal test records.*needs .*50 test images"):
        od.load_demo_data(od.DemoConfig(size=32, test_images=50), root=tmp_path)


def test_spread_over_poses_cycles_yaws_identities_and_sides(data):
    records = [FaceRecord(Path(f"{name}_{yaw}.png"), Path(f"{name}_0.png"), name, yaw)
               for name in ("a", "b", "c") for yaw in (-30, -15, 15, 30)]
    picked = od.spread_over_poses(records, 6)
    assert [(r.identity, r.yaw) for r in picked] == [("a", 15), ("b", 30), ("c", -15), ("a", -30), ("b", 15), ("c", 30)]
    with pytest.raises(ValueError, match="only 12 of the 13"):
        od.spread_over_poses(records, 13)


# ------------------------------------------------------------------ runs
def test_reconstruction_recipe_learns_a_fixed_batch():
    generator, _ = od.build_models(TINY)
    recipe = od.ReconstructionRecipe(generator)
    recipe.setup("cpu", OptimConfig(lr=1e-3), total_steps=10)
    torch.manual_seed(1)
    batch = {"profile": torch.rand(2, 3, 32, 32) * 2 - 1, "frontal": torch.rand(2, 3, 32, 32) * 2 - 1}
    with od.cpu_threads(1):
        losses = [recipe.train_step(batch, step)["loss_G_recon"] for step in range(10)]
    assert losses[-1] < 0.9 * losses[0]
    assert sorted(recipe.modules) == ["G"]


def test_runs_are_seeded_and_shaped(data):
    first = od.train_run(TINY, data, 10.0, adversarial=True, progress=False)
    again = od.train_run(TINY, data, 10.0, adversarial=True, progress=False)
    assert torch.equal(first["outputs"], again["outputs"])
    assert first["label"] == "cGAN + 10 L1" and first["lambda_recon"] == 10.0 and first["steps"] == TINY.steps
    assert first["history"]["step"][-1] == TINY.steps
    assert {"loss_D", "loss_G_gan", "loss_G_recon"} <= set(first["history"])
    assert first["outputs"].shape == data.test["frontal"].shape


def test_l1_only_run_improves_on_init(data):
    seen = []
    row = od.train_run(od.DemoConfig(**{**TINY.__dict__, "steps": 12}), data, adversarial=False,
                       on_log=lambda step, metrics: seen.append(step), progress=False)
    assert row["label"] == "L1 only" and math.isinf(row["lambda_recon"]) and not row["adversarial"]
    assert "loss_D" not in row["history"] and seen == row["history"]["step"]
    assert row["l1"] < row["l1_init"]


def test_threads_restored(data):
    before = torch.get_num_threads()
    od.train_run(od.DemoConfig(**{**TINY.__dict__, "steps": 1, "threads": 1}), data, progress=False)
    assert torch.get_num_threads() == before


def test_sweep_reuses_done_runs_and_sorts(data):
    done = {"label": "cGAN + 100 L1", "lambda_recon": 100.0, "adversarial": True, "l1": 0.0, "sharpness": 0.0}
    rows = od.sweep(od.DemoConfig(**{**TINY.__dict__, "steps": 1}), data, [100.0, 1.0], done=[done])
    assert [row["lambda_recon"] for row in rows] == [1.0, 100.0, math.inf]
    assert rows[1] is done
    assert rows[0]["steps"] == 1 and rows[2]["label"] == "L1 only"


def test_format_table_lists_every_run():
    rows = [{"label": "cGAN + 10 L1", "lambda_recon": 10.0, "l1_init": 0.33, "l1": 0.126, "sharpness": 1.19},
            {"label": "L1 only", "lambda_recon": math.inf, "l1_init": 0.33, "l1": 0.125, "sharpness": 0.8}]
    lines = od.format_table(rows).splitlines()
    assert len(lines) == 3 and lines[0].split()[:2] == ["run", "lambda_recon"]
    assert lines[1].split() == ["cGAN", "+", "10", "L1", "10", "0.330", "0.126", "1.19"]
    assert lines[2].split() == ["L1", "only", "inf", "0.330", "0.125", "0.80"]


def test_output_diversity_is_zero_for_one_face_and_one_for_the_truth():
    truth = torch.randn(6, 3, 8, 8)
    same_face = truth[:1].expand(6, -1, -1, -1)
    assert od.output_diversity(truth, truth) == pytest.approx(1.0)
    assert od.output_diversity(same_face, truth) == pytest.approx(0.0)
    assert od.output_diversity(0.5 * truth, truth) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="output_diversity"):
        od.output_diversity(truth[:1], truth[:1])
