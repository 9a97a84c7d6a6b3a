"""Light-CNN: MFM, the layer tables of -9 and -29, the identity input, checkpoints and training."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from gancomp_lite.checkpoint import CheckpointError
from gancomp_lite.models.lightcnn import (
    LightCNN,
    load_identity_network,
    save_identity_network,
    to_identity_input,
    train_identity_network,
)
from gancomp_lite.nn.mfm import MFMConv2d, MFMLinear, max_feature_map


def test_max_feature_map_keeps_the_larger_half():
    x = torch.tensor([[1.0, -2.0, 0.5, 3.0]])          # halves (1, -2) and (0.5, 3)
    assert torch.equal(max_feature_map(x), torch.tensor([[1.0, 3.0]]))
    with pytest.raises(ValueError, match="even number of channels"):
        max_feature_map(torch.zeros(2, 3, 4, 4))


def test_mfm_layers_halve_their_doubled_outputs():
    conv = MFMConv2d(3, 5, 3, padding=1)
    assert conv.conv.out_channels == 10
    assert conv(torch.randn(2, 3, 8, 8)).shape == (2, 5, 8, 8)
    lin = MFMLinear(7, 4)
    assert lin.linear.out_features == 8
    assert lin(torch.randn(2, 7)).shape == (2, 4)


@pytest.mark.parametrize("variant", ["9", "29"])
@pytest.mark.parametrize("size,width", [(64, 0.25), (128, 0.25), (64, 1.0)])
def test_shapes(variant, size, width):
    net = LightCNN(variant, num_classes=7, width=width, input_size=size, feature_dim=64).eval()
    x = torch.rand(2, 1, size, size)
    logits, feature = net(x)
    assert logits.shape == (2, 7) and feature.shape == (2, 64)
    feats = net.features(x)
    assert feats["fc"].shape == (2, 64)
    assert feats["last_conv"].shape == (2, round(128 * width), size // 16, size // 16)
    assert torch.allclose(feats["fc"], feature)


def test_paper_sizes_match_the_reference_parameter_counts():
    """Backbone + 256-d fc (classifier excluded): 5.48 M for Light-CNN-9, 12.57 M for -29 (reference notes, section 4)."""
    for variant, millions in [("9", 5.48), ("29", 12.57)]:
        net = LightCNN(variant, num_classes=10)
        params = sum(p.numel() for name, p in net.named_parameters() if not name.startswith("fc2."))
        assert round(params / 1e6, 2) == millions
    residual = sum(1 for m in LightCNN("29", num_classes=10).modules() if type(m).__name__ == "MFMResBlock")
    assert residual == 1 + 2 + 3 + 4


def test_wrong_input_shape_names_the_expected_shape():
    net = LightCNN("9", num_classes=3, width=0.125, input_size=64)
    with pytest.raises(ValueError, match=r"\(N, 1, 64, 64\)"):
        net(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"\(N, 1, 64, 64\)"):
        net(torch.rand(1, 1, 128, 128))
    with pytest.raises(ValueError, match="multiple of 16"):
        LightCNN("9", num_classes=3, input_size=72)
    with pytest.raises(ValueError, match="variant"):
        LightCNN("13", num_classes=3)


def test_to_identity_input_is_gray_mean_in_unit_range():
    img = torch.empty(2, 3, 32, 32)
    img[0] = -1.0                                     # black -> 0
    img[1, 0], img[1, 1], img[1, 2] = 1.0, 0.0, -1.0  # (1 + 0.5 + 0) / 3 = 0.5
    x = to_identity_input(img, 64)
    assert x.shape == (2, 1, 64, 64)
    assert torch.allclose(x[0], torch.zeros(1, 64, 64))
    assert torch.allclose(x[1], torch.full((1, 64, 64), 0.5))
    noisy = to_identity_input(torch.randn(4, 3, 16, 16) * 3, 32)
    assert noisy.min() >= 0 and noisy.max() <= 1
    same_size = torch.rand(1, 3, 16, 16) * 2 - 1
    assert torch.allclose(to_identity_input(same_size, 16), ((same_size + 1) / 2).mean(1, keepdim=True))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        to_identity_input(torch.rand(1, 1, 16, 16), 16)


def test_checkpoint_round_trip_and_refusals(tmp_path):
    net = LightCNN("29", num_classes=4, width=0.125, input_size=32, feature_dim=16).eval()
    x = torch.rand(3, 1, 32, 32)
    path = tmp_path / "id.pt"
    save_identity_network(path, net, seed=3)
    loaded = load_identity_network(path)
    assert not loaded.training and loaded.config == net.config
    assert torch.equal(loaded(x)[1], net(x)[1])

    save_identity_network(tmp_path / "half.pt", net, half=True)
    assert torch.allclose(load_identity_network(tmp_path / "half.pt")(x)[1], net(x)[1], atol=1e-2)

    with open(path, "ab") as handle:
        handle.write(b"tamper")
    with pytest.raises(CheckpointError, match="sha256"):
        load_identity_network(path)

    other = tmp_path / "other.pt"
    save_identity_network(other, net)
    manifest = json.loads(other.with_suffix(".json").read_text())
    manifest["lightcnn"]["width"] = 0.25
    other.with_suffix(".json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="do not match"):
        load_identity_network(other)


def _separable_faces(n_ids: int = 3, per_id: int = 4, size: int = 32) -> list[dict]:
    """Identity k = a bright square at its own place; profile and frontal differ only by noise."""
    gen = torch.Generator().manual_seed(0)
    items = []
    for identity in range(n_ids):
        base = -torch.ones(3, size, size)
        top = 4 + 8 * identity
        base[:, top:top + 8, 8:24] = 1.0
        for _ in range(per_id):
            noise = lambda: 0.2 * torch.randn(3, size, size, generator=gen)  # noqa: E731
            items.append({"profile": base + noise(), "frontal": base + noise(), "identity": identity, "yaw": 45})
    return items


def _mean_loss(net: LightCNN, items: list[dict]) -> float:
    images = torch.stack([item[v] for v in ("profile", "frontal") for item in items])
    labels = torch.tensor([item["identity"] for _ in range(2) for item in items])
    with torch.no_grad():
        return F.cross_entropy(net(to_identity_input(images, net.input_size))[0], labels).item()


def test_training_reduces_the_loss_on_a_separable_problem():
    data = _separable_faces()
    kwargs = dict(num_classes=3, seed=0, width=0.25, input_size=32, feature_dim=16, batch_size=6, progress=False)
    untrained = train_identity_network(data, steps=0, **kwargs)
    trained = train_identity_network(data, steps=40, **kwargs)
    assert not trained.training
    before, after = _mean_loss(untrained, data), _mean_loss(trained, data)
    assert after < 0.5 * before, (before, after)


def test_training_is_seeded():
    data = _separable_faces()
    kwargs = dict(num_classes=3, steps=5, width=0.125, input_size=32, feature_dim=16, batch_size=4, progress=False)
    first, again = (train_identity_network(data, seed=1, **kwargs).state_dict() for _ in range(2))
    other = train_identity_network(data, seed=2, **kwargs).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["fc2.weight"], other["fc2.weight"])


def test_training_refuses_labels_outside_the_classes():
    data = _separable_faces()
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        train_identity_network(data, num_classes=2, steps=5, seed=0, width=0.125, input_size=32,
                               batch_size=12, progress=False)
