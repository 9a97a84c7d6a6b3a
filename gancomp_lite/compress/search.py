"""Search the supernet for the best sub-network under a cost budget (GAN Compression section 3.3).

Every candidate is scored straight from the trained supernet, with no retraining: set its widths,
re-estimate BatchNorm statistics when the family has them, frontalize the validation identities
(never the test identities), and measure one metric. Three strategies share that scorer:

- ``exhaustive``: every config under the budget (small spaces only);
- ``random``: uniform samples under the budget;
- ``evolution``: a population under the budget; each generation keeps the best, fills up with
  mutations (each group re-drawn with probability `mutation`) and uniform crossovers of two parents.

Costs come from a callable (the analytic MACs of `gancomp_lite.cost` by default, or a latency
predictor for a hardware-aware search); what does not change between candidates is computed once:
the validation batches on the device, the gallery's identity features and the real faces' features.
Same seed, same candidates, same result: so a search killed midway resumes from the scores it saved
as it went (`scores_path`) and ends as an uninterrupted one would, without rescoring them.
"""
from __future__ import annotations

import itertools
import json
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from gancomp_lite.checkpoint import atomic_write_bytes
from gancomp_lite.compress.supernet import recalibrate_bn, uses_batchnorm
from gancomp_lite.evaluate import NonFiniteError, _pixel_scores, frechet_distance, frontalize_batch, rank1_by_yaw
from gancomp_lite.models.lightcnn import to_identity_input
from gancomp_lite.nn.elastic import set_active
from gancomp_lite.space import ChannelSpace

STRATEGIES = ("evolution", "random", "exhaustive")
# metric -> True when higher is better
METRICS: dict[str, bool] = {"l1": False, "ssim": True, "rank1": True, "id_fid": False}
EXHAUSTIVE_LIMIT = 20_000


class SearchError(ValueError):
    """The search cannot run as asked (budget outside the space's range, unknown metric, space too large)."""


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise SearchError(f"unknown search metric {metric!r}; choose one of {list(METRICS)}")


def better(metric: str, a: float, b: float) -> bool:
    """True when score `a` beats `b` under `metric`."""
    return a > b if METRICS[metric] else a < b


# ----------------------------------------------------------------------------- scoring candidates
class CandidateScorer:
    """Scores sub-networks of a supernet on a fixed validation set; everything reusable is cached.

    `dataset` items are FaceDataset samples; `gallery` the frontal gallery of the same identities
    (rank-1 and ID-FID need `identity_net`). The cached batches live on `device`: by default the
    supernet's own (where the Trainer left it, a GPU when there is one); `identity_net` is moved there.
    """

    def __init__(self, supernet: nn.Module, space: ChannelSpace, dataset: Dataset, *, identity_net: nn.Module | None,
                 gallery: Dataset | None = None, batch_size: int = 64, calibration_batches: int = 2,
                 device: torch.device | str | None = None):
        self.supernet, self.space = supernet.eval(), space
        self.device = _module_device(supernet) if device is None else torch.device(device)
        self.batches = [_on(b, self.device) for b in DataLoader(dataset, batch_size=batch_size, shuffle=False)]
        self.calibration = self.batches[:calibration_batches]
        self.needs_bn = uses_batchnorm(supernet)
        self.identity_net = None if identity_net is None else identity_net.to(self.device).eval()
        self.gallery_features = self.gallery_ids = self.real_features = None
        if self.identity_net is not None:
            if gallery is None:
                raise ValueError("rank-1 needs a gallery of frontal faces of the validation identities")
            gallery_batches = [_on(b, self.device) for b in DataLoader(gallery, batch_size=batch_size)]
            self.gallery_features = torch.cat([self._features(b["frontal"]) for b in gallery_batches])
            self.gallery_ids = torch.cat([b["identity"] for b in gallery_batches])
            self.real_features = torch.cat([self._features(b["frontal"]) for b in self.batches])
        self.probe_ids = torch.cat([b["identity"] for b in self.batches])
        self.probe_yaws = torch.cat([b["yaw"] for b in self.batches])

    @torch.no_grad()
    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return self.identity_net(to_identity_input(images, self.identity_net.input_size))[1]

    @torch.no_grad()
    def __call__(self, config: Mapping[str, int]) -> dict[str, float]:
        """L1, SSIM (and rank-1 mean, ID-FID with an identity network) of the sub-network at `config` (stored)."""
        set_active(self.supernet, self.space.widths(config))
        try:
            if self.needs_bn:
                recalibrate_bn(self.supernet, self.calibration)
            return self.score_model(self.supernet, self.space.encode(config))
        finally:
            set_active(self.supernet, None)

    @torch.no_grad()
    def score_model(self, model: nn.Module, name: str = "model") -> dict[str, float]:
        """The same scores for any generator as it is (the teacher, an extracted student) on the cached data."""
        model.eval()
        l1, ssim, feats = [], [], []
        for batch in self.batches:
            fake = frontalize_batch(model, batch)
            if not torch.isfinite(fake).all():
                raise NonFiniteError(f"{name} produced non-finite outputs: an error, never a score")
            scores = _pixel_scores(fake, batch["frontal"])
            l1.append(scores["l1"])
            ssim.append(scores["ssim"])
            if self.identity_net is not None:
                feats.append(self._features(fake))
        result = {"l1": torch.cat(l1).mean().item(), "ssim": torch.cat(ssim).mean().item()}
        if feats:
            fake_features = torch.cat(feats)
            nonfrontal = self.probe_yaws != 0
            result["rank1"] = rank1_by_yaw(fake_features[nonfrontal], self.probe_ids[nonfrontal], self.probe_yaws[nonfrontal],
                                           self.gallery_features, self.gallery_ids)["mean"]
            result["id_fid"] = frechet_distance(self.real_features, fake_features)
        return result


