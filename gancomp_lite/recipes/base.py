"""The Recipe interface: what one training stage optimises, driven by the one Trainer.

A recipe owns named modules (generator "G", discriminator "D", adapters, a frozen identity net,
a frozen teacher, ...), their optimizers, schedulers and the mixed-precision scaler, and knows how
to do one training step (the D update(s) and the G update(s)). The Trainer owns everything else:
data, devices, DistributedDataParallel, logging, checkpoints, resume, the NaN guard.

Life cycle::

    recipe = Pix2PixRecipe(generator, discriminator, lambda_recon=100.0)   # modules registered
    recipe.setup("cpu", OptimConfig(lr=2e-4), total_steps=1000)            # device, optimizers, AMP
    recipe.wrap_ddp(lambda m: DistributedDataParallel(m))                  # optional, the Trainer does it
    metrics = recipe.train_step(batch, step)                               # floats for the log

Subclasses implement `configure_optimizers` and `train_step`. Inside `train_step` they call
modules through `self.run(name, *args, method=...)` (so DDP sees every forward, including
`forward_all`), compute losses under `with self.autocast():`, and update with
`self.optimize(loss, "G")`.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
from torch import nn


@dataclass(frozen=True)
class OptimConfig:
    """Adam settings shared by a recipe's optimizers, with GAN Compression's schedule.

    The learning rate is constant, then (if `decay_from` is set, a fraction of the total steps)
    decays linearly to 0 at the last step, as in pix2pix/GAN Compression (`nepochs` + `nepochs_decay`).
    """

    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    decay_from: float | None = None


class _Dispatch(nn.Module):
    """Calls any method of the wrapped module through ``forward``, so one DDP wrapper serves them all.

    DistributedDataParallel only synchronises gradients for calls that go through its ``forward``;
    ``forward_all``, ``features`` or ``encode`` called on ``ddp.module`` would silently skip it.
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.module, method)(*args, **kwargs)


