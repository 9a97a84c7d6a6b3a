"""One Trainer for every stage (teacher, distillation, supernet, fine-tune).

The stage-specific part (which modules, which losses, how many D/G updates) is a `Recipe`
(`gancomp_lite.recipes.base`). The Trainer supplies the rest, identically for all stages:

- a seeded, resumable data order (a `DistributedSampler`, also with one process);
- CPU/GPU placement, mixed precision on GPU, DistributedDataParallel under ``torchrun``
  (gloo on CPU, NCCL on GPU);
- a tqdm progress bar (rank 0 only), a metrics log (``metrics.csv`` long format
  step,epoch,name,value and ``metrics.jsonl``), appended and trimmed on resume; the loss values not
  yet logged are checkpointed too, so a resumed run's log rows equal an uninterrupted run's;
- checkpoints ``last.pt`` + ``last.json`` (atomic, sha256 manifest) every `ckpt_every` steps and
  every `ckpt_minutes` of work, holding the recipe state, every rank's RNG states and the data
  position, so a resumed run continues bit-for-bit;
- a settings fingerprint in the checkpoint (the options that shape the result, the recipe's
  manifest, the modules' shapes, the data set's size and the caller's `fingerprint`): a resumed
  run whose settings differ is refused, naming the setting; ``resume=False`` starts afresh;
- a NaN/Inf guard: a non-finite loss stops the run with the term and the step named, and the
  last good checkpoint is left as it was;
- `stop_after` (steps) and `time_budget_s` so long runs can stop cleanly and be resumed.

Exact resume holds for ``num_workers=0`` (the default) or datasets without random augmentation.
"""
from __future__ import annotations

import csv
import hashlib
import inspect
import io
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from gancomp_lite.checkpoint import CheckpointError, atomic_write_bytes, load_checkpoint, save_checkpoint
from gancomp_lite.errors import check_range
from gancomp_lite.recipes.base import OptimConfig, Recipe
from gancomp_lite.seeding import seed_everything

