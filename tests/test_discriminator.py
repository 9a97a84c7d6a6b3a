"""Discriminators: PatchGAN D(x, y) and TP-GAN's patch D (shapes, receptive field, counts, errors)."""
from __future__ import annotations

import io

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from gancomp_lite.losses import conditional_pair
from gancomp_lite.models import discriminator as dmod


@pytest.mark.parametrize("size, cells", [(64, 6), (128, 14)])
def test_patchgan_takes_the_conditional_pair(size, cells):
    torch.manual_seed(0)
    d = dmod.PatchGAN(ndf=8)
    profile, image = torch.rand(2, 3, size, size), torch.rand(2, 3, size, size)
    assert d(conditional_pair(profile, image)).shape == (2, 1, cells, cells)


def test_patchgan_receptive_field_is_70_pixels():
    torch.manual_seed(0)
    d = dmod.PatchGAN(ndf=4, norm="none").eval()
    x = torch.rand(1, 6, 128, 128, requires_grad=True)
    logits = d(x)
    logits[0, 0, 7, 7].backward()
    rows = x.grad.abs().sum(dim=(0, 1, 3)).nonzero().flatten()
    cols = x.grad.abs().sum(dim=(0, 1, 2)).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_patchgan_options_and_errors():
    torch.manual_seed(0)
    for norm in dmod.NORMS:
        assert dmod.PatchGAN(ndf=4, n_layers=2, norm=norm)(torch.rand(1, 6, 64, 64)).dim() == 4
    with pytest.raises(ValueError, match="norm"):
        dmod.PatchGAN(norm="group")
    with pytest.raises(ValueError, match=r"\(N, 6, H, W\)"):
        dmod.PatchGAN(ndf=4)(torch.rand(1, 3, 64, 64))


def test_spectral_norm_bounds_the_weights_and_saves_as_plain_tensors():
    torch.manual_seed(0)
    d = dmod.PatchGAN(ndf=4, norm="none", spectral=True)
    x = torch.rand(2, 6, 64, 64)
    for _ in range(20):                      # power iterations converge in training mode
        d(x)
    weight = d.model[0].weight.detach().flatten(1)
    assert torch.linalg.matrix_norm(weight, ord=2) == pytest.approx(1.0, rel=0.05)
    buffer = io.BytesIO()
    torch.save(d.state_dict(), buffer)
    buffer.seek(0)
    restored = dmod.PatchGAN(ndf=4, norm="none", spectral=True)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.allclose(restored.eval()(x), d.eval()(x))


@pytest.mark.parametrize("size, cells", [(64, 2), (128, 4)])
def test_tpgan_discriminator_logit_map(size, cells):
    torch.manual_seed(0)
    d = dmod.build("tpgan", ndf=8, size=size)
    assert d(torch.rand(2, 3, size, size)).shape == (2, 1, cells, cells)
    with pytest.raises(ValueError, match=rf"\(N, 3, {size}, {size}\)"):
        d(torch.rand(2, 3, size // 2, size // 2))


def test_tpgan_discriminator_official_counts():
    # reference/frontalization.md 1.8: patch D at 128x128, df_dim 64: 13.4 M parameters, 0.65 GMACs
    with torch.device("meta"):
        d = dmod.TPGANDiscriminator(ndf=64, size=128).eval()
        with FlopCounterMode(display=False) as counter:
            d(torch.zeros(1, 3, 128, 128))
    assert abs(sum(p.numel() for p in d.parameters()) / 13.4e6 - 1) < 0.01
    assert abs(counter.get_total_flops() / 2 / 0.65e9 - 1) < 0.02


def test_build_refuses_unknown_kinds():
    with pytest.raises(ValueError, match="unknown discriminator"):
        dmod.build("stylegan")
    with pytest.raises(ValueError, match="multiple of 32"):
        dmod.build("tpgan", size=48)