class Recipe:
    """Base class of every training recipe (teacher, distillation, supernet, fine-tune).

    Attributes:
        name: short identifier written into checkpoint manifests; resume refuses another name.
        modules: every registered module by name (trainable and frozen).
        optimizers / schedulers: by name, built in `configure_optimizers`.
    """

    name = "recipe"
    # extra DistributedDataParallel options this recipe needs, e.g. {"find_unused_parameters": True}
    # when a step calls a module on a path that leaves some of its parameters without gradient
    ddp_options: dict[str, Any] = {}

    def __init__(self) -> None:
        self.modules: dict[str, nn.Module] = {}
        self.trainable: set[str] = set()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self._callers: dict[str, nn.Module] = {}
        self.device = torch.device("cpu")
        self.amp = False
        self.scaler = torch.amp.GradScaler("cpu", enabled=False)
        self.total_steps = 1

    # ----------------------------------------------------------------- registration
    def add_module(self, name: str, module: nn.Module, trainable: bool = True) -> nn.Module:
        """Register `module` under `name`; a frozen module is put in eval mode with requires_grad off."""
        if name in self.modules:
            raise ValueError(f"recipe {self.name!r}: module name {name!r} is already registered")
        self.modules[name] = module
        self._callers[name] = _Dispatch(module)
        if trainable:
            self.trainable.add(name)
        else:
            module.eval().requires_grad_(False)
        return module

    def raw(self, name: str) -> nn.Module:
        """The plain (never DDP-wrapped) module, for state dicts, evaluation, or double-backward terms.

        Gradient penalties (autograd.grad with create_graph) must call the critic through `raw`,
        inside the same loss as a `run` call of it, so DDP still reduces its gradients once.
        """
        try:
            return self.modules[name]
        except KeyError:
            raise KeyError(f"recipe {self.name!r} has no module {name!r}; it has {sorted(self.modules)}") from None

    def run(self, name: str, *args: Any, method: str = "forward", **kwargs: Any) -> Any:
        """Call ``module.<method>(*args, **kwargs)`` through the DDP wrapper when there is one."""
        if name not in self._callers:
            raise KeyError(f"recipe {self.name!r} has no module {name!r}; it has {sorted(self.modules)}")
        return self._callers[name](method, *args, **kwargs)

    def parameters(self, *names: str) -> list[nn.Parameter]:
        """Parameters of the named modules, for an optimizer; "G.encoder" names a submodule of "G"."""
        params = []
        for name in names:
            module_name, _, sub = name.partition(".")
            module = self.raw(module_name)
            params.extend((module.get_submodule(sub) if sub else module).parameters())
        return params

    # ----------------------------------------------------------------- set-up
    def setup(self, device: str | torch.device, optim: OptimConfig, total_steps: int, amp: bool = False) -> None:
        """Move modules to `device`, build optimizers/schedulers, enable AMP (CUDA only)."""
        self.device = torch.device(device)
        self.total_steps = max(int(total_steps), 1)
        for module in self.modules.values():
            module.to(self.device)
        self.amp = bool(amp) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        self.optimizers.clear()
        self.schedulers.clear()
        self.configure_optimizers(optim)
        self.train()

    def configure_optimizers(self, optim: OptimConfig) -> None:
        """Create the recipe's optimizers with `add_optimizer` (subclasses decide the groups)."""
        raise NotImplementedError(f"{type(self).__name__} must implement configure_optimizers")

    def add_optimizer(self, name: str, modules: Iterable[str], optim: OptimConfig, **overrides: Any) -> torch.optim.Optimizer:
        """Adam over the named modules' parameters, plus the linear-decay schedule of `optim`.

        `overrides` replace OptimConfig fields for this optimizer only (e.g. ``betas=(0.0, 0.9)``).
        """
        cfg = {**optim.__dict__, **overrides}
        params = self.parameters(*modules)
        if not params:
            raise ValueError(f"recipe {self.name!r}: optimizer {name!r} over {list(modules)} has no parameters")
        opt = torch.optim.Adam(params, lr=cfg["lr"], betas=tuple(cfg["betas"]), weight_decay=cfg["weight_decay"])
        self.optimizers[name] = opt
        self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(opt, self._decay_rule(cfg["decay_from"]))
        return opt

    def _decay_rule(self, decay_from: float | None) -> Callable[[int], float]:
        if decay_from is None:
            return _constant
        start = int(decay_from * self.total_steps)
        return _LinearDecay(start, self.total_steps)

    def wrap_ddp(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Wrap every trainable module's dispatcher with `wrap` (the Trainer passes a DDP factory)."""
        for name in sorted(self.trainable):
            self._callers[name] = wrap(_Dispatch(self.modules[name]))

    def unwrap_ddp(self) -> None:
        """Call the plain modules again (the Trainer does this when a distributed run ends)."""
        self._callers = {name: _Dispatch(module) for name, module in self.modules.items()}

    # ----------------------------------------------------------------- a step
    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        """One training step on `batch` (tensors already on `self.device`); return named loss values."""
        raise NotImplementedError(f"{type(self).__name__} must implement train_step")

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision (float16) on CUDA when AMP is on; a no-op otherwise."""
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.float16)

    def optimize(self, loss: torch.Tensor, *names: str, clip_grad_norm: float | None = None) -> None:
        """Zero the named optimizers' grads, back-propagate `loss` (scaled under AMP), step them."""
        opts = [self.optimizers[n] for n in names]
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        for opt in opts:
            if clip_grad_norm is not None:
                self.scaler.unscale_(opt)
                params = [p for group in opt.param_groups for p in group["params"]]
                torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
            self.scaler.step(opt)
        self.scaler.update()

    def step_schedulers(self) -> None:
        """Advance every learning-rate schedule by one training step (the Trainer calls this)."""
        for scheduler in self.schedulers.values():
            scheduler.step()

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything trainable: module weights, optimizers, schedulers, AMP scaler (frozen modules excluded)."""
        return {
            "modules": {n: self.raw(n).state_dict() for n in sorted(self.trainable)},
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved; call after `setup` so optimizers exist."""
        for group, have in (("modules", self.trainable), ("optimizers", self.optimizers), ("schedulers", self.schedulers)):
            saved = set(state.get(group, {}))
            if saved != set(have):
                raise ValueError(f"recipe {self.name!r}: checkpoint {group} {sorted(saved)} do not match this recipe's {sorted(have)}")
        for name, sd in state["modules"].items():
            self.raw(name).load_state_dict(sd)
        for name, sd in state["optimizers"].items():
            self.optimizers[name].load_state_dict(sd)
        for name, sd in state["schedulers"].items():
            self.schedulers[name].load_state_dict(sd)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    def manifest(self) -> dict[str, Any]:
        """Facts for the checkpoint manifest (subclasses add arch and config strings)."""
        return {"recipe": self.name, "modules": sorted(self.modules), "trainable": sorted(self.trainable)}

    def train(self) -> None:
        """Training mode for trainable modules; frozen ones stay in eval mode."""
        for name in self.trainable:
            self.raw(name).train()

    def eval(self) -> None:
        for module in self.modules.values():
            module.eval()


def _constant(step: int) -> float:
    return 1.0


class _LinearDecay:
    """lr factor 1 until `start`, then linearly down to 0 at `total` (a picklable LambdaLR rule)."""

    def __init__(self, start: int, total: int):
        self.start, self.total = start, total

    def __call__(self, step: int) -> float:
        if step < self.start:
            return 1.0
        return max(0.0, 1.0 - (step - self.start) / max(self.total - self.start, 1))
