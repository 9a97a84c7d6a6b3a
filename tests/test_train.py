"""The one Trainer and the recipe interface: exact resume, NaN guard, logs, schedules, pix2pix + distillation."""
from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from torch import nn

from gancomp_lite.checkpoint import CheckpointError, load_checkpoint, sha256_file
from gancomp_lite.distill import build_adapters
from gancomp_lite.recipes.base import OptimConfig, Recipe
from gancomp_lite.recipes.pix2pix import Pix2PixRecipe
from gancomp_lite.train import NonFiniteLossError, TrainConfig, Trainer

SIZE = 16


class TinyGenerator(nn.Module):
    """A two-conv frontalizer with the generator contract: forward, forward_all, a "feat:" tap, and noise."""

    def __init__(self, width: int = 8, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.enc = nn.Conv2d(3, width, 3, padding=1)
        self.dec = nn.Conv2d(width, 3, 3, padding=1)

    def forward_all(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feat = torch.relu(self.enc(x))
        noise = 0.01 * torch.randn_like(feat)  # draws from the global RNG, so resume must restore it
        return {"image": torch.tanh(self.dec(feat + noise)), "feat:enc": feat}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)["image"]


class TinyPatchD(nn.Module):
    """Conditional PatchGAN stand-in (6 input channels), with BatchNorm so buffers are exercised."""

    def __init__(self, seed: int = 1):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Conv2d(6, 8, 4, 2, 1), nn.BatchNorm2d(8), nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PairDataset(torch.utils.data.Dataset):
    """Deterministic synthetic (profile, frontal) pairs, the batch layout of data_tools.dataset."""

    def __init__(self, n: int = 10):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(1000 + i)
        frontal = torch.rand(3, SIZE, SIZE, generator=g) * 2 - 1
        return {"profile": frontal.roll(1, dims=-1), "frontal": frontal, "identity": torch.tensor(i % 3)}


def make_recipe(**kwargs) -> Pix2PixRecipe:
    return Pix2PixRecipe(TinyGenerator(), TinyPatchD(), gan_mode="lsgan", lambda_recon=10.0, **kwargs)


def config(tmp_path, **overrides) -> TrainConfig:
    base = dict(out_dir=str(tmp_path), steps=6, batch_size=4, lr=1e-3, seed=3, log_every=1, ckpt_every=2,
                decay_from=0.5, progress=False)
    return TrainConfig(**{**base, **overrides})


def full_state(recipe: Recipe) -> dict:
    return {"G": recipe.raw("G").state_dict(), "D": recipe.raw("D").state_dict(),
            "optG": recipe.optimizers["G"].state_dict()["state"], "lr": recipe.optimizers["G"].param_groups[0]["lr"]}


def assert_same(a, b, where="state") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{where} differs"
    else:
        assert a == b, f"{where}: {a} != {b}"


def test_exact_resume_matches_straight_run(tmp_path):
    straight = make_recipe()
    result = Trainer(straight, PairDataset(), config(tmp_path / "a")).fit()
    assert result.finished and result.step == 6

    first = make_recipe()
    stopped = Trainer(first, PairDataset(), config(tmp_path / "b", stop_after=3)).fit()
    assert not stopped.finished and stopped.step == 3
    torch.manual_seed(12345)  # disturb the RNG: resume must restore it
    resumed = make_recipe()
    result = Trainer(resumed, PairDataset(), config(tmp_path / "b")).fit()
    assert result.finished and result.step == 6

    assert_same(full_state(straight), full_state(resumed))
    assert not torch.equal(straight.raw("G").enc.weight, TinyGenerator().enc.weight)  # it did train
    assert (tmp_path / "a" / "metrics.csv").read_text() == (tmp_path / "b" / "metrics.csv").read_text()
    assert (tmp_path / "a" / "metrics.jsonl").read_text() == (tmp_path / "b" / "metrics.jsonl").read_text()


def test_resume_refuses_a_different_seed(tmp_path):
    Trainer(make_recipe(), PairDataset(), config(tmp_path, steps=2)).fit()
    with pytest.raises(CheckpointError, match="seed"):
        Trainer(make_recipe(), PairDataset(), config(tmp_path, steps=2, seed=4)).fit()


class NaNAtStep(Recipe):
    """Learns a linear map; at step `bad_step` it corrupts its weights and reports a NaN loss."""

    name = "nan-test"

    def __init__(self, bad_step: int):
        super().__init__()
        torch.manual_seed(0)
        self.bad_step = bad_step
        self.add_module("G", nn.Linear(3 * SIZE * SIZE, 1))

    def configure_optimizers(self, optim: OptimConfig) -> None:
        self.add_optimizer("G", ["G"], optim)

    def train_step(self, batch, step):
        loss = self.run("G", batch["profile"].flatten(1)).pow(2).mean()
        self.optimize(loss, "G")
        if step == self.bad_step:
            with torch.no_grad():
                self.raw("G").weight.fill_(float("nan"))
            return {"loss_fine": 1.0, "loss_G_recon": float("nan")}
        return {"loss_fine": loss.item(), "loss_G_recon": loss.item()}


def test_nan_guard_names_term_and_step_and_keeps_last_checkpoint(tmp_path):
    cfg = config(tmp_path, steps=10, ckpt_every=2)
    with pytest.raises(NonFiniteLossError, match=r"step 5 \(loss_G_recon=nan\).*last good checkpoint") as err:
        Trainer(NaNAtStep(bad_step=5), PairDataset(), cfg).fit()
    assert "loss_fine" not in str(err.value)
    state, manifest = load_checkpoint(tmp_path / "last.pt")  # hash still valid
    assert manifest["step"] == 4
    assert torch.isfinite(state["recipe"]["modules"]["G"]["weight"]).all()
    digest = sha256_file(tmp_path / "last.pt")
    # resuming from the intact checkpoint repeats step 5 and fails the same way, leaving it untouched
    with pytest.raises(NonFiniteLossError, match="step 5"):
        Trainer(NaNAtStep(bad_step=5), PairDataset(), cfg).fit()
    assert sha256_file(tmp_path / "last.pt") == digest


def test_epochs_logs_callback_and_time_budget(tmp_path):
    seen = []
    trainer = Trainer(make_recipe(), PairDataset(10), config(tmp_path, steps=None, epochs=2, log_every=3, ckpt_every=100),
                      on_log=lambda step, metrics: seen.append(step))
    result = trainer.fit()
    assert trainer.batches_per_epoch == 2 and result.step == 4 and result.finished
    assert seen == [3, 4]  # every log_every steps, and the last step
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert {r["name"] for r in rows} == {"loss_D", "loss_G_gan", "loss_G_recon", "loss_G"}
    assert [int(r["epoch"]) for r in rows if r["name"] == "loss_G"] == [1, 1]
    last = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 4 and math.isclose(last["loss_G"], result.metrics["loss_G"])
    _, manifest = load_checkpoint(tmp_path / "last.pt")
    assert manifest["recipe"] == "pix2pix" and manifest["step"] == 4 and manifest["gan_mode"] == "lsgan"

    budget = Trainer(make_recipe(), PairDataset(), config(tmp_path / "budget", steps=50, time_budget_s=0.0)).fit()
    assert budget.step == 1 and not budget.finished
    assert load_checkpoint(budget.checkpoint)[1]["step"] == 1


def test_config_errors(tmp_path):
    with pytest.raises(ValueError, match="exactly one of steps"):
        Trainer(make_recipe(), PairDataset(), config(tmp_path, steps=3, epochs=1))
    with pytest.raises(ValueError, match="no full batch"):
        Trainer(make_recipe(), PairDataset(3), config(tmp_path, batch_size=4))


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")
def test_linear_decay_schedule():
    recipe = make_recipe()
    recipe.setup("cpu", OptimConfig(lr=1.0, decay_from=0.5), total_steps=10)
    lrs = []
    for _ in range(10):
        lrs.append(recipe.optimizers["G"].param_groups[0]["lr"])
        recipe.step_schedulers()
    assert lrs[:5] == [1.0] * 5
    assert lrs[5:] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])
    assert recipe.optimizers["G"].param_groups[0]["lr"] == pytest.approx(0.0)


