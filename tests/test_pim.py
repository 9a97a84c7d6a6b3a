"""PIM-lite frontalizer: outputs, local pathway, taps, supernet slicing == extracted sub-network, bad input."""
from __future__ import annotations

import random

import pytest
import torch

from gancomp_lite.models import pim
from gancomp_lite.models.tpgan import landmark_boxes, part_boxes
from gancomp_lite.nn.elastic import extract, set_active
from gancomp_lite.space import ConfigError


@pytest.mark.parametrize("size", [64, 128])
def test_outputs_and_taps(size):
    torch.manual_seed(0)
    g = pim.build(None, size, base=8).eval()
    x = torch.rand(2, 3, size, size) * 2 - 1
    out = g.forward_all(x)
    assert out["image"].shape == (2, 3, size, size) and out["image"].abs().max() <= 1
    assert out["image_s2"].shape == (2, 3, size // 2, size // 2)
    assert out["image_s4"].shape == (2, 3, size // 4, size // 4)
    assert out["identity_feature"].shape == (2, 32)
    for part, (_, _, h, w) in part_boxes(size).items():
        assert out[f"patch_{part}"].shape == (2, 3, h, w)
    channels = g.tap_channels()
    for tap, scale in zip(g.taps, (8, 4, 2, 1)):
        assert out[f"feat:{tap}"].shape == (2, channels[tap], size // scale, size // scale)
    assert torch.equal(g(x), out["image"])


def test_local_pathway_reads_the_boxes_it_is_given():
    torch.manual_seed(0)
    g = pim.build(None, 64, base=8).eval()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    template = torch.tensor([[list(part_boxes(64)[p]) for p in pim.PARTS]])
    moved = template.clone()
    moved[0, 3, 0] -= 4                                   # mouth box 4 px higher
    with torch.no_grad():
        assert torch.equal(g(x, template), g(x))
        assert not torch.allclose(g.forward_all(x, moved)["patch_mouth"], g.forward_all(x)["patch_mouth"])


def test_frontalize_with_a_template_crops_the_parts_at_the_batch_landmarks_as_in_training():
    """Evaluation must feed the local pathway as the recipe trains it: with a template, patches around the
    profile's landmarks; without one, the official boxes whatever the batch holds (the shipped PIM)."""
    torch.manual_seed(0)
    template = (20.0, 26.0, 44.0, 26.0, 32.0, 36.0, 23.0, 47.0, 41.0, 47.0)
    g = pim.build(None, 64, base=8, template=template).eval()
    official = pim.build(None, 64, base=8).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    landmarks = torch.tensor([[[18.0, 22.0], [40.0, 24.0], [30.0, 36.0], [22.0, 46.0], [38.0, 46.0]]] * 2)
    landmarks[1] = float("nan")                           # unknown points: template boxes for that sample
    batch = {"profile": x, "landmarks": landmarks}
    with torch.no_grad():
        got = g.frontalize(batch)
        expected = g(x, landmark_boxes(landmarks, 64, g.template))
        plain = g(x)
        assert torch.equal(g.frontalize({"profile": x}), plain)
        assert official.profile_boxes(batch) is None and torch.equal(official.frontalize(batch), official(x))
    assert torch.equal(got, expected)
    assert not torch.allclose(got[0], plain[0]) and torch.allclose(got[1], plain[1])


def test_template_knob_moves_the_parts_on_the_canvas():
    """A data set's mean frontal landmarks place the template boxes (SynthPIE's faces sit lower than TP-GAN's)."""
    template = (40.0, 60.0, 88.0, 60.0, 64.0, 80.0, 46.0, 100.0, 82.0, 100.0)
    torch.manual_seed(0)
    official = pim.build(None, 64, base=8).eval()
    torch.manual_seed(0)
    moved = pim.build(None, 64, base=8, template=template).eval()
    assert moved.template_boxes == part_boxes(64, template) != official.template_boxes
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert not torch.allclose(moved(x), official(x))
    assert pim.space(base=8, step=4, template=template).teacher() == pim.space(base=8, step=4).teacher()


def test_forward_pair_adds_the_frontal_identity_feature():
    torch.manual_seed(0)
    g = pim.build(None, 64, base=8).eval()
    x, y = torch.rand(2, 2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        out = g.forward_pair(x, y)
        torch.testing.assert_close(out["frontal_identity_feature"], g.encode(y))
        torch.testing.assert_close(out["identity_feature"], g.encode(x))


def test_domain_classifier():
    head = pim.DomainClassifier(feature_dim=32, hidden=16)
    assert head(torch.randn(5, 32)).shape == (5,)
    with pytest.raises(ValueError, match=r"\(N, 32\)"):
        head(torch.randn(5, 31))


def test_space_and_official_sized_teacher():
    sp = pim.space(base=16, step=4)
    assert sp.teacher()["enc4"] == 128 and sp.teacher()["part512"] == 64
    assert min(sp.smallest().values()) == 4
    assert len(sp.names) == len(pim.MULTIPLIERS)
    with pytest.raises(ConfigError, match="'fuse'"):
        pim.build({**sp.teacher(), "fuse": 17}, 64, base=16, step=4)


def test_supernet_at_a_narrower_config_equals_the_extracted_subnet():
    torch.manual_seed(0)
    sp = pim.space(base=8, step=4)
    teacher = pim.build(None, 64, base=8, step=4)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():                 # non-trivial BatchNorm running statistics
        teacher.train()(x)
    config = sp.sample(random.Random(7))
    assert config != sp.teacher()
    teacher.eval()
    set_active(teacher, config)
    with torch.no_grad():
        wide = teacher.forward_all(x)
    set_active(teacher, None)
    sub = extract(teacher, pim.build(config, 64, base=8, step=4), config).eval()
    with torch.no_grad():
        narrow = sub.forward_all(x)
    assert sum(p.numel() for p in sub.parameters()) < sum(p.numel() for p in teacher.parameters())
    for key in ("image", "image_s2", "identity_feature", "patch_nose", "feat:dec2", "feat:fuse"):
        torch.testing.assert_close(narrow[key], wide[key], rtol=1e-4, atol=1e-5)
    assert sub.tap_channels() == teacher.tap_channels(config)


def test_wrong_input_shape_names_the_expected_shape():
    g = pim.build(None, 64, base=8)
    with pytest.raises(ValueError, match=r"\(N, 3, 64, 64\)"):
        g(torch.zeros(1, 3, 128, 128))
    with pytest.raises(ValueError, match=r"\(N, 3, 64, 64\)"):
        g.encode(torch.zeros(1, 6, 64, 64))
    with pytest.raises(ValueError, match="size must be one of"):
        pim.build(None, 96, base=8)


def test_construction_is_deterministic():
    torch.manual_seed(11)
    first = pim.build(None, 64, base=8).state_dict()
    torch.manual_seed(11)
    second = pim.build(None, 64, base=8).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
