"""TP-GAN generator: shapes, part patches and canvas, supernet = extracted subnet, errors, official counts."""
from __future__ import annotations

import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from gancomp_lite.models import registry, tpgan
from gancomp_lite.nn.elastic import extract, set_active
from gancomp_lite.space import ConfigError


def _images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("size", [64, 128])
def test_forward_all_shapes(size):
    torch.manual_seed(0)
    model = tpgan.build(None, size, base=8, num_classes=5).eval()
    with torch.no_grad():
        out = model.forward_all(_images(2, size))
    assert out["image"].shape == (2, 3, size, size)
    assert out["image_s2"].shape == (2, 3, size // 2, size // 2)
    assert out["image_s4"].shape == (2, 3, size // 4, size // 4)
    for part, (_, _, h, w) in tpgan.part_boxes(size).items():
        assert out[f"patch_{part}"].shape == (2, 3, h, w)
    assert out["identity_feature"].shape == (2, 32)          # F = 4 * base
    assert out["identity_logits"].shape == (2, 5)
    for key in ("image", "image_s2", "image_s4", "patch_nose"):
        assert out[key].abs().max() <= 1.0                   # tanh outputs
    channels = model.tap_channels()
    for tap in model.taps:
        assert out[f"feat:{tap}"].shape[1] == channels[tap]
    assert torch.equal(model(_images(2, size)), out["image"])  # eval: zero noise, deterministic


def test_patch_sizes_follow_the_official_128_table_and_scale():
    # official partCombiner: top = centre_y - h/2 - 1, left = centre_x - w/2 - 1 (TP_GAN-Mar6FS.py)
    assert tpgan.part_boxes(128) == {
        "left_eye": (20, 23, 40, 40), "right_eye": (20, 65, 40, 40),
        "nose": (48, 43, 32, 40), "mouth": (72, 40, 32, 48),
    }
    boxes64 = tpgan.part_boxes(64)
    assert {p: b[2:] for p, b in boxes64.items()} == {
        "left_eye": (20, 20), "right_eye": (20, 20), "nose": (16, 20), "mouth": (16, 24)}


def test_canvas_places_each_part_at_its_template_box_and_merges_by_max():
    size = 128
    boxes = tpgan.part_boxes(size)
    parts = {p: torch.full((1, 2, h, w), float(k + 1)) for k, (p, (_, _, h, w)) in enumerate(boxes.items())}
    canvas = tpgan.combine_parts(parts, size)
    expected = torch.zeros(1, 2, size, size)
    for k, (t, l, h, w) in enumerate(boxes.values()):
        region = expected[..., t:t + h, l:l + w]
        region.copy_(torch.maximum(region, torch.tensor(float(k + 1))))
    assert torch.equal(canvas, expected)
    # the nose (3) wins where it overlaps the left eye (1); nothing outside the boxes
    assert canvas[0, 0, 50, 50] == 3 and canvas[0, 0, 0, 0] == 0 and canvas[0, 0, 120, 64] == 0


def test_crop_parts_at_template_and_at_given_boxes():
    size = 64
    images = torch.arange(2 * 3 * size * size, dtype=torch.float32).reshape(2, 3, size, size)
    template = tpgan.part_boxes(size)
    patches = tpgan.crop_parts(images)
    t, l, h, w = template["mouth"]
    assert torch.equal(patches["mouth"], images[:, :, t:t + h, l:l + w])

    boxes = torch.tensor([[list(template[p]) for p in tpgan.PARTS]] * 2)
    boxes[1, 2, :2] = torch.tensor([5, 7])                    # sample 1: nose box moved
    patches = tpgan.crop_parts(images, boxes)
    _, _, h, w = template["nose"]
    assert torch.equal(patches["nose"][1], images[1, :, 5:5 + h, 7:7 + w])
    assert torch.equal(patches["nose"][0], images[0, :, template["nose"][0]:template["nose"][0] + h,
                                                  template["nose"][1]:template["nose"][1] + w])
    bad = boxes.clone()
    bad[:, 0, 2] = 10                                         # wrong eye height
    with pytest.raises(ValueError, match="left_eye"):
        tpgan.crop_parts(images, bad)


def test_part_rotators_see_the_boxes_and_right_eye_gets_both_eyes():
    torch.manual_seed(0)
    model = tpgan.build(None, 64, base=8).eval()
    assert model.rotators["right_eye"].c0[0][0].in_channels == 6
    assert model.rotators["left_eye"].c0[0][0].in_channels == 3
    x = _images(2, 64, seed=1)
    boxes = torch.tensor([[list(b) for b in tpgan.part_boxes(64).values()]] * 2)
    boxes[:, :, 0] += 3                                       # every box 3 px lower
    with torch.no_grad():
        out = model.forward_all(x, boxes)
        patches = tpgan.crop_parts(x, boxes)
        _, nose = model.rotators["nose"](patches["nose"])
        _, right = model.rotators["right_eye"](torch.cat([patches["right_eye"], patches["left_eye"]], 1))
        default = model.forward_all(x)
    assert torch.allclose(out["patch_nose"], nose) and torch.allclose(out["patch_right_eye"], right)
    assert not torch.allclose(out["patch_nose"], default["patch_nose"])



def test_frontalize_crops_the_parts_at_the_batch_landmarks_as_in_training():
    """The evaluation protocol must feed the parts the way the recipe trains them: at the profile's landmarks."""
    torch.manual_seed(0)
    model = tpgan.build(None, 64, base=8).eval()
    x = _images(2, 64, seed=2)
    landmarks = torch.tensor([[[20.0, 26.0], [40.0, 27.0], [30.0, 36.0], [22.0, 46.0], [38.0, 46.0]]] * 2)
    landmarks[1] = float("nan")                               # unknown points: template boxes for that sample
    with torch.no_grad():
        got = model.frontalize({"profile": x, "landmarks": landmarks})
        expected = model(x, tpgan.landmark_boxes(landmarks, 64, model.template))
        plain = model(x)
        assert torch.equal(model.frontalize({"profile": x}), plain)
    assert torch.equal(got, expected)
    assert not torch.allclose(got[0], plain[0]) and torch.allclose(got[1], plain[1])

def test_mirror_input_option_sets_the_global_input_channels():
    mirrored = tpgan.build(None, 64, base=8)
    plain = tpgan.build(None, 64, base=8, mirror_input=False)
    assert mirrored.encoder.c0[0][0].in_channels == 6 and plain.encoder.c0[0][0].in_channels == 3
    # the 6 (or 3) image channels also enter the select blocks at S, S/2, S/4
    assert tpgan.teacher_widths(64)["dec128"] == 212 and tpgan.teacher_widths(64, mirror_input=False)["dec128"] == 209
    assert plain.eval()(_images(1, 64)).shape == (1, 3, 64, 64)


def test_supernet_at_a_narrower_config_equals_the_extracted_subnet():
    torch.manual_seed(0)
    knobs = {"base": 16, "step": 4, "num_classes": 3}
    supernet = tpgan.build(None, 64, **knobs)
    x = _images(4, 64, seed=2)
    with torch.no_grad():
        supernet.train()(x)                                   # non-trivial BN running statistics
    config = tpgan.space(**knobs).sample(random.Random(3))
    assert config != tpgan.space(**knobs).teacher()
    subnet = extract(supernet, tpgan.build(config, 64, **knobs), config)
    supernet.eval()
    set_active(supernet, config)
    with torch.no_grad():
        expected = supernet.forward_all(x)
        got = subnet.eval().forward_all(x)
    set_active(supernet, None)
    for key in ("image", "image_s2", "patch_mouth", "identity_logits", "feat:dec32"):
        assert torch.allclose(got[key], expected[key], atol=1e-5), key
    assert subnet.tap_channels() == supernet.tap_channels(config)
    assert {k.removeprefix("feat:"): v.shape[1] for k, v in got.items() if k.startswith("feat:")} \
        == supernet.tap_channels(config)
    assert sum(p.numel() for p in subnet.parameters()) < sum(p.numel() for p in supernet.parameters())


def test_registry_config_strings_and_deterministic_construction():
    space = tpgan.space(base=16, step=4)
    assert len(space.names) == 19
    smallest = space.encode(space.smallest())
    model = registry.build("tpgan", smallest, 64, base=16, step=4)
    assert model.config == space.smallest()
    torch.manual_seed(7)
    a = tpgan.build(None, 64, base=8)
    torch.manual_seed(7)
    b = tpgan.build(None, 64, base=8)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_bad_inputs_raise_clear_errors():
    model = tpgan.build(None, 64, base=8).eval()
    with pytest.raises(ValueError, match=r"\(N, 3, 64, 64\)"):
        model(_images(1, 32))
    with pytest.raises(ValueError, match=r"\(N, 3, 64, 64\)"):
        model(torch.zeros(1, 6, 64, 64))
    with pytest.raises(ValueError, match="z must have shape"):
        model.forward_all(_images(1, 64), z=torch.zeros(1, 7))
    with pytest.raises(ConfigError, match="multiple of 8"):
        tpgan.build(None, 64, base=12)
    with pytest.raises(ValueError, match="multiple of 16"):
        tpgan.build(None, 72, base=8)
    config = tpgan.space(base=16, step=4).teacher()
    config["dec128"] = 10
    with pytest.raises(ConfigError, match="dec128"):
        tpgan.build(config, 64, base=16, step=4)


def _count(size: int, base: int) -> tuple[tpgan.TPGAN, float, dict[str, int]]:
    """The model (on meta), its physical MACs (FlopCounterMode: flops / 2; transposed convs on the input grid)
    and the MACs per module."""
    with torch.device("meta"):
        model = tpgan.build(None, size, base=base).eval()
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, size, size))
    per_module = {name: sum(c.values()) // 2 for name, c in counter.get_flop_counts().items()}
    return model, counter.get_total_flops() / 2, per_module


def test_official_size_reproduces_the_reference_counts():
    model, macs, per_module = _count(128, 64)
    # reference/frontalization.md 1.8: 157.5 M parameters, 92.9 GMACs (physical convention)
    assert abs(sum(p.numel() for p in model.parameters()) / 157.5e6 - 1) < 0.005
    assert abs(macs / 92.9e9 - 1) < 0.005
    # two rows of the layer table, computed by hand: the k5 fuse resblock on 212 channels at 128x128,
    # and the encoder fc 32768 -> 512 (plus bias)
    assert per_module["TPGAN.decoder.fuse128"] == 2 * 25 * 212 * 212 * 128 * 128
    assert sum(p.numel() for p in model.encoder.fc.parameters()) == 32768 * 512 + 512
    # 64x64 at gf = 32 (reference table: 36.3 M, 6.3 GMACs)
    model, macs, _ = _count(64, 32)
    assert abs(sum(p.numel() for p in model.parameters()) / 36.3e6 - 1) < 0.01 and abs(macs / 6.3e9 - 1) < 0.01


def test_analytic_cost_model_matches_an_extracted_subnet():
    from gancomp_lite import cost

    knobs = {"base": 16, "step": 4}
    config = tpgan.space(**knobs).sample(random.Random(5))
    with torch.device("meta"):
        model = tpgan.build(config, 64, **knobs).eval()
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, 64, 64))
    expected = cost.Cost(macs=counter.get_total_flops() // 2, params=sum(p.numel() for p in model.parameters()))
    assert cost.count("tpgan", config, 64, convention="physical", **knobs) == expected


def test_separable_resblocks_cost_less_and_still_slice():
    from gancomp_lite import cost

    knobs = {"base": 16, "step": 4}
    dense = cost.count("tpgan", None, 64, convention="physical", **knobs)
    separable = cost.count("tpgan", None, 64, convention="physical", separable=True, **knobs)
    assert separable.macs < dense.macs / 3 and separable.params < dense.params / 2
    torch.manual_seed(0)
    supernet = tpgan.build(None, 64, separable=True, **knobs)
    assert supernet.decoder.fuse128.conv1[0].depthwise
    x = _images(2, 64, seed=6)
    with torch.no_grad():
        supernet.train()(x)
    config = tpgan.space(**knobs).sample(random.Random(8))
    subnet = extract(supernet, tpgan.build(config, 64, separable=True, **knobs), config).eval()
    supernet.eval()
    set_active(supernet, config)
    with torch.no_grad():
        assert torch.allclose(subnet(x), supernet(x), atol=1e-5)
    set_active(supernet, None)


def test_a_data_set_template_moves_the_part_boxes_and_the_canvas():
    # landmarks of a face aligned lower than TP-GAN's crop (e.g. SynthPIE's mean frontal), at 128x128
    template = [48.0, 54.0, 80.0, 54.0, 64.0, 74.0, 52.0, 88.0, 76.0, 88.0]
    boxes = tpgan.part_boxes(64, template)
    assert boxes["left_eye"] == (17, 14, 20, 20) and boxes["mouth"] == (36, 20, 16, 24)
    torch.manual_seed(0)
    model = tpgan.build(None, 64, base=8, template=template).eval()
    assert model.template_boxes == boxes
    parts = {p: torch.ones(1, 1, h, w) for p, (_, _, h, w) in boxes.items()}
    canvas = tpgan.combine_parts(parts, 64, model.template_boxes)
    assert canvas[0, 0, 17, 14] == 1 and canvas[0, 0, 16, 14] == 0
    x = _images(1, 64)
    with torch.no_grad():
        _, image = model.rotators["nose"](tpgan.crop_parts(x, None, boxes)["nose"])
        assert torch.allclose(model.forward_all(x)["patch_nose"], image)
    with pytest.raises(ValueError, match="10 finite numbers"):
        tpgan.build(None, 64, base=8, template=template[:8])


def test_template_from_landmarks_averages_known_points_at_128():
    points = torch.tensor([[[24.0, 27.0], [40.0, 27.0], [32.0, 37.0], [26.0, 44.0], [38.0, 44.0]],
                           [[24.0, 29.0], [40.0, 29.0], [32.0, 37.0], [26.0, 44.0], [38.0, 44.0]],
                           [[float("nan"), 0.0], [40.0, 27.0], [32.0, 37.0], [26.0, 44.0], [38.0, 44.0]]])
    template = tpgan.template_from_landmarks(points, 64)
    assert template == (48.0, 56.0, 80.0, 56.0, 64.0, 74.0, 52.0, 88.0, 76.0, 88.0)
    with pytest.raises(ValueError, match="no sample"):
        tpgan.template_from_landmarks(points[2:], 64)