def test_recipe_state_round_trip_and_mismatch():
    recipe = make_recipe()
    recipe.setup("cpu", OptimConfig(), total_steps=4)
    batch = PairDataset()[0]
    recipe.train_step({k: v.unsqueeze(0).repeat(2, *[1] * v.dim()) for k, v in batch.items()}, 0)
    other = make_recipe()
    other.setup("cpu", OptimConfig(), total_steps=4)
    other.load_state_dict(recipe.state_dict())
    assert_same(full_state(recipe), full_state(other))
    with pytest.raises(ValueError, match="modules"):
        NaNAtStep(1).load_state_dict(recipe.state_dict())
    with pytest.raises(KeyError, match="no module 'X'"):
        recipe.run("X", batch["profile"])


def test_pix2pix_reduces_reconstruction_error(tmp_path):
    recipe = make_recipe()
    result = Trainer(recipe, PairDataset(8), config(tmp_path, steps=40, lr=3e-3, decay_from=None, log_every=5, ckpt_every=40)).fit()
    rows = [r for r in csv.DictReader((tmp_path / "metrics.csv").open()) if r["name"] == "loss_G_recon"]
    assert float(rows[-1]["value"]) < 0.7 * float(rows[0]["value"])
    assert result.finished


def test_pix2pix_distillation_trains_adapters_not_teacher(tmp_path):
    teacher, student = TinyGenerator(width=12, seed=5), TinyGenerator(width=4, seed=6)
    adapters = build_adapters(student, teacher, PairDataset()[0]["profile"][None])
    assert adapters["enc"].weight.shape == (12, 4, 1, 1)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    adapter_before = adapters["enc"].weight.detach().clone()
    recipe = Pix2PixRecipe(student, TinyPatchD(), teacher=teacher, adapters=adapters, lambda_distill=5.0)
    result = Trainer(recipe, PairDataset(), config(tmp_path, steps=3)).fit()
    assert "loss_G_distill" in result.metrics and result.metrics["loss_G_distill"] > 0
    assert not torch.equal(adapters["enc"].weight, adapter_before)
    assert_same(teacher.state_dict(), teacher_before, "teacher")
    state, manifest = load_checkpoint(result.checkpoint)
    assert set(state["recipe"]["modules"]) == {"A", "D", "G"}  # the frozen teacher is not saved
    assert manifest["taps"] == ["enc"]
    with pytest.raises(ValueError, match="both a teacher and its adapters"):
        Pix2PixRecipe(student, TinyPatchD(), teacher=teacher)



