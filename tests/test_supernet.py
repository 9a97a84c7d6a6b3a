"""The once-for-all supernet: student design spaces, sampling, teacher init, BatchNorm recalibration,
extraction, the CR-GAN and PIM distillation recipes, and exact resume of supernet training."""
from __future__ import annotations

import random

import pytest
import torch
from torch.utils.data import Dataset

from gancomp_lite.compress import supernet as S
from gancomp_lite.compress.distillation import make_recipe
from gancomp_lite.cost import CostModel
from gancomp_lite.models.crgan import CRGANDiscriminator
from gancomp_lite.models.discriminator import PatchGAN
from gancomp_lite.models.lightcnn import LightCNN
from gancomp_lite.models.registry import build, channel_space
from gancomp_lite.nn.elastic import set_active
from gancomp_lite.recipes.base import OptimConfig
from gancomp_lite.teachers import QUICK_TEACHERS, build_discriminator
from gancomp_lite.train import TrainConfig

TINY = {"resnet9": (32, {"ngf": 8, "step": 4}), "tpgan": (32, {"base": 8, "step": 4}),
        "crgan": (64, {"base": 4, "step": 4}), "pim": (64, {"base": 4, "step": 2})}


def _images(n: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("arch", sorted(QUICK_TEACHERS))
def test_every_quick_student_space_reaches_20x_fewer_macs(arch):
    teacher_knobs = QUICK_TEACHERS[arch].knobs
    knobs = S.student_design(arch, teacher_knobs, "quick")
    teacher = CostModel.for_arch(arch, 64, **teacher_knobs).macs(None, "gancomp")
    smallest = CostModel.for_arch(arch, 64, **knobs).macs(channel_space(arch, 64, **knobs).smallest(), "gancomp")
    assert teacher / smallest >= 20
    largest = CostModel.for_arch(arch, 64, **knobs).macs(None, "gancomp")
    assert largest <= teacher      # the student design at teacher widths is never costlier than the teacher


def test_unknown_design_and_rule_are_refused():
    with pytest.raises(ValueError, match="no student design"):
        S.student_design("resnet9", {}, "medium")
    with pytest.raises(ValueError, match="sampling rule"):
        S.ConfigSampler(channel_space("resnet9", ngf=8, step=4), rule="greedy")


def test_sampler_is_a_function_of_seed_and_step():
    space = channel_space("resnet9", ngf=16, step=4)
    a, b = S.ConfigSampler(space, seed=3), S.ConfigSampler(space, seed=3)
    configs = [a.config(step) for step in range(20)]
    assert configs == [b.config(step) for step in range(20)]
    assert configs[5] == a.config(5)                        # asking again (as after a resume) gives the same
    assert len({space.encode(c) for c in configs}) > 10     # and it does vary from step to step
    assert S.ConfigSampler(space, seed=4).config(0) != configs[0] or S.ConfigSampler(space, seed=4).config(1) != configs[1]
    assert a(7) == space.widths(configs[7])


def test_sampler_covers_every_choice_of_every_group():
    space = channel_space("resnet9", ngf=16, step=4)
    seen = {g.name: set() for g in space.groups}
    sampler = S.ConfigSampler(space, seed=0)
    for step in range(300):
        for name, value in sampler.config(step).items():
            seen[name].add(value)
    assert all(seen[g.name] == set(g.choices) for g in space.groups)


def test_sandwich_rule_trains_largest_smallest_then_random():
    space = channel_space("resnet9", ngf=16, step=4)
    sampler = S.ConfigSampler(space, seed=0, rule="sandwich")
    assert sampler.config(0) == space.largest() and sampler.config(3) == space.largest()
    assert sampler.config(1) == space.smallest() and sampler.config(4) == space.smallest()
    assert sampler.config(2) == space.sample(random.Random(2))


@pytest.mark.parametrize("arch", ["resnet9", "tpgan"])
def test_supernet_starts_from_the_teacher(arch):
    size, teacher_knobs = TINY[arch]
    torch.manual_seed(0)
    teacher = build(arch, None, size, **teacher_knobs).eval()
    knobs = S.student_design(arch, teacher_knobs, "quick")
    supernet = S.build_supernet(arch, teacher, size, knobs, _images(4, size))
    dense = {k: v for k, v in teacher.state_dict().items() if k in supernet.state_dict()
             and supernet.state_dict()[k].shape == v.shape}
    assert len(dense) >= 10                      # every layer left dense is copied whole
    assert all(torch.equal(supernet.state_dict()[k], v) for k, v in dense.items())
    fresh = build(arch, None, size, **knobs).eval()
    x = _images(2, size, seed=1)
    with torch.no_grad():
        error_init = (supernet.eval()(x) - teacher(x)).abs().mean()
        error_fresh = (fresh(x) - teacher(x)).abs().mean()
    assert error_init < error_fresh        # closer to the teacher than random weights


@pytest.mark.parametrize("arch", sorted(TINY))
def test_extracted_subnet_equals_the_supernet_at_random_configs(arch):
    size, teacher_knobs = TINY[arch]
    knobs = S.student_design(arch, teacher_knobs, "quick") if arch != "pim" else teacher_knobs
    torch.manual_seed(0)
    supernet = build(arch, None, size, **knobs).eval()
    space = channel_space(arch, size, **knobs)
    x = _images(2, size)
    for seed in range(3):
        config = space.sample(random.Random(seed))
        set_active(supernet, space.widths(config))
        with torch.no_grad():
            want = supernet(x)
        set_active(supernet, None)
        subnet = S.extract_subnet(supernet, arch, config, size, knobs)
        assert not any(getattr(m, "active", None) for m in subnet.modules())
        with torch.no_grad():
            assert torch.allclose(subnet(x), want, atol=1e-5)


def test_batchnorm_families_are_recalibrated_per_candidate_and_instancenorm_ones_need_nothing():
    size, knobs = TINY["tpgan"]
    torch.manual_seed(0)
    net = build("tpgan", None, size, **knobs)
    assert S.uses_batchnorm(net) and not S.uses_batchnorm(build("resnet9", None, 32, ngf=8, step=4))
    space = channel_space("tpgan", size, **knobs)
    set_active(net, space.widths(space.smallest()))
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    batches = [{"profile": _images(4, size, seed=s)} for s in range(2)]
    S.recalibrate_bn(net, batches)
    assert not torch.equal(bn.running_mean, before)
    assert bn.momentum == 0.1                     # the training momentum is restored
    once = bn.running_mean.clone()
    S.recalibrate_bn(net, batches)                 # statistics of the data alone, not of the history
    assert torch.allclose(bn.running_mean, once)


class _Pairs(Dataset):
    def __init__(self, n: int = 8, size: int = 32):
        self.x, self.y = _images(n, size, 0), _images(n, size, 1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"profile": self.x[i], "frontal": self.y[i], "yaw": torch.tensor(45), "identity": torch.tensor(i % 2)}


def _train(tmp, steps, stop_after=None, rule="uniform"):
    size, teacher_knobs = TINY["resnet9"]
    torch.manual_seed(0)
    teacher = build("resnet9", None, size, **teacher_knobs).eval()
    cfg = TrainConfig(out_dir=str(tmp), steps=steps, batch_size=2, seed=0, log_every=1, ckpt_every=1,
                      amp=False, progress=False, stop_after=stop_after)
    return S.train_supernet("resnet9", teacher, _Pairs(), size=size, knobs=S.student_design("resnet9", teacher_knobs),
                            make_d=lambda: PatchGAN(in_channels=6, ndf=8, n_layers=2), teacher_d_state=None,
                            train_config=cfg, rule=rule)


def test_supernet_training_resumes_exactly(tmp_path):
    straight = _train(tmp_path / "a", 4)
    _train(tmp_path / "b", 4, stop_after=2)                  # "killed" after 2 steps, checkpointed
    resumed = _train(tmp_path / "b", 4)
    assert straight.steps == resumed.steps == 4
    for key, value in straight.supernet.state_dict().items():
        assert torch.equal(value, resumed.supernet.state_dict()[key]), key
    assert "loss_G_distill" in straight.history[-1]
    assert all(getattr(m, "active", None) is None for m in straight.supernet.modules())


def test_crgan_and_pim_distillation_recipes_add_the_teacher_term():
    size, knobs = TINY["crgan"]
    torch.manual_seed(0)
    teacher = build("crgan", None, size, **knobs).eval()
    student = build("crgan", None, size, **S.student_design("crgan", knobs))
    recipe = make_recipe("crgan", student, CRGANDiscriminator(size=size, base=4), teacher=teacher)
    recipe.sample_widths(S.ConfigSampler(channel_space("crgan", size, **S.student_design("crgan", knobs)), 0))
    recipe.setup("cpu", OptimConfig(lr=1e-4), total_steps=1)
    batch = {"profile": _images(2, size), "frontal": _images(2, size, 1), "yaw": torch.tensor([45, -30])}
    metrics = recipe.train_step(batch, 0)
    assert metrics["loss_EG_distill"] > 0

    size, knobs = TINY["pim"]
    teacher = build("pim", None, size, **knobs).eval()
    student = build("pim", None, size, **S.student_design("pim", knobs))
    identity = LightCNN(variant="9", width=0.125, num_classes=2, input_size=32)
    recipe = make_recipe("pim", student, build_discriminator("tpgan", size, ndf=4), teacher=teacher,
                         identity_net=identity)
    recipe.setup("cpu", OptimConfig(lr=1e-4), total_steps=1)
    from data_tools.dataset import PATCH_ORDER
    from gancomp_lite.models.tpgan import part_boxes

    template = part_boxes(size)
    boxes = torch.tensor([list(template[p]) for p in PATCH_ORDER]).unsqueeze(0).expand(2, -1, -1)
    metrics = recipe.train_step({**batch, "identity": torch.tensor([0, 1]), "patch_boxes": boxes}, 0)
    assert metrics["distill"] > 0
    with pytest.raises(ValueError, match="identity network"):
        make_recipe("pim", student, build_discriminator("tpgan", size, ndf=4), teacher=teacher)
