"""The distillation stage: teacher terms per mode, adapters, inherited D, and `gancomp-lite distill` end to end."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from gancomp_lite.compress import distillation
from gancomp_lite.distill import feature_taps
from gancomp_lite.models import tpgan
from gancomp_lite.models.discriminator import PatchGAN, TPGANDiscriminator
from gancomp_lite.models.registry import build
from gancomp_lite.recipes.base import OptimConfig

SIZE = 32
KNOBS = {"ngf": 8, "step": 4}
STUDENT = "4_4_4_4_4_4_4_8"


def _teacher():
    torch.manual_seed(0)
    return build("resnet9", None, SIZE, **KNOBS).eval()


def _student():
    torch.manual_seed(1)
    return build("resnet9", STUDENT, SIZE, **KNOBS)


def _batch(n: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"profile": torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1,
            "frontal": torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1}


def _recipe(mode: str, teacher=None, **kwargs):
    recipe = distillation.make_recipe("resnet9", _student(), PatchGAN(ndf=8, n_layers=2), mode=mode,
                                      teacher=teacher if teacher is not None else _teacher(), **kwargs)
    recipe.setup("cpu", OptimConfig(lr=1e-3), total_steps=2)
    return recipe


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_feature_mode_trains_the_adapters_and_never_the_teacher():
    teacher = _teacher()
    recipe = _recipe("feature", teacher)
    adapters, before_t = recipe.raw("A"), _state(teacher)
    assert sorted(adapters) == ["block3", "block6", "block9", "down2"]
    assert adapters["block3"].weight.shape == (32, 16, 1, 1)          # student trunk 4*4 -> teacher trunk 4*8
    before_a = _state(adapters)
    recipe.train_step(_batch(), 0)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in adapters.parameters())
    assert any(not torch.equal(v, adapters.state_dict()[k]) for k, v in before_a.items())
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before_t.items())
    assert all(not p.requires_grad for p in teacher.parameters())


def test_each_mode_adds_its_own_teacher_term_with_the_right_value():
    batch, teacher = _batch(), _teacher()
    with torch.no_grad():
        teacher_out = teacher.forward_all(batch["profile"])
    seen = {}
    for mode in distillation.MODES:
        recipe = _recipe(mode, teacher, lambda_distill=3.0)
        with torch.no_grad():           # G's loss is computed before G's update: the same weights as here
            student_out = recipe.raw("G").forward_all(batch["profile"])
            if mode == "output":
                expected = 3.0 * F.l1_loss(student_out["image"], teacher_out["image"]).item()
            elif mode == "feature":
                mapped = recipe.raw("A")(feature_taps(student_out, recipe.taps))
                expected = 3.0 * sum(F.mse_loss(mapped[t], feature_taps(teacher_out)[t]) for t in recipe.taps).item()
        metrics = recipe.train_step(batch, 0)
        seen[mode] = metrics
        if mode == "scratch":
            assert "loss_G_distill" not in metrics and "T" not in recipe.modules
        else:
            assert metrics["loss_G_distill"] == pytest.approx(expected, rel=1e-4)
        parts = sum(v for k, v in metrics.items() if k.startswith("loss_G_"))
        if "loss_G_recon" in metrics:       # pix2pix logs the plain L1 of eq. 2, the other terms weighted
            parts += (recipe.lambda_recon - 1) * metrics["loss_G_recon"]
        assert metrics["loss_G"] == pytest.approx(parts, rel=1e-5)
    assert ("A" in _recipe("feature").modules) and ("A" not in _recipe("output").modules)
    assert seen["output"]["loss_G_distill"] != pytest.approx(seen["feature"]["loss_G_distill"])


def test_tap_choice_and_bad_requests_are_refused_clearly():
    recipe = _recipe("feature", taps=["block9"])
    assert recipe.taps == ["block9"] and recipe.manifest()["taps"] == ["block9"]
    with pytest.raises(ValueError, match="not feature taps"):
        _recipe("feature", taps=["block4"])
    with pytest.raises(ValueError, match="unknown distillation mode 'hint'"):
        _recipe("hint")
    with pytest.raises(ValueError, match="needs a teacher"):
        distillation.make_recipe("resnet9", _student(), PatchGAN(ndf=8, n_layers=2), mode="output")
    with pytest.raises(ValueError, match="distillation supports"):
        distillation.objective("stylegan")


def test_the_student_d_starts_as_the_teacher_d_unless_asked_otherwise():
    torch.manual_seed(5)
    teacher_d = PatchGAN(ndf=8, n_layers=2)
    make_d = lambda: PatchGAN(ndf=8, n_layers=2)                     # noqa: E731 - a fresh, differently seeded D
    inherited, source = distillation.student_discriminator(make_d, teacher_d.state_dict())
    assert source.startswith("inherited")
    assert all(torch.equal(v, teacher_d.state_dict()[k]) for k, v in inherited.state_dict().items())
    random_d, source = distillation.student_discriminator(make_d, teacher_d.state_dict(), inherit_d=False)
    assert source.startswith("random") and not torch.equal(random_d.model[0].weight, teacher_d.model[0].weight)
    with pytest.warns(UserWarning, match="not available"):
        _, source = distillation.student_discriminator(make_d, None)
    assert "not available" in source


def test_tpgan_student_distills_with_the_profile_boxes_it_is_trained_on():
    torch.manual_seed(0)
    teacher = tpgan.build(None, 64, base=8, step=4).eval()
    student = tpgan.build({**teacher.config, "dec16": 48, "dec64": 32, "recon128": 4}, 64, base=8, step=4)
    recipe = distillation.make_recipe("tpgan", student, TPGANDiscriminator(ndf=8, size=64), mode="feature",
                                      teacher=teacher, taps=["dec16", "recon128"])
    recipe.setup("cpu", OptimConfig(lr=1e-3), total_steps=1)
    landmarks = torch.tensor([[[20.0, 26.0], [40.0, 24.0], [30.0, 36.0], [23.0, 46.0], [38.0, 45.0]]])
    boxes = torch.tensor([[list(tpgan.part_boxes(64)[p]) for p in tpgan.PARTS]])
    batch = {"profile": torch.rand(1, 3, 64, 64) * 2 - 1, "frontal": torch.rand(1, 3, 64, 64) * 2 - 1,
             "patch_boxes": boxes, "landmarks": landmarks}
    metrics = recipe.train_step(batch, 0)
    assert metrics["loss_G_distill"] > 0 and recipe.raw("A")["recon128"].weight.shape == (8, 4, 1, 1)
    with torch.no_grad():                 # the cached teacher outputs are the ones at the landmark boxes
        expected = teacher.forward_all(batch["profile"], tpgan.landmark_boxes(landmarks, 64))["feat:recon128"]
        template = teacher.forward_all(batch["profile"])["feat:recon128"]
    assert torch.allclose(recipe._teacher_out["feat:recon128"], expected)
    assert not torch.allclose(expected, template)


def test_cli_distills_a_shipped_teacher_end_to_end(tmp_path):
    from data_tools.synthpie import render_synthpie
    from gancomp_lite.checkpoint import save_checkpoint
    from gancomp_lite.cli import main
    from gancomp_lite.evaluate import load_generator
    from gancomp_lite.models.lightcnn import LightCNN, save_identity_network

    data = tmp_path / "data"
    render_synthpie(data, ids=4, size=SIZE, illums=1, progress=False)
    weights = tmp_path / "weights"
    d_knobs = {"in_channels": 6, "ndf": 8, "n_layers": 2}
    save_checkpoint(weights / "resnet9-quick.pt", {"G": _teacher().state_dict(), "D": PatchGAN(**d_knobs).state_dict()},
                    {"arch": "resnet9", "preset": "quick", "size": SIZE, "knobs": KNOBS, "config": "8_8_8_8_8_8_8_8",
                     "discriminator": {"kind": "patchgan", "knobs": d_knobs}})
    torch.manual_seed(0)
    save_identity_network(weights / "lightcnn-quick.pt", LightCNN("9", num_classes=3, width=0.125, input_size=SIZE))
    save_identity_network(weights / "judge-quick.pt", LightCNN("29", num_classes=3, width=0.125, input_size=SIZE),
                          role="judge")
    out = tmp_path / "run"
    argv = ["distill", "--arch", "resnet9", "--config", STUDENT, "--mode", "feature", "--steps", "2",
            "--batch-size", "4", "--seed", "1", "--out", str(out), "--data", str(data), "--weights", str(weights),
            "--taps", "down2,block9"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["mode"] == "feature" and summary["taps"] == ["block9", "down2"]
    assert summary["d_source"].startswith("inherited") and summary["macs"] < summary["teacher"]["macs"]
    assert 0 <= summary["metrics"]["rank1"]["mean"] <= 1
    student = load_generator(out / "student.pt")
    assert student.config == student.space.decode(STUDENT)


def test_scaled_config_picks_the_nearest_allowed_width_per_group():
    assert distillation.scaled_config("resnet9", SIZE, KNOBS, 0.5) == "4_4_4_4_4_4_4_4"
    assert distillation.scaled_config("resnet9", SIZE, KNOBS, 1.0) == "8_8_8_8_8_8_8_8"
    widths = dict(zip(tpgan.teacher_widths(8), map(int, distillation.scaled_config("tpgan", 64, {"base": 8, "step": 4}, 0.5).split("_"))))
    assert widths["enc8"] == 32 and widths["dec16"] == 48 and widths["enc128"] == 4     # 64/2, 96/2, 8/2


def test_a_resumed_stage_reports_its_whole_loss_history(tmp_path):
    from gancomp_lite.compress.distillation import _logged
    from gancomp_lite.train import Trainer, TrainConfig

    recipe = _recipe("output")
    batch = _batch(4)
    data = [{"profile": batch["profile"][i], "frontal": batch["frontal"][i]} for i in range(4)]
    config = dict(out_dir=str(tmp_path), steps=4, batch_size=2, seed=0, log_every=1, ckpt_every=2, progress=False)
    Trainer(recipe, data, TrainConfig(**config, stop_after=2)).fit()
    Trainer(_recipe("output"), data, TrainConfig(**config)).fit()
    rows = _logged(tmp_path)
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all("loss_G_distill" in r and "epoch" not in r for r in rows)
