"""Figure primitives shared by the compression report and the notebook plots.

They sit below both `gancomp_lite.compress.report` (which writes a compression's figures) and
`gancomp_lite.viz` (which shows them in the notebooks), so the image grid is written once and
data still flows one way: compress never imports viz.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """A 3 x H x W tensor in [-1, 1] as an H x W x 3 array in [0, 1] for imshow."""
    return ((tensor.detach().float().cpu().permute(1, 2, 0).numpy() + 1.0) / 2.0).clip(0.0, 1.0)


def plot_image_rows(rows: Mapping[str, torch.Tensor], n: int = 6, titles: Sequence[str] | None = None,
                    scale: float = 1.2) -> Figure:
    """One row per named image stack (e.g. input / ground truth / outputs), the first `n` of each.

    Every stack is (N, 3, S, S) in [-1, 1]; `titles` label the columns.
    """
    if not rows:
        raise ValueError("plot_image_rows needs at least one named image stack")
    for name, images in rows.items():
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"plot_image_rows: row {name!r} must be (N, 3, H, W) images, got {tuple(images.shape)}")
    n = min(n, *(len(images) for images in rows.values()))
    fig, axes = plt.subplots(len(rows), n, figsize=(scale * n + 0.8, scale * len(rows)), squeeze=False)
    for ax_row, (name, images) in zip(axes, rows.items()):
        for col, ax in enumerate(ax_row):
            ax.imshow(to_image(images[col]))
            ax.set_xticks([])
            ax.set_yticks([])
        ax_row[0].set_ylabel(name, fontsize=8)
    for ax, title in zip(axes[0], titles or ()):
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: Path, dpi: int) -> None:
    """Write `fig` to `path` (making its folder) and release it (pyplot keeps every open figure)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
