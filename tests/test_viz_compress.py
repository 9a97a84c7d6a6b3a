"""Plots, widget callbacks and helpers of gancomp_lite.viz.compress (notebooks 04 and 05), called directly."""
from __future__ import annotations

import random
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from gancomp_lite.compress.search import search
from gancomp_lite.cost import CostModel
from gancomp_lite.models.registry import build, channel_space
from gancomp_lite.nn.elastic import set_active
from gancomp_lite.space import ChannelSpace, Group
from gancomp_lite.viz import compress as V

SIZE, KNOBS = 32, {"ngf": 8, "step": 4}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def toy():
    space = ChannelSpace("toy", tuple(Group(n, 16, (16, 12, 8, 4)) for n in "abc"))

    def cost(c):
        return c["a"] * c["b"] + c["b"] * c["c"]

    def score(c):
        return {"l1": 1 / c["a"] + 2 / c["b"] + 1 / c["c"], "rank1": c["a"] / 100}

    return space, cost, score


@pytest.fixture
def found(toy):
    space, cost, score = toy
    return search(space, score, cost, 200, metric="l1", strategy="random", candidates=15, seed=0,
                  params=lambda c: sum(c.values())).as_dict()


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(0)
    net = build("resnet9", None, SIZE, **KNOBS).eval()
    return net, channel_space("resnet9", SIZE, **KNOBS)


def _batch(n: int = 2) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"profile": torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1,
            "frontal": torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1,
            "yaw": torch.tensor([30, -60][:n]), "identity": torch.arange(n)}


# ----------------------------------------------------------------------------- notebook 04
def test_pick_profiles_takes_one_identity_per_yaw():
    recs = [SimpleNamespace(identity=i, yaw=y) for i, y in
            [("a", 0), ("a", 30), ("a", 60), ("b", -60), ("c", 90), ("b", 30)]]
    picked = V.pick_profiles(SimpleNamespace(records=recs), (30, 60, 90))
    assert picked == [1, 3, 4]
    with pytest.raises(ValueError, match=r"\|yaw\| 45"):
        V.pick_profiles(SimpleNamespace(records=recs), (45,))


def test_output_channel_norms_and_active_fraction():
    w = torch.zeros(3, 2, 1, 1)
    w[0, 0], w[2] = 3.0, 4.0
    assert torch.allclose(V.output_channel_norms(w), torch.tensor([3.0, 0.0, 32 ** 0.5]))
    frac = V.active_fraction([2, 4, 4, 1], 4)
    assert torch.allclose(frac, torch.tensor([1.0, 0.75, 0.5, 0.5]))
    with pytest.raises(ValueError):
        V.active_fraction([], 4)


def test_width_counts_and_sampling_plot(toy):
    space, cost, _ = toy
    configs = [space.sample(random.Random(s)) for s in range(40)]
    counts = V.width_counts(space, configs)
    assert set(counts) == {"a", "b", "c"} and all(sum(c.values()) == 40 for c in counts.values())
    assert all(set(c) == {4, 8, 12, 16} for c in counts.values())
    fig = V.plot_sampling(space, configs, [cost(c) * 1e6 for c in configs], "uniform")
    assert len(fig.axes) == 2 and "widths drawn" in fig.axes[0].get_title()
    assert len(fig.axes[0].get_legend().get_texts()) == 4


def test_weight_slice_and_channel_norm_plots():
    w = torch.randn(8, 4, 3, 3)
    fig = V.plot_weight_slice(w, 4, 2, "layer x")
    rect = fig.axes[0].patches[0]
    assert (rect.get_width(), rect.get_height()) == (2, 4) and fig.axes[0].get_title() == "layer x"
    after = w.clone()
    after[:2] += 0.5
    fig = V.plot_channel_norms(w, after, V.active_fraction([2, 8], 8), "layer x")
    moved = fig.axes[2].lines[0].get_ydata()
    assert moved[0] > 0 and moved[-1] == 0
    with pytest.raises(ValueError):
        V.plot_channel_norms(w, after[:4], V.active_fraction([2], 8), "bad")


def test_subnet_outputs_equal_the_active_supernet_and_leave_it_at_full_width(supernet):
    net, space = supernet
    config = space.smallest()
    batch = _batch()
    got = V.subnet_outputs(net, space, batch, config)
    assert not any(getattr(m, "active", None) for m in net.modules())
    set_active(net, space.widths(config))
    with torch.no_grad():
        want = net(batch["profile"])
    set_active(net, None)
    assert torch.equal(got, want)


