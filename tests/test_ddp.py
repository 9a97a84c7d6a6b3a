"""DistributedDataParallel on 2 CPU processes (gloo, file rendezvous): ranks stay identical and grads really average."""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from gancomp_lite.losses import discriminator_loss, generator_loss, gradient_penalty
from gancomp_lite.recipes.base import OptimConfig, Recipe
from gancomp_lite.train import TrainConfig, Trainer
from test_train import SIZE, PairDataset, make_recipe

WORLD = 2


class LinearRegression(Recipe):
    """Deterministic least squares (no noise, no BatchNorm): DDP over 2x2 samples must equal 1x4 samples."""

    name = "linreg"

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.add_module("G", nn.Linear(3 * SIZE * SIZE, 3))

    def configure_optimizers(self, optim: OptimConfig) -> None:
        self.add_optimizer("G", ["G"], optim)

    def train_step(self, batch, step):
        pred = self.run("G", batch["profile"].flatten(1))
        loss = (pred - batch["frontal"][:, :, 0, 0]).pow(2).mean()
        self.optimize(loss, "G")
        return {"loss": loss.item()}


class TinyWGANGP(Recipe):
    """A critic step with a gradient penalty (double backward) through DDP, as CR-GAN's recipe will do."""

    name = "wgan-gp"

    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)  # different per rank: DDP must broadcast rank 0's weights
        self.add_module("G", nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Tanh()))
        self.add_module("D", nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.LazyLinear(1)))

    def configure_optimizers(self, optim: OptimConfig) -> None:
        self.add_optimizer("G", ["G"], optim, betas=(0.0, 0.9))
        self.add_optimizer("D", ["D"], optim, betas=(0.0, 0.9))

    def train_step(self, batch, step):
        real = batch["frontal"]
        fake = self.run("G", batch["profile"])
        gp = gradient_penalty(self.raw("D"), real, fake)
        loss_d = discriminator_loss(self.run("D", real), self.run("D", fake.detach()), "wgan") + 10.0 * gp
        self.optimize(loss_d, "D")
        loss_g = generator_loss(self.run("D", fake), "wgan")
        self.optimize(loss_g, "G")
        return {"loss_D": loss_d.item(), "loss_G": loss_g.item(), "gp": gp.item()}


def _worker(rank: int, root: str) -> None:
    torch.set_num_threads(1)  # 2 processes on a 2-core machine
    dist.init_process_group("gloo", init_method=f"file://{root}/rendezvous", rank=rank, world_size=WORLD)
    try:
        common = dict(batch_size=2, seed=7, log_every=2, ckpt_every=100, progress=False, lr=1e-2)
        recipes = {"pix2pix": make_recipe(), "linreg": LinearRegression(), "wgan": TinyWGANGP(seed=rank)}
        recipes["wgan"].raw("D")(torch.zeros(1, 3, SIZE, SIZE))  # materialise the lazy layer before DDP
        for name, recipe in recipes.items():
            Trainer(recipe, PairDataset(8), TrainConfig(out_dir=f"{root}/{name}", steps=4, **common)).fit()
            state = {f"{m}.{k}": v for m in sorted(recipe.trainable) for k, v in recipe.raw(m).state_dict().items()}
            torch.save(state, f"{root}/{name}_rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_cpu_ranks_hold_identical_weights(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path),), nprocs=WORLD, join=True)
    for name in ("pix2pix", "linreg", "wgan"):
        rank0 = torch.load(tmp_path / f"{name}_rank0.pt", weights_only=True)
        rank1 = torch.load(tmp_path / f"{name}_rank1.pt", weights_only=True)
        assert rank0.keys() == rank1.keys()
        for key in rank0:  # parameters and (averaged) BatchNorm buffers alike
            assert torch.equal(rank0[key], rank1[key]), f"{name}: {key} differs between ranks"
        assert (tmp_path / name / "last.pt").is_file() and (tmp_path / name / "metrics.csv").is_file()

    # gradients were averaged, not just broadcast: 2 ranks x 2 samples == 1 process x 4 samples
    single = LinearRegression()
    Trainer(single, PairDataset(8), TrainConfig(out_dir=str(tmp_path / "single"), steps=4, batch_size=4, seed=7,
                                               progress=False, lr=1e-2)).fit()
    ddp = torch.load(tmp_path / "linreg_rank0.pt", weights_only=True)
    assert not torch.equal(ddp["G.weight"], LinearRegression().raw("G").weight.detach())
    torch.testing.assert_close(ddp["G.weight"], single.raw("G").weight.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ddp["G.bias"], single.raw("G").bias.detach(), rtol=1e-5, atol=1e-6)
