"""CR-GAN recipe: both paths run, losses are finite, E, G and D all learn."""
from __future__ import annotations

import pytest
import torch

from gancomp_lite.models import crgan
from gancomp_lite.recipes.base import OptimConfig
from gancomp_lite.recipes.crgan import CRGANRecipe


def _batch(n: int = 2, size: int = 64) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "profile": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
        "frontal": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
        "yaw": torch.tensor([45, 90, -30, 15][:n]),
        "identity": torch.arange(n),
    }


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(b, p) for b, p in zip(before, module.parameters()))


@pytest.mark.parametrize("p_fake", [0.0, 1.0])
def test_two_steps_update_encoder_generator_and_critic(p_fake):
    torch.manual_seed(0)
    gen = crgan.build(None, 64, base=8)
    recipe = CRGANRecipe(gen, crgan.CRGANDiscriminator(64, base=8), p_reconstruct_fake=p_fake)
    recipe.setup("cpu", OptimConfig(lr=1e-3), total_steps=2)
    enc0, dec0, d0 = _snapshot(gen.encoder), _snapshot(gen.decoder), _snapshot(recipe.raw("D"))
    for step in range(2):
        metrics = recipe.train_step(_batch(), step)
        assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values()), metrics
    assert metrics["reconstruct_fake"] == p_fake
    assert _changed(enc0, gen.encoder) and _changed(dec0, gen.decoder) and _changed(d0, recipe.raw("D"))
    assert set(recipe.optimizers) == {"E", "G", "D"}
    assert recipe.optimizers["D"].param_groups[0]["betas"] == (0.0, 0.9)


def test_fake_reconstruction_steps_the_encoder_only():
    torch.manual_seed(0)
    gen = crgan.build(None, 64, base=8)
    recipe = CRGANRecipe(gen, crgan.CRGANDiscriminator(64, base=8), p_reconstruct_fake=1.0)
    recipe.setup("cpu", OptimConfig(lr=1e-3), total_steps=1)
    recipe.train_step(_batch(), 0)
    steps = {name: opt.state[opt.param_groups[0]["params"][0]]["step"].item() for name, opt in recipe.optimizers.items()}
    assert steps == {"E": 1, "G": 1, "D": 2}      # G: generation path only; D: once per path


def test_mismatched_views_and_unknown_yaws_are_refused():
    gen = crgan.build(None, 64, base=8, views=9)
    with pytest.raises(ValueError, match="does not match"):
        CRGANRecipe(gen, crgan.CRGANDiscriminator(64, base=8, views=13))
    recipe = CRGANRecipe(gen, crgan.CRGANDiscriminator(64, base=8, views=9))
    recipe.setup("cpu", OptimConfig(), total_steps=1)
    with pytest.raises(ValueError, match=r"yaws \[90\]"):
        recipe.train_step(_batch(), 0)


def test_the_reconstruction_coin_depends_on_seed_and_step_only():
    gen = crgan.build(None, 64, base=8)
    first = CRGANRecipe(gen, crgan.CRGANDiscriminator(64, base=8), seed=4)
    again = CRGANRecipe(gen, crgan.CRGANDiscriminator(64, base=8), seed=4)
    coins = [first._reconstruct_fake(step) for step in range(64)]
    torch.rand(5)                                   # the global RNG (different on every DDP rank) plays no part
    assert coins == [again._reconstruct_fake(step) for step in range(64)]
    assert 16 < sum(coins) < 48                     # a fair coin


def test_identity_term_joins_the_paired_reconstruction_and_leaves_the_identity_net_frozen():
    from gancomp_lite.models.lightcnn import LightCNN

    torch.manual_seed(0)
    gen = crgan.build(None, 64, base=8)
    net = LightCNN("9", num_classes=3, width=0.125, input_size=32)
    with pytest.raises(ValueError, match="identity network"):
        CRGANRecipe(gen, crgan.CRGANDiscriminator(64, base=8), lambda_ip=1e-3)
    recipe = CRGANRecipe(gen, crgan.CRGANDiscriminator(64, base=8), p_reconstruct_fake=0.0,
                         identity_net=net, lambda_ip=1e-3)
    recipe.setup("cpu", OptimConfig(lr=1e-3), total_steps=1)
    frozen = _snapshot(net)
    metrics = recipe.train_step(_batch(), 0)
    assert metrics["loss_EG_ip"] > 0 and not _changed(frozen, net)
    assert recipe.manifest()["lambda_ip"] == 1e-3
    fake_only = CRGANRecipe(gen, crgan.CRGANDiscriminator(64, base=8), p_reconstruct_fake=1.0,
                            identity_net=net, lambda_ip=1e-3)
    fake_only.setup("cpu", OptimConfig(lr=1e-3), total_steps=1)
    assert fake_only.train_step(_batch(), 0)["loss_EG_ip"] == 0.0     # a fake has no frontal to match


def test_warmup_steps_run_the_paired_reconstruction_alone_then_the_full_objective():
    torch.manual_seed(0)
    gen = crgan.build(None, 64, base=8)
    recipe = CRGANRecipe(gen, crgan.CRGANDiscriminator(64, base=8), warmup_steps=1)
    recipe.setup("cpu", OptimConfig(lr=1e-3), total_steps=2)
    critic = _snapshot(recipe.raw("D"))
    metrics = recipe.train_step(_batch(), 0)
    steps = {name: len(opt.state) for name, opt in recipe.optimizers.items()}
    assert steps["E"] > 0 and steps["G"] > 0 and steps["D"] == 0 and not _changed(critic, recipe.raw("D"))
    assert set(metrics) == {"loss_EG_rec", "recon_l1"}
    metrics = recipe.train_step(_batch(), 1)                 # past the warm-up: both paths and the critic
    assert "loss_D_gen" in metrics and _changed(critic, recipe.raw("D"))
    assert recipe.manifest()["warmup_steps"] == 1
    with pytest.raises(ValueError, match="warmup_steps"):
        CRGANRecipe(gen, crgan.CRGANDiscriminator(64, base=8), warmup_steps=-1)
