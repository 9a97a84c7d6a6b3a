"""TP-GAN recipe: a couple of steps with tiny models update G (every pathway) and D, never the identity net."""
from __future__ import annotations

import math
import random

import pytest
import torch

from gancomp_lite.distill import build_adapters
from gancomp_lite.models import tpgan
from gancomp_lite.models.discriminator import PatchGAN, TPGANDiscriminator
from gancomp_lite.models.lightcnn import LightCNN
from gancomp_lite.recipes.base import OptimConfig
from gancomp_lite.recipes.tpgan import TPGANRecipe

SIZE = 64


def _batch(n: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    template = [list(tpgan.part_boxes(SIZE)[p]) for p in tpgan.PARTS]
    landmarks = torch.tensor([[[22.0, 25.0], [42.0, 25.0], [32.0, 34.0], [24.0, 45.0], [40.0, 45.0]]] * n)
    landmarks[-1, 0] = float("nan")                       # unknown point: template boxes for that sample
    return {
        "profile": torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1,
        "frontal": torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1,
        "patch_boxes": torch.tensor([template] * n),
        "landmarks": landmarks,
        "identity": torch.tensor([0, 2][:n]),
    }


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module, prefix: str = "") -> bool:
    after = module.state_dict()
    return any(not torch.equal(v, after[k]) for k, v in before.items() if k.startswith(prefix) and "running" not in k)


def test_teacher_steps_update_every_pathway_and_keep_the_identity_net_frozen():
    torch.manual_seed(0)
    generator = tpgan.build(None, SIZE, base=8, num_classes=3)
    discriminator = TPGANDiscriminator(ndf=8, size=SIZE)
    identity = LightCNN("9", num_classes=3, width=0.125, input_size=SIZE)
    recipe = TPGANRecipe(generator, discriminator, identity_net=identity, g_steps=2)
    recipe.setup("cpu", OptimConfig(lr=1e-3), total_steps=2)
    g0, d0, i0 = _snapshot(generator), _snapshot(discriminator), _snapshot(identity)
    batch = _batch()
    for step in range(2):
        metrics = recipe.train_step(batch, step)
    assert all(math.isfinite(v) for v in metrics.values())
    for term in ("pixel", "sym", "adv", "tv", "local", "ip", "ce"):
        assert metrics[f"loss_G_{term}"] > 0, term
    assert _changed(d0, discriminator)
    for part in ("rotators.mouth.", "encoder.", "decoder.fuse128.", "classifier."):
        assert _changed(g0, generator, part), part
    assert not _changed(i0, identity)
    assert recipe.manifest()["config"] == generator.config


def test_profile_boxes_come_from_the_landmarks():
    recipe = TPGANRecipe(tpgan.build(None, SIZE, base=8), TPGANDiscriminator(ndf=8, size=SIZE))
    boxes = recipe._profile_boxes(_batch())
    template = torch.tensor([list(tpgan.part_boxes(SIZE)[p]) for p in tpgan.PARTS])
    assert torch.equal(boxes[1], template)                # NaN landmark -> template
    top, left, h, w = boxes[0, 0].tolist()                # left eye centred on (22, 25)
    assert (h, w) == (20, 20) and (top, left) == (15, 12)


def test_distillation_with_a_conditional_patchgan():
    torch.manual_seed(0)
    knobs = {"base": 16, "step": 4}
    teacher = tpgan.build(None, SIZE, **knobs).eval()
    config = tpgan.space(**knobs).sample(random.Random(0))
    student = tpgan.build(config, SIZE, **knobs)
    batch = _batch()
    adapters = build_adapters(student, teacher, batch["profile"])
    recipe = TPGANRecipe(student, PatchGAN(ndf=8), conditional_d=True, g_steps=1, teacher=teacher, adapters=adapters)
    recipe.setup("cpu", OptimConfig(lr=1e-3), total_steps=1)
    a0, t0 = _snapshot(adapters), _snapshot(teacher)
    metrics = recipe.train_step(batch, 0)
    assert metrics["loss_G_distill"] > 0 and math.isfinite(metrics["loss_G"])
    assert "loss_G_ip" not in metrics and "loss_G_ce" not in metrics     # no identity net, no classifier
    assert _changed(a0, adapters) and not _changed(t0, teacher)


def test_missing_boxes_and_half_a_distillation_setup_are_refused():
    generator, discriminator = tpgan.build(None, SIZE, base=8), TPGANDiscriminator(ndf=8, size=SIZE)
    with pytest.raises(ValueError, match="teacher and its adapters"):
        TPGANRecipe(generator, discriminator, teacher=generator)
    recipe = TPGANRecipe(generator, discriminator, g_steps=1)
    recipe.setup("cpu", OptimConfig(), total_steps=1)
    batch = _batch()
    del batch["patch_boxes"]
    with pytest.raises(KeyError, match="patch_boxes"):
        recipe.train_step(batch, 0)