def test_subnet_preview_is_the_widget_callback(supernet):
    net, space = supernet
    cost = CostModel.for_arch("resnet9", SIZE, **KNOBS)
    teacher_macs = cost.macs(None, "gancomp")
    run = V.subnet_preview(net, space, cost, _batch(), teacher_macs)
    small, large = run(space.smallest()), run(space.largest())
    assert small["macs"] == cost.macs(space.smallest(), "gancomp") < large["macs"] == teacher_macs
    assert small["params"] == cost.params(space.smallest())
    assert space.encode(space.smallest()) in small["text"] and "x fewer than the teacher" in small["text"]
    assert list(small["faces"])[:3] == ["#1 input +30°", "#1 sub-network", "#1 truth"] and len(small["faces"]) == 6
    assert all(f.shape == (3, SIZE, SIZE) for f in small["faces"].values())
    widget = V.subnet_widget(space, run)               # builds with either ipywidgets 7 or 8
    assert len(widget.children) >= 2


def test_bn_family_faces_recalibrate_when_given_calibration():
    torch.manual_seed(0)
    knobs = {"base": 8, "step": 4}
    net = build("tpgan", None, SIZE, **knobs).eval()
    space = channel_space("tpgan", SIZE, **knobs)
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    V.subnet_outputs(net, space, _batch(), space.smallest())
    assert torch.equal(bn.running_mean, before)        # no calibration given: statistics untouched
    V.subnet_outputs(net, space, _batch(), space.smallest(), calibration=[_batch(2)])
    assert not torch.equal(bn.running_mean, before)


# ----------------------------------------------------------------------------- notebook 05
def test_best_so_far_follows_the_metric_direction():
    cands = [{"l1": 0.3, "rank1": 0.2}, {"l1": 0.1, "rank1": 0.1}, {"l1": 0.2, "rank1": 0.5}]
    assert V.best_so_far(cands, "l1") == [0.3, 0.1, 0.1]
    assert V.best_so_far(cands, "rank1") == [0.2, 0.2, 0.5]


def test_plot_strategies_draws_one_curve_per_search(found):
    fig = V.plot_strategies({"random": found, "again": found}, "toy: best vs candidates", optimum=0.1)
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and ax.get_title() == "toy: best vs candidates"
    assert list(ax.lines[0].get_ydata()) == V.best_so_far(found["candidates"], "l1")


def test_pareto_front_members_are_not_dominated(found):
    points = [(c["cost"], c["l1"]) for c in found["candidates"]]
    front = V.pareto_front(points, higher_is_better=False)
    assert [found["candidates"][i]["config"] for i in front] == found["pareto"]
    for i in front:
        assert V.dominated_by(found["candidates"], found["candidates"][i], "l1") == []
    others = [c for i, c in enumerate(found["candidates"]) if i not in front]
    assert all(V.dominated_by(found["candidates"], c, "l1") for c in others)


def test_dominated_by_handles_both_directions():
    cands = [{"config": "a", "cost": 1, "rank1": 0.5}, {"config": "b", "cost": 2, "rank1": 0.5},
             {"config": "c", "cost": 2, "rank1": 0.9}]
    assert V.dominated_by(cands, cands[1], "rank1") == ["a", "c"]
    assert V.dominated_by(cands, cands[2], "rank1") == []


def test_plot_search_and_best_under_respect_the_budget(found):
    cheap = sorted(c["cost"] for c in found["candidates"])[3]
    best = V.best_under(found["candidates"], "l1", cheap)
    assert best["cost"] <= cheap
    assert all(c["l1"] >= best["l1"] for c in found["candidates"] if c["cost"] <= cheap)
    assert V.best_under(found["candidates"], "l1", 0) is None
    fig = V.plot_search(found, budget=cheap)
    assert any(best["config"] in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_budget_widget_builds_and_shows_faces(found):
    shown = []

    def faces(config):
        shown.append(config)
        return {"a": torch.zeros(3, 8, 8)}

    widget = V.budget_widget(found, faces)
    assert len(widget.children) == 2
    assert shown == [] or shown[0] == V.best_under(found["candidates"], "l1", found["budget"])["config"]


def test_comparison_table_lists_every_row():
    rows = {"uniform": {"config": "8_8", "cost": 2e6, "params": 1500, "l1": 0.2, "ssim": 0.5, "rank1": 0.25},
            "searched": {"config": "4_12", "cost": 1.9e6, "params": 1400, "l1": 0.1, "ssim": 0.6, "rank1": 0.5}}
    table = V.comparison_table(rows)
    lines = table.splitlines()
    assert len(lines) == 4 and "| searched | `4_12` | 1.9 | 1.4 | 0.1000 | 0.6000 | 0.5000 |" in lines
