"""Plots and widget factories for the notebooks.

Every plot is a module-level pure function of plain data (tensors, dicts of lists, result rows)
that returns a matplotlib Figure, so a notebook cell, a widget callback and a unit test all run
the same code. Widget factories build their controls with ipywidgets APIs common to 7.7 (Colab)
and 8 (`interactive_output`, sliders with ``continuous_update=False``, `VBox`), redraw through a
module-level callback, and never return the figure from that callback (it would be shown twice).
Data pictures (views, identities, landmarks) live in `gancomp_lite.viz.data`.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gancomp_lite.figures import plot_image_rows, to_image  # noqa: F401  (plot_image_rows is viz's, re-exported)

LOSS_NAMES = ("loss_D", "loss_G_gan", "loss_G_recon")   # the terms of eq. 3 and eq. 2 as the recipes log them
LOSS_TITLES = {"loss_D": "D loss (eq. 3)", "loss_G_gan": "G adversarial loss (eq. 3)",
               "loss_G_recon": "L1 reconstruction (eq. 2)", "loss_G": "G total loss (eq. 5)"}
History = Mapping[str, Sequence[float]]                   # {"step": [...], loss name: [...]}


# ------------------------------------------------------------------ images
# ------------------------------------------------------------------ loss curves
def draw_loss_curves(fig: Figure, histories: Mapping[str, History], names: Sequence[str] = LOSS_NAMES) -> Figure:
    """Draw one panel per loss name into `fig`, one line per run (runs lacking a loss are skipped)."""
    fig.clear()
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        for label, history in histories.items():
            if name in history:
                ax.plot(history["step"], history[name], label=label)
        ax.set_title(LOSS_TITLES.get(name, name), fontsize=9)
        ax.set_xlabel("step")
    if len(histories) > 1:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_loss_curves(histories: Mapping[str, History], names: Sequence[str] = LOSS_NAMES) -> Figure:
    """Loss curves of one or more runs ({run label: history}), one panel per loss term."""
    fig = plt.figure(figsize=(3.3 * len(names), 2.6))
    return draw_loss_curves(fig, histories, names)


class LiveLossPlot:
    """A Trainer ``on_log`` callback that redraws the loss curves in place while a run trains.

    The figure is not registered with pyplot, so the inline backend does not show it a second time
    when the cell ends; `display=False` only collects the history (tests, scripts).
    """

    def __init__(self, label: str = "run", names: Sequence[str] = LOSS_NAMES, display: bool = True):
        self.label, self.names, self.display = label, tuple(names), display
        self.history: dict[str, list[float]] = {"step": []}
        self.figure = Figure(figsize=(3.3 * len(self.names), 2.6))
        self._handle: Any = None

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        self.history["step"].append(step)
        for key, value in metrics.items():
            self.history.setdefault(key, []).append(float(value))
        draw_loss_curves(self.figure, {self.label: self.history}, self.names)
        if not self.display:
            return
        from IPython.display import display

        if self._handle is None:
            self._handle = display(self.figure, display_id=True)
        else:
            self._handle.update(self.figure)


# ------------------------------------------------------------------ L1 against sharpness
def _lambda_label(lambda_recon: float) -> str:
    return "L1 only" if math.isinf(lambda_recon) else f"λ={lambda_recon:g}"


def plot_l1_vs_sharpness(table: Sequence[Mapping[str, Any]], selected: float | None = None,
                         ax: Axes | None = None) -> Figure:
    """Each run of a sweep as a point (test L1, relative sharpness); the `selected` lambda is ringed.

    Rows need "lambda_recon" (inf = no adversarial term), "l1" and "sharpness" (outputs' mean
    gradient magnitude over the ground truth's: the dashed line at 1 is "as detailed as real faces").
    """
    if not table:
        raise ValueError("plot_l1_vs_sharpness needs at least one run")
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3.2))
    for row in table:
        adversarial = not math.isinf(row["lambda_recon"])
        ax.scatter(row["l1"], row["sharpness"], s=40, marker="o" if adversarial else "s",
                   color="tab:red" if adversarial else "tab:blue", zorder=3)
        ax.annotate(_lambda_label(row["lambda_recon"]), (row["l1"], row["sharpness"]), fontsize=8,
                    xytext=(5, 3), textcoords="offset points")
    if selected is not None:
        row = find_run(table, selected)
        ax.scatter(row["l1"], row["sharpness"], s=220, facecolors="none", edgecolors="black", lw=1.5, zorder=4)
    ax.axhline(1.0, color="0.5", ls="--", lw=1)
    ax.set_xlabel("L1 to ground truth (lower is better)")
    ax.set_ylabel("relative sharpness (1 = real faces)")
    ax.margins(0.25)
    return ax.figure


def find_run(table: Sequence[Mapping[str, Any]], lambda_recon: float) -> Mapping[str, Any]:
    """The row of `table` trained with this lambda_recon (inf: the L1-only run)."""
    for row in table:
        if row["lambda_recon"] == lambda_recon:
            return row
    raise KeyError(f"no run with lambda_recon={lambda_recon}; the sweep has {[r['lambda_recon'] for r in table]}")


def plot_lambda_recon_run(table: Sequence[Mapping[str, Any]], test: Mapping[str, torch.Tensor],
                          lambda_recon: float, n: int = 4) -> Figure:
    """The lambda_recon explorer's picture: L1 against sharpness for every run, and the chosen run's
    outputs under the inputs and ground truth of the first `n` test faces."""
    row = find_run(table, lambda_recon)
    n = min(n, len(row["outputs"]))
    fig = plt.figure(figsize=(4.2 + 1.15 * n, 3.6))
    grid = fig.add_gridspec(3, n + 3)
    plot_l1_vs_sharpness(table, selected=lambda_recon, ax=fig.add_subplot(grid[:, :3]))
    stacks = {"input": test["profile"], "ground truth": test["frontal"], row["label"]: row["outputs"]}
    for r, (name, images) in enumerate(stacks.items()):
        for c in range(n):
            ax = fig.add_subplot(grid[r, 3 + c])
            ax.imshow(to_image(images[c]))
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.suptitle(f"{row['label']}: L1 {row['l1']:.3f}, relative sharpness {row['sharpness']:.2f}", fontsize=9)
    fig.tight_layout()
    return fig


def _show_lambda_recon_run(table: Sequence[Mapping[str, Any]], test: Mapping[str, torch.Tensor],
                           lambda_recon: float) -> None:
    plot_lambda_recon_run(table, test, lambda_recon)
    plt.show()


def lambda_recon_explorer(table: Sequence[Mapping[str, Any]], test: Mapping[str, torch.Tensor]):
    """A lambda_recon slider over the precomputed sweep that redraws `plot_lambda_recon_run` (a VBox)."""
    import ipywidgets as W

    lambdas = sorted(row["lambda_recon"] for row in table)
    slider = W.SelectionSlider(options=[(_lambda_label(lam), lam) for lam in lambdas], value=lambdas[0],
                               description="lambda_recon", continuous_update=False)
    out = W.interactive_output(functools.partial(_show_lambda_recon_run, table, test), {"lambda_recon": slider})
    return W.VBox([slider, out])
