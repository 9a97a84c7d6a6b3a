"""Plots of measured speed (``gancomp_lite.bench``, ``gancomp_lite.latency``): pure functions of plain
data that return a matplotlib Figure."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def achieved_gmacs(macs: float, ms: float) -> float:
    """GMAC/s of a forward of `macs` MACs that took `ms` milliseconds."""
    if ms <= 0:
        raise ValueError(f"a latency must be positive, got {ms} ms")
    return macs / 1e9 / (ms / 1e3)


def plot_roofline(peak_gmacs: float, points: Sequence[Mapping[str, Any]], convention: str = "gancomp",
                  title: str = "") -> Figure:
    """Each model's achieved GMAC/s against its MACs (log x), under the machine's dense-conv roof.

    `points`: dicts with "label", "macs" and "ms" (``gancomp_lite.bench.roofline_points``); the
    dashed line is one large dense conv's rate (``bench.conv_throughput``). The gap between a point
    and the roof is time the MACs do not explain: small layers, norms, memory traffic, overhead.
    """
    if peak_gmacs <= 0:
        raise ValueError(f"the roof must be a positive rate, got {peak_gmacs} GMAC/s")
    if not points:
        raise ValueError("plot_roofline needs at least one measured point")
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    xs = np.array([p["macs"] / 1e9 for p in points])
    ys = np.array([achieved_gmacs(p["macs"], p["ms"]) for p in points])
    ax.scatter(xs, ys, zorder=3)
    for x, y, point in zip(xs, ys, points):
        ax.annotate(f"{point['label']}\n{point['ms']:.1f} ms", (x, y), fontsize=7, xytext=(4, 2),
                    textcoords="offset points")
    ax.axhline(peak_gmacs, color="black", ls="--", lw=1, label=f"one dense conv: {peak_gmacs:.0f} GMAC/s")
    ax.set_xscale("log")
    ax.set_ylim(0, max(peak_gmacs, ys.max()) * 1.15)
    ax.set_xlabel(f"MACs per forward (G, {convention} convention)")
    ax.set_ylabel("achieved GMAC/s")
    ax.set_title(title or "achieved rate against the machine's roof", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_time_vs_macs(times: Mapping[str, float], macs: Mapping[str, float], title: str = "") -> Figure:
    """Share of the time (``bench.time_by_layer_kind``) against share of the MACs
    (``bench.macs_by_layer_kind``) per layer kind: where they differ, fewer MACs will not mean less time."""
    kinds = [k for k in times if k != "total" and (times[k] > 0 or macs.get(k, 0) > 0)]
    if not kinds:
        raise ValueError("plot_time_vs_macs needs at least one layer kind with time or MACs")
    total_time = sum(times[k] for k in kinds)
    total_macs = sum(macs.values()) or 1
    y = np.arange(len(kinds))
    fig, ax = plt.subplots(figsize=(5.5, 0.35 * len(kinds) + 1.2))
    ax.barh(y - 0.2, [100 * times[k] / total_time for k in kinds], 0.4, label="time")
    ax.barh(y + 0.2, [100 * macs.get(k, 0) / total_macs for k in kinds], 0.4, label="MACs")
    ax.set_yticks(y, kinds)
    ax.invert_yaxis()
    ax.set_xlabel("% of the forward")
    ax.set_title(title or f"where the time goes ({total_time:.1f} ms per forward)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
