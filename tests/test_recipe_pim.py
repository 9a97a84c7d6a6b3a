"""PIM recipe: one joint step updates the FFN, the image D, the domain classifier and the DLN."""
from __future__ import annotations

import pytest
import torch

from gancomp_lite.losses import domain_adversarial_loss, grad_reverse
from gancomp_lite.models import pim
from gancomp_lite.models.discriminator import TPGANDiscriminator
from gancomp_lite.models.lightcnn import LightCNN
from gancomp_lite.models.tpgan import part_boxes
from gancomp_lite.recipes.base import OptimConfig
from gancomp_lite.recipes.pim import PIMRecipe


def _batch(n: int = 2, size: int = 64) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    boxes = torch.tensor([[list(part_boxes(size)[p]) for p in pim.PARTS]] * n)
    return {
        "profile": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
        "frontal": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
        "yaw": torch.tensor([45, -90][:n]),
        "identity": torch.tensor([0, 2][:n]),
        "patch_boxes": boxes,
    }


def _recipe() -> PIMRecipe:
    torch.manual_seed(0)
    gen = pim.build(None, 64, base=8)
    return PIMRecipe(gen, TPGANDiscriminator(ndf=8, size=64), LightCNN("9", num_classes=3, width=0.125, input_size=64,
                                                                        feature_dim=16))


def test_two_steps_update_every_agent():
    recipe = _recipe()
    recipe.setup("cpu", OptimConfig(lr=1e-3), total_steps=2)
    before = {name: [p.detach().clone() for p in recipe.raw(name).parameters()] for name in "GDCR"}
    for step in range(2):
        metrics = recipe.train_step(_batch(), step)
        assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values()), metrics
    for name, params in before.items():
        assert any(not torch.equal(b, p) for b, p in zip(params, recipe.raw(name).parameters())), name
    assert metrics["domain"] > 0 and metrics["local"] > 0


def test_domain_term_reverses_the_encoder_gradient():
    """C descends the domain loss while the FFN's encoder ascends it (gradient reversal)."""
    recipe = _recipe()
    gen, domain = recipe.raw("G"), recipe.raw("C")
    x, y = _batch()["profile"], _batch()["frontal"]
    out = gen.forward_pair(x, y)
    feats = torch.cat([out["frontal_identity_feature"], out["identity_feature"]])
    grad_reversed = torch.autograd.grad(domain_adversarial_loss(*domain(grad_reverse(feats)).chunk(2)), gen.pathway.fc.weight,
                                        retain_graph=True)[0]
    grad_plain = torch.autograd.grad(domain_adversarial_loss(*domain(feats).chunk(2)), gen.pathway.fc.weight)[0]
    torch.testing.assert_close(grad_reversed, -grad_plain)


def test_missing_boxes_and_mismatched_domain_classifier_are_refused():
    recipe = _recipe()
    recipe.setup("cpu", OptimConfig(), total_steps=1)
    batch = _batch()
    del batch["patch_boxes"]
    with pytest.raises(KeyError, match="patch_boxes"):
        recipe.train_step(batch, 0)
    with pytest.raises(ValueError, match="32"):
        PIMRecipe(pim.build(None, 64, base=8), TPGANDiscriminator(ndf=8, size=64),
                  LightCNN("9", num_classes=3, width=0.125, input_size=64), pim.DomainClassifier(feature_dim=16))
