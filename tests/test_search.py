"""Search under a budget: strategies, the budget, the Pareto front, determinism, resuming a killed search,
and scoring a supernet."""
from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import Dataset

from gancomp_lite.compress import search as S
from gancomp_lite.cost import CostModel
from gancomp_lite.models.lightcnn import LightCNN
from gancomp_lite.models.registry import build, channel_space
from gancomp_lite.space import ChannelSpace

SPACE = ChannelSpace.uniform("toy", {"a": 16, "b": 16, "c": 16}, step=4)    # 4^3 = 64 configs


def _cost(config) -> float:
    return config["a"] * 4 + config["b"] * 2 + config["c"]


def _score(config) -> dict[str, float]:
    """A known landscape: quality grows with a and c, b is nearly useless (so the best spends on a and c)."""
    return {"l1": 1.0 / (config["a"] + 0.1 * config["b"] + config["c"]), "ssim": 0.0}


def _true_best(budget: float):
    fits = [c for c in SPACE.all_configs() if _cost(c) <= budget]
    return min(fits, key=lambda c: _score(c)["l1"])


def test_exhaustive_finds_the_true_optimum_and_scores_only_configs_within_budget():
    result = S.search(SPACE, _score, _cost, 60, metric="l1", strategy="exhaustive")
    assert SPACE.decode(result.best.config) == _true_best(60)
    assert len(result.candidates) == sum(1 for c in SPACE.all_configs() if _cost(c) <= 60)
    assert all(c.cost <= 60 for c in result.candidates)


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_sampling_strategies_respect_the_budget_and_are_seeded(strategy):
    a = S.search(SPACE, _score, _cost, 60, metric="l1", strategy=strategy, candidates=20, population=8, seed=1)
    b = S.search(SPACE, _score, _cost, 60, metric="l1", strategy=strategy, candidates=20, population=8, seed=1)
    assert [c.config for c in a.candidates] == [c.config for c in b.candidates]
    assert all(c.cost <= 60 for c in a.candidates)
    assert len({c.config for c in a.candidates}) == len(a.candidates)              # each scored once
    assert 10 <= len(a.candidates) <= 20                                            # 24 configs fit


def test_evolution_beats_random_sampling_on_average():
    big = ChannelSpace.uniform("toy", {g: 32 for g in "abcdef"}, step=4)       # 8^6 configs
    weights = dict(zip("abcdef", (6, 5, 4, 3, 2, 1)))

    def cost(config) -> float:
        return sum(config.values())

    def score(config) -> dict[str, float]:           # each group pays off with diminishing returns
        return {"l1": -sum(w * (1 - 0.9 ** config[g]) for g, w in weights.items())}

    totals = {"random": 0.0, "evolution": 0.0}
    for seed in range(4):
        for strategy in totals:
            totals[strategy] += S.search(big, score, cost, 96, strategy=strategy, candidates=40, population=10,
                                         seed=seed).best.metrics["l1"]
    assert totals["evolution"] < totals["random"]


def test_pareto_front_is_non_dominated_and_sorted_by_cost():
    result = S.search(SPACE, _score, _cost, 112, strategy="exhaustive")
    front = result.pareto()
    costs = [c.cost for c in front]
    assert costs == sorted(costs)
    scores = [c.metrics["l1"] for c in front]
    assert all(x > y for x, y in zip(scores, scores[1:]))            # each step buys a better score
    for c in result.candidates:                                      # nothing beats a front member in both
        assert not any(o.cost < c.cost and o.metrics["l1"] < c.metrics["l1"] for o in front) or c not in front
    assert result.best.config == front[-1].config


def test_higher_is_better_metrics_are_maximised():
    result = S.search(SPACE, lambda c: {"ssim": float(c["a"] + c["c"])}, _cost, 60, metric="ssim", strategy="exhaustive")
    assert result.best.metrics["ssim"] == max(c.metrics["ssim"] for c in result.candidates)


def test_impossible_searches_are_refused():
    with pytest.raises(S.SearchError, match="below the smallest"):
        S.search(SPACE, _score, _cost, 6, strategy="random")
    with pytest.raises(S.SearchError, match="unknown search metric"):
        S.search(SPACE, _score, _cost, 60, metric="fid")
    with pytest.raises(S.SearchError, match="unknown search strategy"):
        S.search(SPACE, _score, _cost, 60, strategy="grid")
    big = ChannelSpace.uniform("toy", {g: 64 for g in "abcdefgh"}, step=4)
    with pytest.raises(S.SearchError, match="exhaustive search takes at most"):
        S.search(big, _score, lambda c: 0.0, 1.0, strategy="exhaustive")