def _module_device(module: nn.Module) -> torch.device:
    """The device of `module`'s first parameter (or buffer); the CPU when it has neither."""
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device("cpu")


def _on(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def validation_subset(dataset: Dataset, limit: int | None, seed: int = 0) -> Dataset:
    """At most `limit` items of `dataset`, drawn once with `seed` (all of it when limit is None)."""
    if limit is None or limit >= len(dataset):
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:limit]
    return Subset(dataset, sorted(order.tolist()))


# ----------------------------------------------------------------------------- the search
@dataclass
class Candidate:
    config: str
    cost: float
    params: int
    metrics: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {"config": self.config, "cost": self.cost, "params": self.params, **self.metrics}


@dataclass
class SearchResult:
    strategy: str
    metric: str
    budget: float
    candidates: list[Candidate] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def best(self) -> Candidate:
        if not self.candidates:
            raise SearchError("no candidate was evaluated")
        top = self.candidates[0]
        for c in self.candidates[1:]:
            if better(self.metric, c.metrics[self.metric], top.metrics[self.metric]):
                top = c
        return top

    def pareto(self) -> list[Candidate]:
        """Candidates no other one beats in both cost and metric, by increasing cost."""
        front, best_so_far = [], None
        for c in sorted(self.candidates, key=lambda c: (c.cost, -c.metrics[self.metric] if METRICS[self.metric]
                                                        else c.metrics[self.metric])):
            score = c.metrics[self.metric]
            if best_so_far is None or better(self.metric, score, best_so_far):
                front.append(c)
                best_so_far = score
        return front

    def as_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "metric": self.metric, "budget": self.budget,
                "seconds": round(self.seconds, 2), "candidates_per_second": round(len(self.candidates) / max(self.seconds, 1e-9), 3),
                "best": self.best.as_dict(), "pareto": [c.config for c in self.pareto()],
                "candidates": [c.as_dict() for c in self.candidates]}


