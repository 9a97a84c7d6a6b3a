"""CR-GAN: layer table, views, taps, supernet slicing == extracted sub-network, bad input."""
from __future__ import annotations

import random

import pytest
import torch

from gancomp_lite.models import crgan, registry
from gancomp_lite.nn.elastic import extract, set_active
from gancomp_lite.space import ConfigError


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_official_widths_match_the_reference_parameter_counts():
    """Reference notes, section 2: E 14.4 M, G 12.1 M, D 13.5 M parameters at 128x128, base 64, 9 views."""
    g = crgan.build(None, 128, base=64, views=9)
    d = crgan.CRGANDiscriminator(128, base=64, views=9)
    assert round(_params(g.encoder) / 1e6, 1) == 14.4
    assert round(_params(g.decoder) / 1e6, 1) == 12.1
    assert round(_params(d) / 1e6, 1) == 13.5
    assert [b.conv1.out_channels for b in g.encoder.trunk.blocks] == [64, 128, 256, 512, 512]
    assert [b.conv1.out_channels for b in g.decoder.blocks] == [512, 256, 128, 64, 64]
    assert g.z_dim == 128 - 9


@pytest.mark.parametrize("size,blocks", [(64, 4), (128, 5)])
def test_shapes_and_taps(size, blocks):
    torch.manual_seed(0)
    g = crgan.build(None, size, base=8).eval()
    x = torch.rand(2, 3, size, size) * 2 - 1
    out = g.forward_all(x)
    assert out["image"].shape == (2, 3, size, size)
    assert out["image"].abs().max() <= 1
    assert out["view_logits"].shape == (2, 13) and out["latent"].shape == (2, 128 - 13)
    assert g.taps == tuple(f"up{i}" for i in range(1, blocks + 1))
    for i, tap in enumerate(g.taps, start=1):
        feat = out[f"feat:{tap}"]
        assert feat.shape == (2, g.tap_channels()[tap], 4 * 2 ** i, 4 * 2 ** i)
    assert torch.equal(g(x), out["image"])
    logits, score = crgan.CRGANDiscriminator(size, base=8).eval()(x)
    assert logits.shape == (2, 13) and score.shape == (2,)


def test_view_conditioning_changes_the_output():
    torch.manual_seed(0)
    g = crgan.build(None, 64, base=8).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    frontal = g.forward_all(x)["image"]
    assert torch.equal(frontal, g.forward_all(x, view=g.frontal_view)["image"])
    assert not torch.allclose(frontal, g.forward_all(x, view=0)["image"])
    per_sample = g.forward_all(x, view=torch.tensor([g.frontal_view, 0]))["image"]
    assert torch.allclose(per_sample[0], frontal[0]) and not torch.allclose(per_sample[1], frontal[1])


def test_views_follow_the_multipie_cameras():
    assert crgan.view_yaws(13)[crgan.build(None, 64, base=8).frontal_view] == 0
    assert crgan.view_yaws(9) == (60, 45, 30, 15, 0, -15, -30, -45, -60)
    assert crgan.yaw_to_view(torch.tensor([90, 0, -90]), 13).tolist() == [0, 6, 12]
    assert crgan.yaw_to_view(torch.tensor([60.0, 0.0, -45.0]), 9).tolist() == [0, 4, 7]
    with pytest.raises(ValueError, match=r"yaws \[90\] are not views of the 9-view set"):
        crgan.yaw_to_view(torch.tensor([90, 0]), 9)
    with pytest.raises(ValueError, match="views must be 13"):
        crgan.view_yaws(7)


def test_space_groups_and_step_knob():
    sp = crgan.space(base=16, size=64, step=4)
    assert sp.teacher() == {"e0": 16, "e1": 16, "e2": 32, "e3": 64, "e4": 128,
                            "g0": 128, "g1": 64, "g2": 32, "g3": 16, "g4": 16}
    assert sp.smallest() == {name: 4 for name in sp.names}
    assert crgan.space(base=64).groups[0].choices == (64, 56, 48, 40, 32, 24, 16, 8)
    with pytest.raises(ConfigError, match="'g1'"):
        crgan.build({**sp.teacher(), "g1": 6}, 64, base=16, step=4)


def test_supernet_at_a_narrower_config_equals_the_extracted_subnet():
    torch.manual_seed(0)
    sp = crgan.space(base=16, size=64)
    teacher = crgan.build(None, 64, base=16)
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():                  # give BatchNorm non-trivial running statistics
        teacher.train()(x)
    config = sp.sample(random.Random(3))
    assert config != sp.teacher()
    teacher.eval()
    set_active(teacher, config)
    with torch.no_grad():
        wide = teacher.forward_all(x)
    set_active(teacher, None)
    sub = extract(teacher, crgan.build(config, 64, base=16), config).eval()
    with torch.no_grad():
        narrow = sub.forward_all(x)
    assert _params(sub) < _params(teacher)
    for key in ("image", "view_logits", "latent", "feat:up2"):
        torch.testing.assert_close(narrow[key], wide[key], rtol=1e-4, atol=1e-5)
    assert sub.tap_channels() == teacher.tap_channels(config)


def test_wrong_input_shape_names_the_expected_shape():
    g = crgan.build(None, 64, base=8)
    with pytest.raises(ValueError, match=r"\(N, 3, 64, 64\)"):
        g(torch.zeros(1, 3, 128, 128))
    with pytest.raises(ValueError, match=r"\(N, 3, 64, 64\)"):
        g(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match=r"v \(N, 13\) and z \(N, 115\)"):
        g.decoder(torch.zeros(1, 9), torch.zeros(1, 115))
    with pytest.raises(ValueError, match="size must be one of"):
        crgan.build(None, 96, base=8)


def test_construction_is_deterministic():
    torch.manual_seed(5)
    first = crgan.build(None, 64, base=8).state_dict()
    torch.manual_seed(5)
    second = crgan.build(None, 64, base=8).state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_registry_builds_a_64px_config_string():
    sp = registry.channel_space("crgan", 64, base=16, step=4)
    small = registry.build("crgan", sp.encode(sp.smallest()), 64, base=16, step=4)
    assert small.tap_channels() == {f"up{i}": 4 for i in range(1, 5)}
    assert small(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)