def test_a_tight_budget_still_yields_candidates():
    result = S.search(SPACE, _score, _cost, _cost(SPACE.smallest()), strategy="evolution", candidates=5)
    assert [c.config for c in result.candidates] == [SPACE.encode(SPACE.smallest())]


class Killed(Exception):
    """Stands in for a kill in the middle of scoring."""


@pytest.mark.parametrize("strategy", ["evolution", "random", "exhaustive"])
def test_a_killed_search_resumes_from_its_saved_scores_as_if_uninterrupted(tmp_path, strategy):
    path, k = tmp_path / "search_scores.json", 7
    options = {"metric": "l1", "strategy": strategy, "candidates": 20, "population": 8, "seed": 1}
    whole = S.search(SPACE, _score, _cost, 60, **options)
    first: list[str] = []

    def dies_after_k(config):
        if len(first) == k:
            assert len(json.loads(path.read_text())["scores"]) == k      # saved as it went, not only when stopped
            raise Killed
        first.append(SPACE.encode(config))
        return _score(config)

    with pytest.raises(Killed):
        S.search(SPACE, dies_after_k, _cost, 60, scores_path=path, save_every=0, **options)
    rescored: list[str] = []

    def counts(config):
        rescored.append(SPACE.encode(config))
        return _score(config)

    resumed = S.search(SPACE, counts, _cost, 60, scores_path=path, **options)
    assert resumed.best == whole.best and resumed.candidates == whole.candidates
    assert resumed.as_dict()["pareto"] == whole.as_dict()["pareto"]
    assert first == [c.config for c in whole.candidates[:k]]
    assert rescored == [c.config for c in whole.candidates[k:]]                # the first k were not rescored
    assert len(json.loads(path.read_text())["scores"]) == len(whole.candidates)


def test_uniform_config_keeps_one_fraction_and_fits():
    config = S.uniform_config(SPACE, _cost, 60)
    assert _cost(config) <= 60 and len(set(config.values())) == 1


class _Faces(Dataset):
    """Two identities, frontal (yaw 0, the gallery) and profile views; images are random but fixed."""

    def __init__(self, size: int = 32):
        g = torch.Generator().manual_seed(0)
        self.items = []
        for identity in range(2):
            face = torch.rand(3, size, size, generator=g) * 2 - 1
            for yaw in (0, 45, -45, 90):
                self.items.append({"profile": (face + 0.1 * torch.randn(3, size, size, generator=g)).clamp(-1, 1),
                                   "frontal": face, "yaw": torch.tensor(yaw), "identity": torch.tensor(identity)})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.items[i]


def test_candidate_scorer_scores_subnetworks_and_restores_full_width():
    torch.manual_seed(0)
    supernet = build("resnet9", None, 32, ngf=8, step=4)
    space = channel_space("resnet9", 32, ngf=8, step=4)
    data = _Faces()
    identity = LightCNN(variant="9", num_classes=2, width=0.125, input_size=32).eval()
    gallery = [item for item in data.items if int(item["yaw"]) == 0]
    scorer = S.CandidateScorer(supernet, space, data, identity_net=identity, gallery=gallery, batch_size=3)
    small, large = scorer(space.smallest()), scorer(space.largest())
    assert set(small) == {"l1", "ssim", "rank1", "id_fid"}
    assert 0 <= small["rank1"] <= 1 and small["l1"] > 0
    assert small != large
    assert scorer(space.smallest()) == small                                      # deterministic
    assert all(getattr(m, "active", None) is None for m in supernet.modules())
    cost = CostModel.for_arch("resnet9", 32, ngf=8, step=4)
    found = S.search(space, scorer, lambda c: cost.macs(c), cost.macs(None) / 2, metric="l1",
                     strategy="random", candidates=3, params=cost.params)
    assert found.as_dict()["best"]["params"] > 0 and found.seconds > 0


def test_candidate_scorer_caches_its_batches_on_the_supernets_device():
    """A supernet the Trainer left on a GPU is scored there: the device follows the model unless one is given
    (checked without a GPU on the meta device, which moves tensors without computing anything)."""
    space = channel_space("resnet9", 32, ngf=8, step=4)
    data = _Faces()
    on_meta = build("resnet9", None, 32, ngf=8, step=4).to("meta")
    scorer = S.CandidateScorer(on_meta, space, data, identity_net=None, batch_size=3)
    assert scorer.device == torch.device("meta")
    assert all(v.device.type == "meta" for b in scorer.batches for v in b.values() if torch.is_tensor(v))
    on_cpu = build("resnet9", None, 32, ngf=8, step=4)
    assert S.CandidateScorer(on_cpu, space, data, identity_net=None).device == torch.device("cpu")
    assert S.CandidateScorer(on_cpu, space, data, identity_net=None, device="meta").device == torch.device("meta")
