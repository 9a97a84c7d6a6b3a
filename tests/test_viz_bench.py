"""gancomp_lite.viz.bench's helpers for notebook 06: conv MACs, latency fits, rank correlation, inversions,
the latency/predictor/layer-sweep plots and the config widget."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from gancomp_lite.cost import CostModel
from gancomp_lite.models.registry import channel_space
from gancomp_lite.nn.elastic import ElasticConv2d
from gancomp_lite.viz import bench as V


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_conv_macs_matches_the_cost_model_and_the_depthwise_formula():
    x = (torch.zeros(1, 16, 20, 20),)
    counted = CostModel(nn.Sequential(ElasticConv2d("in", "out", {"in": 16, "out": 24}, 3, padding=1)),
                        inputs=x).macs(convention="physical")
    assert V.conv_macs(20, 20, 16, 24, 3) == counted == 20 * 20 * 16 * 24 * 9
    assert V.conv_macs(20, 20, 16, 16, 3, groups=16) == 20 * 20 * 16 * 9         # depthwise: C k^2 per pixel
    assert V.conv_macs(10, 10, 16, 32, 1) == 100 * 16 * 32
    with pytest.raises(ValueError, match="groups"):
        V.conv_macs(4, 4, 6, 8, 3, groups=4)


def test_realised_fraction_is_speedup_over_macs_ratio():
    assert V.realised_fraction(100, 25, 8e9, 1e9) == pytest.approx(0.5)          # 4x faster for 8x fewer MACs
    assert V.realised_fraction(80, 10, 8e9, 1e9) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        V.realised_fraction(0, 1, 1, 1)


def test_latency_fit_recovers_an_affine_law_and_tells_it_from_a_proportional_one():
    macs = [1e9, 2e9, 4e9, 8e9]
    affine = V.latency_fit(macs, [10 + 5 * m / 1e9 for m in macs])
    assert affine["intercept_ms"] == pytest.approx(10) and affine["ms_per_gmac"] == pytest.approx(5)
    assert affine["r2"] == pytest.approx(1.0) and affine["r2_proportional"] < 0.99
    assert affine["marginal_gmacs_per_s"] == pytest.approx(200)                 # 5 ms per GMAC
    proportional = V.latency_fit(macs, [3 * m / 1e9 for m in macs])
    assert proportional["intercept_ms"] == pytest.approx(0, abs=1e-9)
    assert proportional["r2_proportional"] == pytest.approx(1.0)
    assert proportional["ms_per_gmac_proportional"] == pytest.approx(3)
    assert V.latency_fit([1e9, 2e9], [5, 4])["marginal_gmacs_per_s"] == math.inf    # falling: no finite rate
    with pytest.raises(ValueError):
        V.latency_fit([1e9, 1e9], [1, 2])


def test_affine_speedup_caps_at_the_fixed_part():
    out = V.affine_speedup(10, 5, 8e9, 8)                  # teacher 50 ms, student 15 ms
    assert out["speedup"] == pytest.approx(50 / 15) and out["realised"] == pytest.approx(50 / 15 / 8)
    assert out["ceiling"] == pytest.approx(5)
    assert V.affine_speedup(0, 5, 8e9, 8) == {"speedup": pytest.approx(8), "realised": pytest.approx(1),
                                               "ceiling": math.inf}
    huge = V.affine_speedup(10, 5, 8e9, 1e6)
    assert huge["speedup"] < huge["ceiling"]


def test_rank_correlation_is_spearman_with_ties():
    assert V.rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1)
    assert V.rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1)
    assert V.rank_correlation([1, 2, 3], [1, 1, 2]) == pytest.approx(math.sqrt(3) / 2)   # ranks 0.5, 0.5, 2
    assert math.isnan(V.rank_correlation([1, 2, 3], [5, 5, 5]))
    with pytest.raises(ValueError):
        V.rank_correlation([1], [1])


def test_inversions_find_bigger_configs_that_ran_faster():
    macs = [1.0, 2.0, 8.0]
    ms = [10.0, 9.0, 4.0]
    assert V.inversions(macs, ms) == [(1, 0), (2, 0), (2, 1)]
    assert V.inversions(macs, ms, macs_ratio=4) == [(2, 0), (2, 1)]
    assert V.inversions(macs, ms, macs_ratio=4, margin=2) == [(2, 0), (2, 1)]     # 4 * 2 < 9 and < 10
    assert V.inversions(macs, ms, macs_ratio=4, margin=3) == []
    assert V.inversions(macs, [1.0, 2.0, 3.0]) == []
    with pytest.raises(ValueError):
        V.inversions([1], [1, 2])


def _rows():
    return [{"kind": "sampled", "macs": 1e8 * (i + 1), "median_ms": 5.0 + i, "min_ms": 4.5 + i, "max_ms": 7.0 + i}
            for i in range(5)] + [{"kind": "teacher", "macs": 9e8, "median_ms": 14.0, "min_ms": 13.0, "max_ms": 20.0}]


def test_plot_latency_vs_macs_draws_both_panels_with_fit_roof_and_highlight():
    rows = _rows()
    fit = V.latency_fit([r["macs"] for r in rows], [r["median_ms"] for r in rows])
    fig = V.plot_latency_vs_macs(rows, fit, roof_gmacs=40.0, highlight={"macs": 3e8, "measured_ms": 8.0,
                                                                         "predicted_ms": 7.5}, title="T")
    left, right = fig.axes
    assert fig._suptitle.get_text() == "T"
    labels = [t.get_text() for t in left.get_legend().get_texts()]
    assert "sampled" in labels and "teacher" in labels and any(t.startswith("fit:") for t in labels)
    assert "chosen: measured" in labels and "chosen: predicted" in labels
    assert any(line.get_ydata()[0] == 40.0 for line in right.get_lines())           # the roof
    assert "GMAC/s" in right.get_ylabel() and "gancomp" in left.get_xlabel()
    V.plot_latency_vs_macs(rows)                                                     # fit, roof, highlight optional
    with pytest.raises(ValueError):
        V.plot_latency_vs_macs([])


def test_plot_layer_sweep_and_predicted_vs_measured():
    rows = [{"kind": k, "width": w, "ms": 0.01 * w, "macs": (w * w * 100 if k == "dense" else 0)}
            for k in ("dense", "norm") for w in (4, 8, 16)]
    fig = V.plot_layer_sweep(rows)
    left, right = fig.axes
    assert len(left.get_lines()) == 2 and len(right.get_lines()) == 1            # the norm has no MACs: no rate
    with pytest.raises(ValueError):
        V.plot_layer_sweep([])
    evaluated = [{"predicted_ms": 11.0, "measured_ms": 10.0}, {"predicted_ms": 18.0, "measured_ms": 20.0}]
    fig = V.plot_predicted_vs_measured(evaluated)
    assert "MAPE 10.0%" in fig.axes[0].get_title()
    with pytest.raises(ValueError):
        V.plot_predicted_vs_measured([])


def test_config_widget_runs_on_slider_and_preset_changes():
    W = pytest.importorskip("ipywidgets")
    space = channel_space("resnet9", 64, ngf=8, step=4)
    seen = []

    def run(config):
        seen.append(space.encode(config))
        return {"text": space.encode(config), "figure": None}

    smallest = space.smallest()
    widget = V.config_widget(space, run, presets={"smallest": smallest, "teacher": space.teacher()})
    assert isinstance(widget, W.VBox) and seen == [space.encode(space.teacher())]      # drawn once when built
    chooser = widget.children[0]
    sliders = [s for box in widget.children[1:-1] for s in box.children]
    assert len(sliders) == len(space.groups)
    chooser.value = "smallest"                                   # every slider moves, one redraw
    assert seen[-1] == space.encode(smallest) and len(seen) == 2
    assert [s.value for s in sliders] == [smallest[g.name] for g in space.groups]
    sliders[0].value = max(space.groups[0].choices)              # a slider: the dropdown says "(sliders)"
    assert len(seen) == 3 and chooser.value == "(sliders)"
    assert space.decode(seen[-1])[space.groups[0].name] == sliders[0].value


def test_config_widget_uses_presets_alone_when_the_space_has_many_groups():
    pytest.importorskip("ipywidgets")
    space = channel_space("resnet9", 64, ngf=8, step=4)
    seen = []
    run = lambda config: seen.append(space.encode(config)) or {"text": "", "figure": plt.figure()}
    widget = V.config_widget(space, run, presets={"smallest": space.smallest()}, max_sliders=2)
    assert len(widget.children) == 2 and seen == [space.encode(space.smallest())]   # dropdown and output only
    with pytest.raises(ValueError, match="presets"):
        V.config_widget(space, run, max_sliders=2)