class _Budgeted:
    """Memoised scoring of configs within the budget; records every candidate once, in the order asked.

    With `path`, the scores so far are kept there (atomically, at most every `save_every` seconds, and on
    the way out) and the ones a killed run saved are reused: the same seed asks for the same configs, so
    reuse by config key is exact. Valid for the scorer that wrote them only (one per compression folder).
    """

    def __init__(self, space: ChannelSpace, score: Callable[[Mapping[str, int]], dict[str, float]],
                 cost: Callable[[Mapping[str, int]], float], params: Callable[[Mapping[str, int]], int],
                 budget: float, result: SearchResult, progress: Callable[[], None] | None,
                 path: Path | None = None, save_every: float = 30.0):
        self.space, self.score, self.cost, self.params, self.budget = space, score, cost, params, budget
        self.result, self.progress, self.path, self.save_every = result, progress, path, save_every
        self.seen: dict[str, Candidate] = {}
        saved = json.loads(path.read_text()) if path is not None and path.exists() else {}
        self.scores: dict[str, dict[str, float]] = saved.get("scores", {})
        self.seconds_before: float = saved.get("seconds", 0.0)   # spent scoring them (candidates/s stays true)
        self.started = self.saved_at = time.perf_counter()
        self.unsaved = 0

    def fits(self, config: Mapping[str, int]) -> bool:
        return self.cost(config) <= self.budget

    def __call__(self, config: Mapping[str, int]) -> Candidate:
        key = self.space.encode(config)
        if key not in self.seen:
            metrics = self.scores.get(key)
            if metrics is None:
                metrics = self.score(config)
                bad = {name: value for name, value in metrics.items() if not math.isfinite(value)}
                if bad:
                    raise NonFiniteError(f"candidate {key} scored {bad}: non-finite scores are an error, never a score")
                self.scores[key], self.unsaved = metrics, self.unsaved + 1
                if time.perf_counter() - self.saved_at >= self.save_every:
                    self.save()
            cand = Candidate(key, float(self.cost(config)), int(self.params(config)), metrics)
            self.seen[key] = cand
            self.result.candidates.append(cand)
            if self.progress is not None:
                self.progress()
        return self.seen[key]

    def seconds(self) -> float:
        """Scoring time of this search, a killed run's included."""
        return self.seconds_before + time.perf_counter() - self.started

    def save(self) -> None:
        """Write the scores not yet on disk (atomically: a kill mid-write keeps the previous file)."""
        if self.path is not None and self.unsaved:
            atomic_write_bytes(self.path, json.dumps({"seconds": self.seconds(), "scores": self.scores}).encode())
            self.saved_at, self.unsaved = time.perf_counter(), 0


def _draw_within(space: ChannelSpace, fits: Callable[[Mapping[str, int]], bool], rng: random.Random,
                 tries: int = 10_000) -> dict[str, int]:
    """A uniform sample of the space that fits the budget (rejection sampling, then shrinking)."""
    for _ in range(tries):
        config = space.sample(rng)
        if fits(config):
            return config
    config = space.sample(rng)           # the budget is tight: shrink a random group until it fits
    groups = {g.name: g for g in space.groups}
    while not fits(config):
        name = rng.choice([n for n in config if config[n] > min(groups[n].choices)])
        smaller = [c for c in groups[name].choices if c < config[name]]
        config[name] = max(smaller)
    return config


def _mutate(space: ChannelSpace, config: Mapping[str, int], rate: float, rng: random.Random) -> dict[str, int]:
    return {g.name: rng.choice(g.choices) if rng.random() < rate else config[g.name] for g in space.groups}


def _crossover(a: Mapping[str, int], b: Mapping[str, int], rng: random.Random) -> dict[str, int]:
    return {name: (a if rng.random() < 0.5 else b)[name] for name in a}


