"""Plots and widgets of the compression stages: the search's cost-quality scatter, the Pareto front,
the best config under a budget, and a supernet's sub-network chosen group by group."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from gancomp_lite.compress.search import METRICS
from gancomp_lite.viz.data import to_image

METRIC_LABELS = {"l1": "L1 to the ground truth (lower is better)", "ssim": "SSIM (higher is better)",
                 "rank1": "rank-1 mean on validation identities (higher is better)",
                 "id_fid": "ID-FID (lower is better)"}


def pareto_front(points: Sequence[tuple[float, float]], higher_is_better: bool) -> list[int]:
    """Indices of the points no other point beats in both cost (lower) and score, by increasing cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1] if higher_is_better else points[i][1]))
    front, best = [], None
    for i in order:
        score = points[i][1]
        if best is None or (score > best if higher_is_better else score < best):
            front.append(i)
            best = score
    return front


def best_under(candidates: Sequence[Mapping[str, Any]], metric: str, budget: float) -> Mapping[str, Any] | None:
    """The candidate of best `metric` whose cost is at most `budget` (None when none fits)."""
    fitting = [c for c in candidates if c["cost"] <= budget]
    if not fitting:
        return None
    return (max if METRICS[metric] else min)(fitting, key=lambda c: c[metric])


def plot_search(found: Mapping[str, Any], budget: float | None = None, ax=None) -> Figure:
    """Every scored candidate (MACs against the search metric), the Pareto front and the best one.

    `found` is a search result dict (`SearchResult.as_dict()` or a saved search.json).
    """
    metric, cands = found["metric"], found["candidates"]
    if not cands:
        raise ValueError("plot_search needs at least one candidate")
    fig, ax = (plt.subplots(figsize=(6, 4)) if ax is None else (ax.figure, ax))
    xs = [c["cost"] / 1e6 for c in cands]
    ys = [c[metric] for c in cands]
    ax.scatter(xs, ys, s=14, alpha=0.5, label=f"{len(cands)} candidates ({found['strategy']})")
    front = pareto_front(list(zip(xs, ys)), METRICS[metric])
    ax.plot([xs[i] for i in front], [ys[i] for i in front], "-o", color="C1", ms=4, label="Pareto front")
    limit = found["budget"] if budget is None else budget
    ax.axvline(limit / 1e6, color="grey", ls="--", lw=1, label=f"budget {limit / 1e6:.1f} M")
    best = best_under(cands, metric, limit)
    if best is not None:
        ax.scatter([best["cost"] / 1e6], [best[metric]], s=80, marker="*", color="C3", zorder=3,
                   label=f"best: {best['config']}")
    ax.set_xlabel("MACs per image (M, gancomp convention)")
    ax.set_ylabel(METRIC_LABELS[metric])
    ax.set_title("Search: sub-networks scored straight from the supernet")
    ax.legend(fontsize=7)
    return fig


def plot_faces_row(images: Mapping[str, torch.Tensor], title: str = "") -> Figure:
    """One face per named image (3, S, S) in [-1, 1], side by side."""
    fig, axes = plt.subplots(1, len(images), figsize=(1.6 * len(images), 1.9), squeeze=False)
    for ax, (name, img) in zip(axes[0], images.items()):
        ax.imshow(to_image(img))
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def subnet_widget(space, run: Callable[[Mapping[str, int]], Mapping[str, Any]]):
    """A slider per channel group; on change, `run(config)` returns {"text": str, "faces": {name: image}}."""
    import ipywidgets as W
    from IPython.display import display

    sliders = {g.name: W.SelectionSlider(options=sorted(g.choices), value=g.teacher, description=g.name,
                                         continuous_update=False) for g in space.groups}
    out = W.Output()

    def redraw(**config: int) -> None:
        shown = run(config)
        with out:
            out.clear_output(wait=True)
            print(shown["text"])
            fig = plot_faces_row(shown["faces"])
            display(fig)
            plt.close(fig)

    W.interactive_output(redraw, sliders)
    return W.VBox([W.HBox(list(sliders.values())[i:i + 4]) for i in range(0, len(sliders), 4)] + [out])


def budget_widget(found: Mapping[str, Any], faces: Callable[[str], Mapping[str, torch.Tensor]] | None = None):
    """A MACs-budget slider: the scatter with the budget line and the best config under it (and its faces)."""
    import ipywidgets as W
    from IPython.display import display

    costs = sorted(c["cost"] for c in found["candidates"])
    slider = W.FloatSlider(value=found["budget"] / 1e6, min=costs[0] / 1e6, max=costs[-1] / 1e6,
                           step=(costs[-1] - costs[0]) / 1e6 / 50 or 0.1, description="budget (M)",
                           continuous_update=False)
    out = W.Output()

    def redraw(budget_m: float) -> None:
        with out:
            out.clear_output(wait=True)
            fig = plot_search(found, budget=budget_m * 1e6)
            display(fig)
            plt.close(fig)
            best = best_under(found["candidates"], found["metric"], budget_m * 1e6)
            print("no candidate fits" if best is None else
                  f"best under {budget_m:.1f} M: {best['config']} ({best['cost'] / 1e6:.1f} M MACs, "
                  f"{found['metric']} {best[found['metric']]:.4f})")
            if best is not None and faces is not None:
                fig = plot_faces_row(faces(best["config"]), title=best["config"])
                display(fig)
                plt.close(fig)

    W.interactive_output(redraw, {"budget_m": slider})
    return W.VBox([slider, out])
