"""ResNet-9 and mobile ResNet-9 generators: layer table, contract API, supernet = extracted subnet."""
from __future__ import annotations

import pytest
import torch

from gancomp_lite.models import mobile_resnet, resnet
from gancomp_lite.models.registry import build
from gancomp_lite.nn.elastic import ElasticConv2d, ElasticConvTranspose2d, extract, set_active

SIZE = 32
TINY = {"ngf": 16, "step": 4}                       # tiny teacher: every group 16 -> choices 16, 12, 8, 4
SUB = "8_4_12_4_16_8_12_4"


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet9_at_ngf64_has_the_published_parameter_count():
    with torch.device("meta"):
        teacher = build("resnet9", None, 256)
    assert n_params(teacher) == 11_378_179           # GAN Compression README: 11.4M


def test_mobile_student_has_the_published_parameter_count():
    with torch.device("meta"):
        student = build("mobile-resnet9", "16_16_32_16_32_32_16_16", 256)
    assert n_params(student) == 356_867              # GAN Compression README (horse2zebra): 0.357M


def test_layer_table_widths_follow_the_multipliers():
    model = build("resnet9", SUB, SIZE, **TINY)
    assert model.stem[0].weight.shape == (8, 3, 7, 7)
    assert model.down1[0].weight.shape == (8, 8, 3, 3)            # 2 * c1
    assert model.down2[0].weight.shape == (48, 8, 3, 3)           # 4 * c2: the trunk
    assert [b.body[0][0].out_channels for b in model.blocks] == [16] * 3 + [64] * 3 + [32] * 3
    assert isinstance(model.up1[0], ElasticConvTranspose2d) and model.up1[0].weight.shape == (48, 24, 3, 3)
    assert model.up2[0].weight.shape == (24, 4, 3, 3)
    assert model.out.weight.shape == (3, 4, 7, 7)


def test_mobile_blocks_are_separable_and_the_rest_dense():
    model = build("mobile-resnet9", None, SIZE, **TINY)
    first_conv = model.blocks[0].body[0][0]
    depthwise, _, pointwise = first_conv
    assert depthwise.depthwise and depthwise.weight.shape == (64, 1, 3, 3)
    assert pointwise.weight.shape == (64, 64, 1, 1)
    assert isinstance(model.down2[0], ElasticConv2d) and not model.down2[0].depthwise


@pytest.mark.parametrize("arch", ["resnet9", "mobile-resnet9"])
def test_forward_contract(arch):
    torch.manual_seed(0)
    model = build(arch, SUB, SIZE, **TINY)
    x = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    out = model.forward_all(x)
    assert set(out) == {"image"} | {f"feat:{t}" for t in model.taps}
    assert model.taps == ("down2", "block3", "block6", "block9")
    assert out["image"].shape == (2, 3, SIZE, SIZE) and out["image"].abs().max() <= 1
    assert model.tap_channels() == {t: 48 for t in model.taps}
    assert model.tap_channels(model.space.decode("16_16_8_16_16_16_16_16")) == {t: 32 for t in model.taps}
    for tap in model.taps:
        assert out[f"feat:{tap}"].shape == (2, 48, SIZE // 4, SIZE // 4)
    torch.testing.assert_close(model(x), out["image"])


def test_wrong_input_shape_names_the_expected_shape():
    model = build("resnet9", None, SIZE, **TINY)
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 3, 32, 32\), got \(1, 3, 64, 64\)"):
        model(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"got \(1, 1, 32, 32\)"):
        model(torch.zeros(1, 1, SIZE, SIZE))
    with pytest.raises(ValueError, match="multiple of 4"):
        build("resnet9", None, 30)


def test_construction_is_deterministic_under_a_seed():
    torch.manual_seed(3)
    first = build("mobile-resnet9", None, SIZE, **TINY).state_dict()
    torch.manual_seed(3)
    second = build("mobile-resnet9", None, SIZE, **TINY).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("arch, knobs", [
    ("resnet9", {}),
    ("mobile-resnet9", {}),
    ("resnet9", {"separable": ("c0", "c1", "c6", "c7", "out")}),   # separable stem, downsampling, upsampling
])
def test_supernet_at_a_config_equals_the_extracted_subnet(arch, knobs):
    torch.manual_seed(0)
    supernet = build(arch, None, SIZE, **TINY, **knobs).eval()
    config = supernet.space.decode(SUB)
    widths = supernet.space.widths(config)
    x = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    set_active(supernet, widths)
    expected = supernet.forward_all(x)
    subnet = extract(supernet, build(arch, config, SIZE, **TINY, **knobs).eval(), widths)
    got = subnet.forward_all(x)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=1e-4)


def test_separable_knob_rejects_unknown_groups():
    with pytest.raises(ValueError, match=r"cannot make \['blocks'\] separable; layer groups are"):
        resnet.build(None, SIZE, separable=("blocks",))
    assert mobile_resnet.SEPARABLE == ("c3", "c4", "c5")


def test_config_wider_than_the_teacher_is_refused():
    with pytest.raises(ValueError, match=r"group 'c0': 24 is wider than the teacher \(16\)"):
        build("mobile-resnet9", "24_16_16_16_16_16_16_16", SIZE, **TINY)


def test_extracted_subnet_exports():
    torch.manual_seed(0)
    model = build("mobile-resnet9", SUB, SIZE, **TINY).eval()
    x = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x))