def search(space: ChannelSpace, score: Callable[[Mapping[str, int]], dict[str, float]],
           cost: Callable[[Mapping[str, int]], float], budget: float, *, metric: str = "l1",
           strategy: str = "evolution", candidates: int = 60, population: int = 12, parents: int = 4,
           mutation: float = 0.2, seed: int = 0, params: Callable[[Mapping[str, int]], int] | None = None,
           progress: bool = False, scores_path: Path | None = None, save_every: float = 30.0) -> SearchResult:
    """Search `space` for the config of best `metric` whose `cost` is at most `budget`.

    `candidates` bounds the number of sub-networks scored (random, evolution); evolution runs
    generations of `population` until then. Raises `SearchError` when even the smallest config
    costs more than the budget. With `scores_path`, the scores are saved there as they come (every
    `save_every` seconds and when the search stops, also by an error or Ctrl-C) and a re-run with
    the same scorer and seed reuses them, so a killed search loses at most `save_every` seconds.
    """
    from tqdm.auto import tqdm

    check_metric(metric)
    if strategy not in STRATEGIES:
        raise SearchError(f"unknown search strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    smallest = cost(space.smallest())
    if smallest > budget:
        raise SearchError(f"budget {budget:,.0f} is below the smallest sub-network's cost {smallest:,.0f}")
    result = SearchResult(strategy, metric, float(budget))
    bar = tqdm(total=None if strategy == "exhaustive" else candidates, desc=f"search ({strategy})",
               disable=not progress, dynamic_ncols=True)
    scored = _Budgeted(space, score, cost, params or (lambda c: 0), budget, result, lambda: bar.update(1),
                       scores_path, save_every)
    rng = random.Random(seed)
    try:
        if strategy == "exhaustive":
            _exhaustive(space, scored)
        elif strategy == "random":
            for _ in range(candidates * 20):
                if len(scored.seen) >= candidates:
                    break
                scored(_draw_within(space, scored.fits, rng))
        else:
            _evolve(space, scored, metric, candidates, population, parents, mutation, rng)
    finally:
        bar.close()
        scored.save()
    result.seconds = scored.seconds()
    return result


def _exhaustive(space: ChannelSpace, scored: _Budgeted) -> None:
    sizes = [len(g.choices) for g in space.groups]
    total = math.prod(sizes)
    if total > EXHAUSTIVE_LIMIT:
        raise SearchError(f"the space has {total:,} configs; exhaustive search takes at most {EXHAUSTIVE_LIMIT:,} "
                          f"(use --search evolution or random)")
    for config in space.all_configs():
        if scored.fits(config):
            scored(config)


def _evolve(space: ChannelSpace, scored: _Budgeted, metric: str, candidates: int, population: int, parents: int,
            mutation: float, rng: random.Random) -> None:
    key = (lambda c: -c.metrics[metric]) if METRICS[metric] else (lambda c: c.metrics[metric])
    pool = [scored(_draw_within(space, scored.fits, rng)) for _ in range(min(population, candidates))]
    stale = 0
    while len(scored.seen) < candidates and stale < 50:
        before = len(scored.seen)
        elite = sorted(pool, key=key)[:parents]
        children: list[Candidate] = []
        for _ in range(population - len(elite)):
            if len(scored.seen) >= candidates:
                break
            for _ in range(100):                      # a child within the budget
                if rng.random() < 0.5:
                    child = _mutate(space, space.decode(rng.choice(elite).config), mutation, rng)
                else:
                    a, b = rng.sample(elite, 2) if len(elite) > 1 else (elite[0], elite[0])
                    child = _crossover(space.decode(a.config), space.decode(b.config), rng)
                if scored.fits(child):
                    children.append(scored(child))
                    break
        pool = elite + children
        stale = stale + 1 if len(scored.seen) == before else 0


def uniform_config(space: ChannelSpace, cost: Callable[[Mapping[str, int]], float], budget: float) -> dict[str, int]:
    """The widest config whose groups all keep the same fraction of their teacher width and that fits the budget.

    The "uniformly shrunk" baseline a searched student must beat at equal cost.
    """
    best = space.smallest()
    for step in range(100, 0, -1):
        fraction = step / 100
        config = {g.name: min(g.choices, key=lambda c: (abs(c - fraction * g.teacher), -c)) for g in space.groups}
        if cost(config) <= budget:
            return config
    return best


def metric_direction(metric: str) -> str:
    check_metric(metric)
    return "higher is better" if METRICS[metric] else "lower is better"