CHECKPOINT_NAME = "last.pt"
CSV_HEADER = ["step", "epoch", "name", "value"]


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or Inf; the run stopped and the last good checkpoint was kept."""


@dataclass
class TrainConfig:
    """Everything the Trainer needs besides the recipe and the data. Give `steps` or `epochs`."""

    out_dir: str
    steps: int | None = None
    epochs: int | None = None
    batch_size: int = 8
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    decay_from: float | None = None       # fraction of the steps after which lr decays linearly to 0
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 100
    ckpt_minutes: float | None = 5.0      # also checkpoint after this much work since the last save
    amp: bool = True                      # used on CUDA only
    num_workers: int = 0
    device: str = "auto"                  # "auto" = cuda (this rank's GPU) if available, else cpu
    resume: bool = True                   # continue from out_dir/last.pt if it exists
    stop_after: int | None = None         # stop (and checkpoint) after this many steps in this call
    time_budget_s: float | None = None    # stop (and checkpoint) after this much wall time
    progress: bool = True
    fingerprint: dict[str, Any] = field(default_factory=dict)   # what else shapes the result (data, teacher)
    ddp_kwargs: dict[str, Any] = field(default_factory=lambda: _rank_local_buffers())

    def optim(self) -> OptimConfig:
        return OptimConfig(lr=self.lr, betas=tuple(self.betas), weight_decay=self.weight_decay, decay_from=self.decay_from)


@dataclass
class TrainResult:
    step: int                  # steps done in total
    finished: bool             # reached the configured number of steps
    checkpoint: Path           # the last checkpoint written
    metrics: dict[str, float]  # the last logged averages


def init_distributed() -> tuple[int, int]:
    """Join the process group if launched by torchrun (WORLD_SIZE > 1); return ``(rank, world_size)``.

    Uses NCCL when CUDA is available, gloo otherwise. A group that is already initialised
    (e.g. by a test with a file:// rendezvous) is used as is.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Trainer:
    """Drive `recipe.train_step` over `dataset` according to `config`.

    `collate_fn` builds a batch (a dict of tensors) from items; `on_log(step, metrics)` is called
    on rank 0 at every log step (notebooks use it for live loss curves).
    """

    def __init__(
        self,
        recipe: Recipe,
        dataset: Dataset,
        config: TrainConfig,
        collate_fn: Callable[[list], Any] | None = None,
        on_log: Callable[[int, dict[str, float]], None] | None = None,
    ):
        if (config.steps is None) == (config.epochs is None):
            raise ValueError(f"TrainConfig: give exactly one of steps ({config.steps}) and epochs ({config.epochs})")
        for name in ("steps", "epochs", "batch_size", "ckpt_every", "log_every"):
            check_range(f"TrainConfig.{name}", getattr(config, name), 1)
        check_range("TrainConfig.ckpt_minutes", config.ckpt_minutes, 0)
        self.recipe, self.dataset, self.config = recipe, dataset, config
        self.collate_fn, self.on_log = collate_fn, on_log
        self.rank, self.world = init_distributed()
        self.device = self._pick_device(config.device)
        self.out_dir = Path(config.out_dir)
        self.ckpt_path = self.out_dir / CHECKPOINT_NAME
        self.sampler = DistributedSampler(
            dataset, num_replicas=self.world, rank=self.rank, shuffle=True, seed=config.seed, drop_last=True
        )
        self.batches_per_epoch = len(self.sampler) // config.batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"dataset of {len(dataset)} items gives no full batch of {config.batch_size} per process "
                f"({self.world} processes); lower batch_size"
            )
        self.total_steps = config.steps if config.steps is not None else config.epochs * self.batches_per_epoch
        self.step = 0
        self.last_metrics: dict[str, float] = {}
        self._window: dict[str, list[float]] = {}   # loss values since the last log row (checkpointed)

    # ----------------------------------------------------------------- set-up
    def _pick_device(self, device: str) -> torch.device:
        if device != "auto":
            return torch.device(device)
        if torch.cuda.is_available():
            index = int(os.environ.get("LOCAL_RANK", self.rank % max(torch.cuda.device_count(), 1)))
            torch.cuda.set_device(index)
            return torch.device("cuda", index)
        return torch.device("cpu")

    def _prepare(self) -> None:
        cfg = self.config
        self.recipe.setup(self.device, cfg.optim(), self.total_steps, amp=cfg.amp)
        resumed = cfg.resume and self.ckpt_path.is_file()
        if resumed:
            self._load()
        else:
            seed_everything(cfg.seed + self.rank)
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # DDP broadcasts rank 0's weights at construction, so every rank starts equal.
            options = {**cfg.ddp_kwargs, **self.recipe.ddp_options}
            self.recipe.wrap_ddp(lambda m: DistributedDataParallel(m, device_ids=ids, **options))
        if self.rank == 0:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._trim_logs(self.step)

    # ----------------------------------------------------------------- the loop
    def fit(self) -> TrainResult:
        """Train until the configured steps, `stop_after` or the time budget; checkpoint; return a summary."""
        self._prepare()
        cfg = self.config
        start_step, started = self.step, time.monotonic()
        self._saved_at = started
        bar = tqdm(total=self.total_steps, initial=self.step, desc=self.recipe.name,
                   disable=not cfg.progress or self.rank != 0, dynamic_ncols=True)
        stop = False
        try:
            while self.step < self.total_steps and not stop:
                epoch, offset = divmod(self.step, self.batches_per_epoch)
                for batch in self._loader(epoch, offset):
                    metrics = self.recipe.train_step(self._to_device(batch), self.step)
                    self._guard(metrics)
                    self.recipe.step_schedulers()
                    self.step += 1
                    bar.update(1)
                    for key, value in metrics.items():
                        self._window.setdefault(key, []).append(float(value))
                    if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                        self._log(self._window, epoch)
                        bar.set_postfix({k: f"{v:.3g}" for k, v in list(self.last_metrics.items())[:4]})
                        self._window = {}
                    if self.step % cfg.ckpt_every == 0 or self._save_due():
                        self.save()
                    stop = self._should_stop(start_step, started)
                    if stop or self.step >= self.total_steps:
                        break
        finally:
            bar.close()
            if self.world > 1:
                self.recipe.unwrap_ddp()
        if self._window:
            self._log(self._window, (self.step - 1) // self.batches_per_epoch)
            self._window = {}
        self.save()
        return TrainResult(self.step, self.step >= self.total_steps, self.ckpt_path, dict(self.last_metrics))

    def _loader(self, epoch: int, offset: int) -> DataLoader:
        """Batches of `epoch` from batch `offset` on: the same order whether resumed or not."""
        self.sampler.set_epoch(epoch)
        indices = list(self.sampler)[offset * self.config.batch_size:]
        generator = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        return DataLoader(
            self.dataset, batch_size=self.config.batch_size, sampler=indices, drop_last=True,
            num_workers=self.config.num_workers, collate_fn=self.collate_fn, generator=generator,
            pin_memory=self.device.type == "cuda",
        )

    def _to_device(self, batch: Any) -> Any:
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, dict):
            return {k: self._to_device(v) for k, v in batch.items()}
        if isinstance(batch, (list, tuple)):
            return type(batch)(self._to_device(v) for v in batch)
        return batch

    def _should_stop(self, start_step: int, started: float) -> bool:
        cfg = self.config
        stop = cfg.stop_after is not None and self.step - start_step >= cfg.stop_after
        stop = stop or (cfg.time_budget_s is not None and time.monotonic() - started >= cfg.time_budget_s)
        if self.world > 1:  # every rank must stop at the same step
            flag = torch.tensor([float(stop)], device=self._comm_device())
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    def _save_due(self) -> bool:
        """`ckpt_minutes` of work since the last save (decided on rank 0's clock, for every rank)."""
        minutes = self.config.ckpt_minutes
        due = minutes is not None and time.monotonic() - self._saved_at >= 60 * minutes
        if self.world > 1 and minutes is not None:
            flag = torch.tensor([float(due)], device=self._comm_device())
            dist.broadcast(flag, 0)
            due = bool(flag.item())
        return due

    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    # ----------------------------------------------------------------- NaN guard
    def _guard(self, metrics: dict[str, float]) -> None:
        bad = [(k, float(v)) for k, v in metrics.items() if not math.isfinite(float(v))]
        if self.world > 1:  # a NaN on one rank stops all ranks
            flag = torch.tensor([float(bool(bad))], device=self._comm_device())
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            if flag.item() and not bad:
                bad = [("(another rank)", float("nan"))]
        if bad:
            terms = ", ".join(f"{k}={v}" for k, v in bad)
            kept = f"the last good checkpoint {self.ckpt_path} is kept unchanged" if self.ckpt_path.is_file() else "no checkpoint was written"
            raise NonFiniteLossError(
                f"recipe {self.recipe.name!r}: non-finite loss at step {self.step} ({terms}); "
                f"training stopped and {kept}. Lower the learning rate or check the data."
            )

    # ----------------------------------------------------------------- logging
    def _log(self, window: dict[str, list[float]], epoch: int) -> None:
        means = {k: sum(v) / len(v) for k, v in window.items()}
        if self.world > 1:
            keys = sorted(means)
            values = torch.tensor([means[k] for k in keys], dtype=torch.float64, device=self._comm_device())
            dist.all_reduce(values)
            means = {k: float(v) / self.world for k, v in zip(keys, values.tolist())}
        self.last_metrics = means
        if self.rank != 0:
            return
        with open(self.out_dir / "metrics.csv", "a", newline="") as handle:
            writer = csv.writer(handle)
            if handle.tell() == 0:
                writer.writerow(CSV_HEADER)
            writer.writerows([self.step, epoch, k, repr(v)] for k, v in means.items())
        with open(self.out_dir / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps({"step": self.step, "epoch": epoch, **means}) + "\n")
        if self.on_log is not None:
            self.on_log(self.step, means)

    def _trim_logs(self, step: int) -> None:
        """Drop log rows after `step` (written after the checkpoint we resume from; they will be redone) and
        rows cut short by a kill; each log is rewritten atomically."""
        csv_path, jsonl_path = self.out_dir / "metrics.csv", self.out_dir / "metrics.jsonl"
        if csv_path.is_file():
            with open(csv_path, newline="") as handle:
                rows = list(csv.reader(handle))
            kept = [CSV_HEADER] + [r for r in rows[1:] if _csv_step(r) <= step] if rows[:1] == [CSV_HEADER] else []
            text = io.StringIO()
            csv.writer(text).writerows(kept)
            atomic_write_bytes(csv_path, text.getvalue().encode())
        if jsonl_path.is_file():
            lines = [l for l in jsonl_path.read_text().splitlines() if _jsonl_step(l) <= step]
            atomic_write_bytes(jsonl_path, "".join(l + "\n" for l in lines).encode())

    # ----------------------------------------------------------------- checkpoints
    def save(self) -> Path:
        """Write ``last.pt``/``last.json`` atomically (rank 0), with every rank's RNG states and the loss
        values it has not logged yet (so the first log row after a resume averages the same steps)."""
        self._average_buffers()
        local = {"rng": _rng_state(), "window": self._window}
        if self.world > 1:
            states: list[Any] = [None] * self.world
            dist.all_gather_object(states, local)
        else:
            states = [local]
        if self.rank == 0:
            state = {
                "recipe": self.recipe.state_dict(),
                "trainer": {"step": self.step, "rng": [s["rng"] for s in states],
                            "window": [s["window"] for s in states]},
            }
            manifest = {
                **self.recipe.manifest(),
                "step": self.step,
                "total_steps": self.total_steps,
                "seed": self.config.seed,
                "batch_size": self.config.batch_size,
                "world_size": self.world,
                "metrics": self.last_metrics,
                "config": _jsonable(asdict(self.config)),
                "settings": self.settings(),
            }
            save_checkpoint(self.ckpt_path, state, manifest)
        if self.world > 1:
            dist.barrier()
        self._saved_at = time.monotonic()
        return self.ckpt_path

    def settings(self) -> dict[str, Any]:
        """Everything that shapes the result; a run resumes only a checkpoint with the same settings."""
        cfg = self.config
        shapes = {name: sorted((k, list(v.shape)) for k, v in self.recipe.raw(name).state_dict().items())
                  for name in sorted(self.recipe.modules)}
        settings = {
            "total_steps": self.total_steps, "batch_size": cfg.batch_size, "seed": cfg.seed, "world_size": self.world,
            "lr": cfg.lr, "betas": cfg.betas, "weight_decay": cfg.weight_decay, "decay_from": cfg.decay_from,
            "amp": cfg.amp and self.device.type == "cuda", "dataset_size": len(self.dataset),
            "recipe": self.recipe.manifest(), "fingerprint": cfg.fingerprint,
            "shapes": {name: hashlib.sha256(json.dumps(s).encode()).hexdigest()[:16] for name, s in shapes.items()},
        }
        return json.loads(json.dumps(_jsonable(settings)))

    def _load(self) -> None:
        expect = {"recipe": self.recipe.name, "seed": self.config.seed,
                  "batch_size": self.config.batch_size, "world_size": self.world}
        state, manifest = load_checkpoint(self.ckpt_path, expect=expect)
        if "settings" in manifest:
            changed = _differences(manifest["settings"], self.settings())
            if changed:
                raise CheckpointError(
                    f"{self.ckpt_path}: this run's settings differ from the checkpoint it would resume: "
                    f"{'; '.join(changed[:5])}. Resuming would mix two runs: keep the checkpoint's settings, "
                    "use a new output folder, or start afresh (resume=False, --fresh)")
        if manifest.get("total_steps") != self.total_steps:
            raise CheckpointError(
                f"{self.ckpt_path}: written for {manifest.get('total_steps')} total steps, this run has "
                f"{self.total_steps}; the learning-rate schedule would not match (use a new out_dir)"
            )
        self.recipe.load_state_dict(state["recipe"])
        self.step = int(state["trainer"]["step"])
        _set_rng_state(state["trainer"]["rng"][self.rank])
        windows = state["trainer"].get("window") or [{}] * self.world    # none in checkpoints of older versions
        self._window = {k: [float(x) for x in v] for k, v in windows[self.rank].items()}
        self.last_metrics = dict(manifest.get("metrics", {}))

    def _average_buffers(self) -> None:
        """With broadcast_buffers off, BatchNorm statistics drift apart per rank: average them before saving."""
        if self.world == 1:
            return
        for name in sorted(self.recipe.trainable):
            for buffer in self.recipe.raw(name).buffers():
                if buffer.is_floating_point():
                    dist.all_reduce(buffer)
                    buffer.div_(self.world)