def test_identity_preserving_term_trains_g_and_leaves_the_identity_net_frozen(tmp_path):
    from gancomp_lite.models.lightcnn import LightCNN

    identity = LightCNN("9", num_classes=3, width=0.125, input_size=SIZE).eval().requires_grad_(False)
    identity_before = {k: v.clone() for k, v in identity.state_dict().items()}
    recipe = make_recipe(identity_net=identity, lambda_identity=2.0)
    batch = torch.utils.data.default_collate([PairDataset()[i] for i in range(4)])
    recipe.setup("cpu", OptimConfig(lr=1e-3), total_steps=2)
    torch.manual_seed(7)                                   # TinyGenerator draws noise: same draw in both calls
    expected = 2.0 * recipe._identity_loss(recipe.raw("G")(batch["profile"]), batch["frontal"]).item()
    torch.manual_seed(7)
    metrics = recipe.train_step(batch, 0)
    assert metrics["loss_G_ip"] == pytest.approx(expected, rel=1e-5) and expected > 0
    assert metrics["loss_G"] == pytest.approx(metrics["loss_G_gan"] + 10.0 * metrics["loss_G_recon"]
                                              + metrics["loss_G_ip"], rel=1e-5)   # ip is logged weighted
    assert_same(identity.state_dict(), identity_before, "identity net")
    result = Trainer(make_recipe(identity_net=identity), PairDataset(), config(tmp_path, steps=2)).fit()
    state, manifest = load_checkpoint(result.checkpoint)
    assert "I" not in state["recipe"]["modules"] and manifest["lambda_identity"] == 3e-3
    assert load_checkpoint(Trainer(make_recipe(), PairDataset(), config(tmp_path / "plain", steps=1)).fit()
                           .checkpoint)[1]["lambda_identity"] is None

def test_mixed_precision_path_with_grad_scaler():
    """The AMP branch (float16 autocast + GradScaler) normally runs on CUDA; force it on CPU to exercise it."""
    recipe = make_recipe()
    recipe.setup("cpu", OptimConfig(lr=1e-3), total_steps=4)
    recipe.amp, recipe.scaler = True, torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    batch = torch.utils.data.default_collate([PairDataset()[i] for i in range(4)])
    with recipe.autocast():
        assert recipe.run("G", batch["profile"]).dtype == torch.float16
    before = recipe.raw("G").dec.weight.detach().clone()
    metrics = recipe.train_step(batch, 0)
    assert all(math.isfinite(v) for v in metrics.values())
    assert not torch.equal(before, recipe.raw("G").dec.weight)
    assert recipe.state_dict()["scaler"]["scale"] == 2.0 ** 10

    # clipping unscales first: the applied gradient norm is the clip value, not the scaled one
    loss = recipe.run("G", batch["profile"]).float().pow(2).sum() * 1e3
    recipe.optimize(loss, "G", clip_grad_norm=1e-3)
    grads = [p.grad for p in recipe.parameters("G") if p.grad is not None]
    assert torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item() == pytest.approx(1e-3, rel=1e-2)


def test_optimizer_over_a_submodule():
    recipe = make_recipe()
    assert recipe.parameters("G.enc") == list(recipe.raw("G").enc.parameters())
    with pytest.raises(AttributeError):
        recipe.parameters("G.nothing")
