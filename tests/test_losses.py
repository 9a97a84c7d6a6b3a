"""Losses on tiny hand-computed tensors, plus the distillation adapters."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from gancomp_lite import losses as L
from gancomp_lite.distill import Adapter1x1, FeatureAdapters, distill_loss, feature_taps


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# ---------------------------------------------------------------- eq. 1-3
def test_bce_with_one_sided_label_smoothing():
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])
    expected_d = -(0.9 * math.log(sigmoid(2)) + 0.1 * math.log(1 - sigmoid(2))) - math.log(1 - sigmoid(-1))
    assert L.discriminator_loss(real, fake, "bce", real_label=0.9).item() == pytest.approx(expected_d, rel=1e-6)
    assert L.discriminator_loss(torch.zeros(3), torch.zeros(3), "bce").item() == pytest.approx(2 * math.log(2))
    expected_g = -(0.9 * math.log(sigmoid(-1)) + 0.1 * math.log(1 - sigmoid(-1)))
    assert L.generator_loss(fake, "bce", real_label=0.9).item() == pytest.approx(expected_g, rel=1e-6)


def test_lsgan_hinge_wgan_values():
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.5])
    assert L.discriminator_loss(real, fake, "lsgan").item() == pytest.approx(0.5 + 0.25)
    assert L.generator_loss(fake, "lsgan").item() == pytest.approx(0.25)
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert L.discriminator_loss(real, fake, "hinge").item() == pytest.approx(0.25 + 0.5)
    assert L.generator_loss(fake, "hinge").item() == pytest.approx(1.0)
    assert L.discriminator_loss(real, fake, "wgan").item() == pytest.approx(-1.0 - 1.25)
    assert L.generator_loss(fake, "wgan").item() == pytest.approx(1.0)


def test_patch_logit_maps_and_gradients_flow():
    fake = torch.randn(2, 1, 4, 4, requires_grad=True)
    for mode in L.GAN_MODES:
        fake.grad = None
        L.generator_loss(fake, mode).backward()
        assert fake.grad.abs().sum() > 0, mode
    with pytest.raises(ValueError, match="unknown GAN loss mode 'vanilla'"):
        L.discriminator_loss(fake, fake, "vanilla")


def test_reconstruction_and_conditional_pair():
    out, target = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    target[0, 0, 0, 0] = -1.5
    assert L.reconstruction_loss(out, target).item() == pytest.approx((11 * 0.5 + 1.5) / 12)
    pair = L.conditional_pair(torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8))
    assert pair.shape == (2, 6, 8, 8) and pair[:, 3:].eq(1).all()
    with pytest.raises(ValueError, match="share N, H, W"):
        L.conditional_pair(torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 4, 4))
    with pytest.raises(ValueError, match="shapes differ"):
        L.reconstruction_loss(out, target[:, :1])


# ---------------------------------------------------------------- eq. 4 and adapters
def test_distillation_loss_sums_taps_and_leaves_teacher_alone():
    teacher = {"a": torch.zeros(1, 2, 1, 1, requires_grad=True), "b": torch.ones(1, 1, 2, 1, requires_grad=True)}
    student = {"a": torch.tensor([[[[1.0]], [[3.0]]]], requires_grad=True), "b": torch.zeros(1, 1, 2, 1, requires_grad=True)}
    loss = L.distillation_loss(teacher, student)
    assert loss.item() == pytest.approx((1 + 9) / 2 + 1.0)
    loss.backward()
    assert teacher["a"].grad is None and student["a"].grad is not None
    with pytest.raises(ValueError, match="taps differ"):
        L.distillation_loss({"a": teacher["a"]}, student)


def test_adapters_map_student_to_teacher_width_and_accept_narrower_inputs():
    adapters = FeatureAdapters({"res3": 4, "res6": 2}, {"res3": 16, "res6": 8})
    assert adapters["res3"].weight.shape == (16, 4, 1, 1)
    assert adapters["res3"].weight.std().item() == pytest.approx(0.02, rel=0.5)
    x = torch.randn(1, 3, 5, 5)  # a supernet sub-config with 3 of the 4 student channels active
    padded = torch.cat([x, torch.zeros(1, 1, 5, 5)], dim=1)  # = the full adapter with channel 4 silent
    torch.testing.assert_close(adapters["res3"](x), adapters["res3"](padded))
    assert adapters["res3"](x).shape == (1, 16, 5, 5)
    with pytest.raises(ValueError, match="at most 4 student channels"):
        adapters["res3"](torch.randn(1, 5, 5, 5))
    with pytest.raises(ValueError, match="adapter taps differ"):
        FeatureAdapters({"a": 1}, {"b": 1})


def test_distill_loss_is_mse_of_adapted_features():
    adapter = Adapter1x1(2, 1)
    with torch.no_grad():
        adapter.weight.copy_(torch.tensor([1.0, 2.0]).view(1, 2, 1, 1))
        adapter.bias.fill_(0.5)
    adapters = FeatureAdapters({"t": 2}, {"t": 1})
    adapters["t"] = adapter
    student = {"t": torch.tensor([1.0, 1.0]).view(1, 2, 1, 1)}  # adapted: 1 + 2 + 0.5 = 3.5
    teacher = {"t": torch.full((1, 1, 1, 1), 1.5)}
    loss = distill_loss(teacher, student, adapters)
    assert loss.item() == pytest.approx(4.0)
    loss.backward()
    assert adapter.weight.grad.abs().sum() > 0


def test_feature_taps():
    outputs = {"image": torch.zeros(1), "feat:res3": torch.ones(1), "feat:res6": torch.ones(2)}
    assert set(feature_taps(outputs)) == {"res3", "res6"}
    assert list(feature_taps(outputs, ["res6"])) == ["res6"]
    with pytest.raises(KeyError, match="res9"):
        feature_taps(outputs, ["res9"])


# ---------------------------------------------------------------- TP-GAN
def symmetric_image(n: int = 2, c: int = 3, size: int = 16) -> torch.Tensor:
    half = torch.rand(n, c, size, size // 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return torch.cat([half, half.flip(-1)], dim=-1)


def test_symmetry_zero_for_symmetric_faces_positive_otherwise():
    image = symmetric_image()
    assert L.symmetry_loss(image).item() == pytest.approx(0.0, abs=1e-7)
    scales = [image, L._resize(image, (8, 8)), L._resize(image, (4, 4))]
    assert L.tpgan_symmetry_loss(scales).item() == pytest.approx(0.0, abs=1e-6)
    shifted = image.roll(1, dims=-1).requires_grad_(True)
    loss = L.tpgan_symmetry_loss([shifted, shifted[..., ::2, ::2], shifted[..., ::4, ::4]])
    assert loss.item() > 0.05
    loss.backward()
    assert shifted.grad.abs().sum() > 0


def test_symmetry_hand_value_and_stop_gradient_on_left_half():
    image = torch.tensor([[[[1.0, 2.0, 5.0, 3.0]]]], requires_grad=True)  # |1-3| + |2-5| over 2 pixels
    loss = L.symmetry_loss(image)
    assert loss.item() == pytest.approx(2.5)
    loss.backward()
    assert image.grad[..., :2].eq(0).all() and image.grad[..., 2:].ne(0).all()


def test_laplacian_kernel():
    constant = torch.full((1, 2, 5, 5), 0.7)
    assert L.laplacian(constant)[..., 1:-1, 1:-1].abs().max().item() == pytest.approx(0.0, abs=1e-6)
    spike = torch.zeros(1, 1, 3, 3)
    spike[0, 0, 1, 1] = 1.0
    assert L.laplacian(spike)[0, 0].tolist() == [[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]]


def test_multiscale_pixel_loss_resizes_target_and_weights_scales():
    target = torch.rand(2, 3, 16, 16) * 2 - 1
    outputs = [L._resize(target, (s, s)) for s in (16, 8, 4)]
    assert L.multiscale_pixel_loss(outputs, target).item() == pytest.approx(0.0, abs=1e-7)
    shifted = [o + 0.1 for o in outputs]
    assert L.multiscale_pixel_loss(shifted, target).item() == pytest.approx((1 + 1 + 1.5) * 0.1, rel=1e-5)
    with pytest.raises(ValueError, match="3 outputs but 2 scale weights"):
        L.multiscale_pixel_loss(outputs, target, weights=(1.0, 1.0))


def test_identity_preserving_uses_last_two_layers_summed_over_channels():
    fake = {"fc": torch.zeros(2, 4), "last_conv": torch.zeros(2, 3, 2, 2), "conv1": torch.zeros(2, 1)}
    real = {"fc": torch.ones(2, 4), "last_conv": torch.full((2, 3, 2, 2), -2.0), "conv1": torch.full((2, 1), 9.0)}
    real["last_conv"][:, :, 0, 0] = 0.0          # one position of four already matches
    # fc: |1| over 4 channels = 4 per sample; last_conv: 3 channels x 2 = 6 at three of four positions
    assert L.identity_preserving_loss(fake, real).item() == pytest.approx(4.0 + 6.0 * 3 / 4)
    with pytest.raises(KeyError, match="last_conv"):
        L.identity_preserving_loss({"fc": fake["fc"]}, real)


def test_identity_ce_and_view_loss_of_uniform_logits():
    assert L.identity_ce_loss(torch.zeros(4, 10), torch.tensor([0, 3, 9, 2])).item() == pytest.approx(math.log(10))
    assert L.view_classification_loss(torch.zeros(2, 9), torch.tensor([4, 0])).item() == pytest.approx(math.log(9))


def test_total_variation_hand_value():
    image = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])  # dx: 1 + 2, dy: 2 + 3
    assert L.total_variation(image).item() == pytest.approx(8.0)
    assert L.total_variation(torch.ones(3, 3, 8, 8)).item() == 0.0


def test_local_patch_loss_crops_frontal_with_boxes():
    frontal = torch.rand(2, 3, 16, 16) * 2 - 1
    boxes = torch.tensor([[[2, 1, 4, 6], [2, 9, 4, 6], [6, 5, 5, 6], [11, 4, 4, 8]],
                          [[3, 2, 4, 6], [3, 8, 4, 6], [7, 5, 5, 6], [12, 4, 4, 8]]])
    crops = L.crop_patches(frontal, boxes)
    assert crops["mouth"].shape == (2, 3, 4, 8)
    assert torch.equal(crops["nose"][1], frontal[1, :, 7:12, 5:11])
    outputs = {f"patch_{part}": crop + 1.0 for part, crop in crops.items()}
    assert L.local_patch_loss(outputs, frontal, boxes).item() == pytest.approx(4.0)
    with pytest.raises(KeyError, match="patch_mouth"):
        L.local_patch_loss({k: v for k, v in outputs.items() if k != "patch_mouth"}, frontal, boxes)
    bad = boxes.clone()
    bad[0, 3, 0] = 14
    with pytest.raises(ValueError, match="mouth box .* leaves the 16x16 image"):
        L.crop_patches(frontal, bad)
    with pytest.raises(ValueError, match="boxes must be"):
        L.crop_patches(frontal, boxes[:, :3])


def test_tpgan_weights_are_the_published_defaults_and_frozen():
    weights = L.TPGANLossWeights()
    assert (weights.sym, weights.adv, weights.ip, weights.tv) == (0.3, 1e-3, 3e-3, 1e-4)
    assert (weights.scales, weights.ce, weights.local) == ((1.0, 1.0, 1.5), 10.0, 3.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        weights.sym = 1.0


# ---------------------------------------------------------------- CR-GAN and PIM
def test_gradient_penalty_zero_for_unit_norm_linear_critic():
    real, fake = torch.randn(4, 3, 4, 4), torch.randn(4, 3, 4, 4)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(48, 1))
    with torch.no_grad():
        critic[1].weight.copy_(torch.randn(1, 48))
        critic[1].weight /= critic[1].weight.norm()
    assert L.gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    with torch.no_grad():
        critic[1].weight *= 3.0  # slope 3: (3 - 1)^2 = 4
    gp = L.gradient_penalty(critic, real, fake)
    assert gp.item() == pytest.approx(4.0, rel=1e-5)
    gp.backward()  # double backward reaches the critic's weights
    assert critic[1].weight.grad.abs().sum() > 0


def test_gradient_reversal_and_domain_loss():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    y = L.grad_reverse(x, scale=0.5)
    assert torch.equal(y, x)
    (y * torch.tensor([3.0, 4.0])).sum().backward()
    assert x.grad.tolist() == [-1.5, -2.0]

    features = torch.randn(4, 5, requires_grad=True)
    classifier = nn.Linear(5, 1)
    logits = classifier(L.grad_reverse(features))
    loss = L.domain_adversarial_loss(logits[:2], logits[2:])
    loss.backward()
    plain = torch.autograd.grad(L.domain_adversarial_loss(*classifier(features).split(2)), features)[0]
    torch.testing.assert_close(features.grad, -plain)
