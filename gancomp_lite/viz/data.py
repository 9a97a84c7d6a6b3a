"""Pictures of the face data: views per identity, identity x yaw grids, illuminations, landmarks.

Every plot is a pure function of a ``data_tools.dataset.FaceDataset`` that returns a matplotlib
Figure, so notebooks, widgets and tests call the same code. ``views_explorer`` wraps
``plot_views`` in identity / illumination pickers.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from data_tools.dataset import PATCH_ORDER, FaceDataset
from data_tools.protocol import CAMERAS
from data_tools.records import FaceRecord
from gancomp_lite.figures import to_image

PATCH_COLOURS = dict(zip(PATCH_ORDER, ("tab:cyan", "tab:blue", "tab:orange", "tab:red")))
ALL_YAWS = tuple(cam.yaw for cam in CAMERAS)   # +90 ... -90, Multi-PIE's camera order


def view_index(dataset: FaceDataset) -> dict[tuple[str, str, int], int]:
    """(identity, illumination, yaw) -> dataset index, for the pickers and grids."""
    return {(r.identity, r.illumination, r.yaw): i for i, r in enumerate(dataset.records)}


def draw_landmarks(ax, points, visible) -> None:
    """Visible landmarks filled, hidden (self-occluded) ones hollow."""
    pts = np.asarray(points, dtype=float)
    vis = np.asarray(visible, dtype=bool)
    ax.scatter(pts[vis, 0], pts[vis, 1], s=12, c="yellow", edgecolors="black", linewidths=0.5)
    ax.scatter(pts[~vis, 0], pts[~vis, 1], s=12, facecolors="none", edgecolors="yellow", linewidths=0.8)


def draw_patch_boxes(ax, boxes) -> None:
    """TP-GAN's four local patches, (top, left, height, width) rows in PATCH_ORDER."""
    for part, (top, left, h, w) in zip(PATCH_ORDER, np.asarray(boxes).tolist()):
        ax.add_patch(Rectangle((left, top), w, h, fill=False, lw=1.0, ec=PATCH_COLOURS[part]))


def _show(ax, sample: dict | None, title: str, landmarks: bool, boxes: bool) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=7)
    if sample is None:
        ax.set_facecolor("0.85")
        return
    ax.imshow(to_image(sample["profile"]), extent=(0, sample["profile"].shape[-1], sample["profile"].shape[-2], 0))
    if landmarks and np.isfinite(sample["landmarks"].numpy()).all():
        draw_landmarks(ax, sample["landmarks"], sample["visible"])
    if boxes and sample["yaw"] == 0:
        draw_patch_boxes(ax, sample["patch_boxes"])


def plot_views(dataset: FaceDataset, identity: str, illumination: str, *, landmarks: bool = True,
               boxes: bool = True, index: dict | None = None) -> Figure:
    """One identity at one illumination in all 13 views (+90 ... -90); patch boxes on the frontal.

    Views the set lacks are left grey.
    """
    index = index if index is not None else view_index(dataset)
    fig, axes = plt.subplots(1, len(ALL_YAWS), figsize=(1.1 * len(ALL_YAWS), 1.5))
    for ax, cam in zip(axes, CAMERAS):
        i = index.get((identity, illumination, cam.yaw))
        _show(ax, None if i is None else dataset[i], f"{cam.cam_id}\n{cam.yaw:+d}", landmarks, boxes)
    fig.suptitle(f"identity {identity}, illumination {illumination}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_identity_grid(dataset: FaceDataset, identities: Sequence[str], illumination: str,
                       yaws: Sequence[int] = ALL_YAWS, *, landmarks: bool = False, boxes: bool = False) -> Figure:
    """Rows = identities, columns = yaws: how pose and identity vary across the set."""
    index = view_index(dataset)
    fig, axes = plt.subplots(len(identities), len(yaws), figsize=(0.9 * len(yaws), 0.95 * len(identities)),
                             squeeze=False)
    for row, identity in zip(axes, identities):
        for ax, yaw in zip(row, yaws):
            i = index.get((identity, illumination, yaw))
            _show(ax, None if i is None else dataset[i], "", landmarks, boxes)
        row[0].set_ylabel(identity, fontsize=7)
    for ax, yaw in zip(axes[0], yaws):
        ax.set_title(f"{yaw:+d}", fontsize=7)
    fig.tight_layout()
    return fig


def plot_illuminations(dataset: FaceDataset, identity: str, yaw: int = 0) -> Figure:
    """One identity at one yaw under every illumination the set has."""
    index = view_index(dataset)
    illums = sorted({il for (ident, il, y) in index if ident == identity and y == yaw})
    fig, axes = plt.subplots(1, max(len(illums), 1), figsize=(1.1 * max(len(illums), 1), 1.4), squeeze=False)
    for ax, illum in zip(axes[0], illums):
        _show(ax, dataset[index[(identity, illum, yaw)]], f"illum {illum}", False, False)
    fig.suptitle(f"identity {identity}, yaw {yaw:+d}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_samples(samples: Sequence[dict], titles: Sequence[str], *, landmarks: bool = True) -> Figure:
    """Profile images of a few samples side by side, with their landmarks and, at yaw 0, patch boxes."""
    fig, axes = plt.subplots(1, len(samples), figsize=(1.6 * len(samples), 1.8), squeeze=False)
    for ax, sample, title in zip(axes[0], samples, titles):
        _show(ax, sample, title, landmarks, True)
    fig.tight_layout()
    return fig


def plot_yaw_counts(records: Iterable[FaceRecord]) -> Figure:
    """Bar chart of profile/frontal pairs per yaw."""
    counts = Counter(r.yaw for r in records)
    yaws = sorted(counts)
    fig, ax = plt.subplots(figsize=(6, 2.2))
    ax.bar([str(y) for y in yaws], [counts[y] for y in yaws], color="tab:blue")
    ax.set_xlabel("yaw (degrees)")
    ax.set_ylabel("pairs")
    fig.tight_layout()
    return fig


def views_explorer(dataset: FaceDataset):
    """Identity and illumination pickers that redraw ``plot_views`` (ipywidgets VBox)."""
    import ipywidgets as W
    from IPython.display import display

    index = view_index(dataset)
    identity = W.Dropdown(options=dataset.identities, description="identity")
    illumination = W.Dropdown(options=sorted({il for (_, il, _) in index}), description="illumination")

    def show(identity: str, illumination: str) -> None:
        fig = plot_views(dataset, identity, illumination, index=index)
        display(fig)
        plt.close(fig)

    out = W.interactive_output(show, {"identity": identity, "illumination": illumination})
    return W.VBox([W.HBox([identity, illumination]), out])
