"""Plots and the lambda_recon explorer of gancomp_lite.viz, called directly (no kernel)."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from gancomp_lite import viz


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def images(n: int, value: float = 0.0, size: int = 8) -> torch.Tensor:
    return torch.full((n, 3, size, size), value)


@pytest.fixture
def table():
    """Three runs as the sweep returns them (only the fields the plots read)."""
    def row(lam, l1, sharp, value):
        label = "L1 only" if math.isinf(lam) else f"cGAN + {lam:g} L1"
        return {"label": label, "lambda_recon": lam, "l1": l1, "sharpness": sharp, "outputs": images(5, value)}
    return [row(1.0, 0.17, 1.9, 0.5), row(100.0, 0.12, 0.9, 0.0), row(math.inf, 0.12, 0.8, -0.5)]


@pytest.fixture
def test_batch():
    return {"profile": images(5, -1.0), "frontal": images(5, 1.0)}


def test_image_rows_layout_and_pixels():
    fig = viz.plot_image_rows({"input": images(4, -1.0), "output": images(3, 1.0)}, n=6, titles=["a", "b", "c"])
    axes = np.array(fig.axes).reshape(2, 3)           # n is capped by the shortest stack
    assert axes[0, 0].get_ylabel() == "input" and axes[1, 0].get_ylabel() == "output"
    assert [ax.get_title() for ax in axes[0]] == ["a", "b", "c"]
    assert axes[0, 0].images[0].get_array().max() == 0.0      # -1 maps to black
    assert axes[1, 2].images[0].get_array().min() == 1.0      # +1 maps to white


def test_image_rows_refuses_bad_stacks():
    with pytest.raises(ValueError, match="'gray'.*\\(N, 3, H, W\\)"):
        viz.plot_image_rows({"gray": torch.zeros(2, 1, 8, 8)})
    with pytest.raises(ValueError, match="at least one"):
        viz.plot_image_rows({})


def test_loss_curves_one_panel_per_term_and_skip_missing():
    histories = {"cgan": {"step": [10, 20], "loss_D": [1.4, 1.2], "loss_G_gan": [0.7, 0.9], "loss_G_recon": [0.3, 0.2]},
                 "l1": {"step": [10, 20], "loss_G_recon": [0.31, 0.18]}}
    fig = viz.plot_loss_curves(histories)
    d_ax, gan_ax, recon_ax = fig.axes
    assert len(d_ax.lines) == 1 and len(recon_ax.lines) == 2            # the L1-only run has no D
    assert list(recon_ax.lines[1].get_ydata()) == [0.31, 0.18]
    assert list(recon_ax.lines[1].get_xdata()) == [10, 20]
    assert "eq. 2" in recon_ax.get_title()


def test_live_loss_plot_collects_and_redraws():
    live = viz.LiveLossPlot("run", display=False)
    live(10, {"loss_D": 1.3, "loss_G_gan": 0.8, "loss_G_recon": 0.4, "loss_G": 40.8})
    live(20, {"loss_D": 1.1, "loss_G_gan": 1.0, "loss_G_recon": 0.3, "loss_G": 31.0})
    assert live.history["step"] == [10, 20] and live.history["loss_G"] == [40.8, 31.0]
    assert len(live.figure.axes) == 3                            # redrawn, not stacked
    assert list(live.figure.axes[2].lines[0].get_ydata()) == [0.4, 0.3]
    assert live.figure not in map(plt.figure, plt.get_fignums())  # not managed by pyplot


def test_l1_vs_sharpness_points_and_selection(table):
    fig = viz.plot_l1_vs_sharpness(table, selected=100.0)
    ax = fig.axes[0]
    points = np.concatenate([c.get_offsets() for c in ax.collections[:-1]])
    assert points.tolist() == [[0.17, 1.9], [0.12, 0.9], [0.12, 0.8]]
    assert ax.collections[-1].get_offsets().tolist() == [[0.12, 0.9]]          # the ring on lambda 100
    assert [t.get_text() for t in ax.texts] == ["λ=1", "λ=100", "L1 only"]
    assert any(line.get_ydata()[0] == 1.0 for line in ax.lines)                 # the ground-truth level
    with pytest.raises(ValueError, match="at least one run"):
        viz.plot_l1_vs_sharpness([])


def test_lambda_recon_run_shows_the_chosen_outputs(table, test_batch):
    fig = viz.plot_lambda_recon_run(table, test_batch, math.inf, n=3)
    assert len(fig.axes) == 1 + 3 * 3
    assert "L1 only" in fig._suptitle.get_text() and "0.80" in fig._suptitle.get_text()
    output_row = fig.axes[1 + 2 * 3:]
    assert output_row[0].get_ylabel() == "L1 only"
    assert np.allclose(output_row[0].images[0].get_array(), 0.25)             # -0.5 in [-1, 1]
    with pytest.raises(KeyError, match="lambda_recon=5"):
        viz.plot_lambda_recon_run(table, test_batch, 5.0)


def test_explorer_slider_redraws(table, test_batch, monkeypatch):
    calls = []
    monkeypatch.setattr(viz, "plot_lambda_recon_run", lambda tab, test, lam: calls.append(lam))
    ui = viz.lambda_recon_explorer(table, test_batch)
    slider = ui.children[0]
    assert [value for _, value in slider.options] == [1.0, 100.0, math.inf]
    assert slider.continuous_update is False
    slider.value = math.inf
    assert calls == [1.0, math.inf]                  # the first draw, then the new value