def _csv_step(row: list[str]) -> float:
    """The step of a metrics.csv row; infinity for a row cut short by a kill."""
    try:
        float(row[3])
        return int(row[0]) if len(row) == len(CSV_HEADER) else math.inf
    except (IndexError, ValueError):
        return math.inf


def _jsonl_step(line: str) -> float:
    """The step of a metrics.jsonl line; infinity for a line cut short by a kill."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return math.inf


def _rank_local_buffers() -> dict[str, bool]:
    """DDP option to keep BatchNorm statistics per rank between checkpoints.

    Re-broadcasting buffers on each forward breaks GAN steps that call D several times before
    one backward (an in-place update of a saved tensor); the Trainer averages them at each save.
    The option was renamed in recent torch.
    """
    params = inspect.signature(DistributedDataParallel.__init__).parameters
    return {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}


def _rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) RNG states as tensors and plain values (weights_only-safe)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": _to_lists(random.getstate()),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, tuple) else value


def _differences(saved: Any, current: Any, key: str = "") -> list[str]:
    """``"name: <checkpoint> in the checkpoint, <current> now"`` for every leaf that differs."""
    if isinstance(saved, dict) and isinstance(current, dict):
        return [d for k in sorted(set(saved) | set(current), key=str)
                for d in _differences(saved.get(k), current.get(k), f"{key}.{k}" if key else str(k))]
    if saved == current:
        return []
    return [f"{key}={saved!r} in the checkpoint, {current!r} now"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, (int, float, str, bool, type(None))) else repr(value)


def run_training(recipe: Recipe, dataset: Dataset, config: TrainConfig, **kwargs: Any) -> TrainResult:
    """Shorthand: ``Trainer(recipe, dataset, config, **kwargs).fit()``."""
    return Trainer(recipe, dataset, config, **kwargs).fit()


__all__: Sequence[str] = ("TrainConfig", "TrainResult", "Trainer", "NonFiniteLossError", "init_distributed", "run_training")
