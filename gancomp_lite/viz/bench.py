"""Plots of measured speed (``gancomp_lite.bench``, ``gancomp_lite.latency``): pure functions of plain
data that return a matplotlib Figure."""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter


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


# ------------------------------------------------------------------ latency against MACs (notebook 06)
def conv_macs(h_out: int, w_out: int, c_in: int, c_out: int, kernel: int, groups: int = 1) -> int:
    """MACs of one convolution: every output element sums C_in / groups inputs over a k x k window,
    ``H_out W_out C_out (C_in / groups) k^2`` (a depthwise conv has groups = C_in = C_out)."""
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide C_in={c_in} and C_out={c_out}")
    return h_out * w_out * c_out * (c_in // groups) * kernel * kernel


def realised_fraction(teacher_ms: float, student_ms: float, teacher_macs: float, student_macs: float) -> float:
    """Speedup over MACs ratio: ``(t_T / t_S) / (M_T / M_S)``; 1.0 when time falls exactly as MACs do."""
    if min(teacher_ms, student_ms, teacher_macs, student_macs) <= 0:
        raise ValueError("latencies and MACs must be positive")
    return (teacher_ms / student_ms) / (teacher_macs / student_macs)


def latency_fit(macs: Sequence[float], ms: Sequence[float]) -> dict[str, float]:
    """Least-squares line ``ms = intercept_ms + ms_per_gmac * MACs / 1e9`` over measured configs.

    Also the rate the slope stands for (``marginal_gmacs_per_s``: what one more GMAC costs), the line's R^2,
    and the R^2 of the best line through the origin (``r2_proportional``, ``ms = c * MACs``, same total
    sum of squares): latency is proportional to MACs when both are high and the intercept is small.
    """
    x = np.asarray(macs, float) / 1e9
    y = np.asarray(ms, float)
    if x.shape != y.shape or len(x) < 2 or np.ptp(x) == 0:
        raise ValueError("latency_fit needs as many latencies as MACs, and at least two different MACs")
    slope, intercept = np.polyfit(x, y, 1)
    through_origin = float(x @ y / (x @ x))
    total = float(((y - y.mean()) ** 2).sum()) or 1.0
    return {"intercept_ms": float(intercept), "ms_per_gmac": float(slope),
            "marginal_gmacs_per_s": float(1e3 / slope) if slope > 0 else math.inf,
            "r2": 1 - float(((y - (intercept + slope * x)) ** 2).sum()) / total,
            "r2_proportional": 1 - float(((y - through_origin * x) ** 2).sum()) / total,
            "ms_per_gmac_proportional": through_origin, "n": len(x)}


def affine_speedup(intercept_ms: float, ms_per_gmac: float, teacher_macs: float, ratio: float) -> dict[str, float]:
    """What a line ``t = a + b M`` predicts for a student with `ratio` times fewer MACs than the teacher:
    speedup ``(a + b M) / (a + b M / R)``, realised fraction (speedup / R), and the ceiling ``(a + b M) / a``
    that no ratio can pass while the fixed part `a` is positive."""
    if ratio <= 0:
        raise ValueError(f"the MACs ratio must be positive, got {ratio}")
    teacher_ms = intercept_ms + ms_per_gmac * teacher_macs / 1e9
    student_ms = intercept_ms + ms_per_gmac * teacher_macs / 1e9 / ratio
    if teacher_ms <= 0 or student_ms <= 0:
        raise ValueError("the line predicts a non-positive latency at these MACs")
    speedup = teacher_ms / student_ms
    return {"speedup": speedup, "realised": speedup / ratio,
            "ceiling": teacher_ms / intercept_ms if intercept_ms > 0 else math.inf}


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho (ties share their mean rank): 1.0 when `y` orders the items exactly as `x` does."""
    a, b = np.asarray(x, float), np.asarray(y, float)
    if a.shape != b.shape or len(a) < 2:
        raise ValueError("rank_correlation needs two sequences of the same length, at least two items")

    def ranks(v: np.ndarray) -> np.ndarray:
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for value in np.unique(v):            # ties: the mean of their ranks
            tied = v == value
            r[tied] = r[tied].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def inversions(macs: Sequence[float], ms: Sequence[float], macs_ratio: float = 1.0, margin: float = 1.0
               ) -> list[tuple[int, int]]:
    """Pairs (big, small) where `big` has more MACs (at least `macs_ratio` times `small`'s) and yet ran more
    than `margin` times faster: ``ms[big] * margin < ms[small]``. Defaults: every plain inversion."""
    if len(macs) != len(ms):
        raise ValueError("inversions needs one latency per MACs count")
    return [(i, j) for i in range(len(macs)) for j in range(len(macs))
            if macs[i] > macs[j] and macs[i] >= macs_ratio * macs[j] and ms[i] * margin < ms[j]]


def plot_latency_vs_macs(rows: Sequence[Mapping[str, Any]], fit: Mapping[str, float] | None = None,
                         roof_gmacs: float | None = None, highlight: Mapping[str, float] | None = None,
                         convention: str = "gancomp", title: str = "") -> Figure:
    """Left: median latency (bars: fastest to slowest run) against MACs, one colour per row "kind", with the
    fitted line (``latency_fit``). Right: the achieved GMAC/s of the same runs against MACs, under the
    roof (``bench.conv_throughput``) when given. `highlight`: {"macs", "measured_ms", "predicted_ms"}
    (either latency optional) drawn as stars: the widget's chosen config."""
    if not rows:
        raise ValueError("plot_latency_vs_macs needs at least one measured config")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    kinds = list(dict.fromkeys(r.get("kind", "config") for r in rows))
    for kind in kinds:
        mine = [r for r in rows if r.get("kind", "config") == kind]
        x = np.array([r["macs"] / 1e9 for r in mine])
        y = np.array([r["median_ms"] for r in mine])
        low = y - np.array([r.get("min_ms", r["median_ms"]) for r in mine])
        high = np.array([r.get("max_ms", r["median_ms"]) for r in mine]) - y
        left.errorbar(x, y, yerr=[low, high], fmt="o", ms=5, capsize=2, label=kind, zorder=3)
        right.scatter(x, [achieved_gmacs(r["macs"], r["median_ms"]) for r in mine], s=22, label=kind, zorder=3)
    if fit is not None:
        xs = np.linspace(0, max(r["macs"] for r in rows) / 1e9 * 1.05, 50)
        left.plot(xs, fit["intercept_ms"] + fit["ms_per_gmac"] * xs, "k--", lw=1,
                  label=f"fit: {fit['intercept_ms']:.1f} ms + {fit['ms_per_gmac']:.1f} ms/GMAC (R² {fit['r2']:.2f})")
    if highlight is not None:
        for key, marker, name in (("measured_ms", "*", "chosen: measured"), ("predicted_ms", "P", "chosen: predicted")):
            if highlight.get(key) is not None:
                left.scatter([highlight["macs"] / 1e9], [highlight[key]], marker=marker, s=160, c="red",
                             edgecolors="black", zorder=4, label=name)
    if roof_gmacs is not None:
        right.axhline(roof_gmacs, color="black", ls="--", lw=1, label=f"one dense conv: {roof_gmacs:.0f} GMAC/s")
    left.set_xlim(left=0)
    left.set_ylim(bottom=0)
    left.set_xlabel(f"MACs per forward (G, {convention} convention)")
    left.set_ylabel("latency at batch 1 (ms, median)")
    left.set_title("latency against MACs", fontsize=9)
    left.legend(fontsize=7)
    right.set_xscale("log")
    right.xaxis.set_minor_formatter(NullFormatter())         # decade labels only: minor ones collide
    right.set_ylim(bottom=0)
    right.set_xlabel(f"MACs per forward (G, {convention} convention)")
    right.set_ylabel("achieved GMAC/s (MACs / median latency)")
    right.set_title("achieved rate against MACs" + (" under the roof" if roof_gmacs else ""), fontsize=9)
    right.legend(fontsize=7)
    fig.suptitle(title or "latency and achieved rate of sampled sub-networks against their MACs", fontsize=10)
    fig.tight_layout()
    return fig


def plot_layer_sweep(rows: Sequence[Mapping[str, Any]], title: str = "") -> Figure:
    """One layer alone at growing widths: left its time per call (microseconds), right its achieved GMAC/s
    (layers with MACs only). `rows`: dicts with "kind", "width", "ms" and "macs" (0 or None: no MACs)."""
    if not rows:
        raise ValueError("plot_layer_sweep needs at least one measured layer")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for kind in dict.fromkeys(r["kind"] for r in rows):
        mine = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["width"])
        widths = [r["width"] for r in mine]
        left.plot(widths, [1e3 * r["ms"] for r in mine], "o-", ms=4, label=kind)
        rated = [r for r in mine if r.get("macs")]
        if rated:
            right.plot([r["width"] for r in rated], [achieved_gmacs(r["macs"], r["ms"]) for r in rated], "o-", ms=4,
                       label=kind)
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("channels (C_in = C_out)")
        ax.legend(fontsize=7)
    left.set_yscale("log")
    left.set_ylabel("time per call (µs, fastest run)")
    left.set_title("one layer's time against its width", fontsize=9)
    right.set_ylim(bottom=0)
    right.set_ylabel("achieved GMAC/s")
    right.set_title("one layer's achieved rate against its width", fontsize=9)
    fig.suptitle(title or "single layers at batch 1: fixed cost and narrow-channel waste", fontsize=10)
    fig.tight_layout()
    return fig


def plot_predicted_vs_measured(rows: Sequence[Mapping[str, Any]], title: str = "") -> Figure:
    """The latency predictor against measurement: one point per config ("predicted_ms", "measured_ms",
    as ``LatencyPredictor.evaluate`` returns them), the diagonal, and a +-20% band."""
    if not rows:
        raise ValueError("plot_predicted_vs_measured needs at least one config")
    measured = np.array([r["measured_ms"] for r in rows])
    predicted = np.array([r["predicted_ms"] for r in rows])
    error = float(np.mean(np.abs(predicted - measured) / measured))
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    top = max(measured.max(), predicted.max()) * 1.1
    line = np.array([0, top])
    ax.plot(line, line, "k--", lw=1, label="predicted = measured")
    ax.fill_between(line, 0.8 * line, 1.2 * line, color="grey", alpha=0.2, label="±20%")
    ax.scatter(measured, predicted, zorder=3)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("measured latency (ms, fastest run)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(title or f"latency predictor against measurement (MAPE {100 * error:.1f}%)", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def config_widget(space, run: Callable[[Mapping[str, int]], Mapping[str, Any]],
                  presets: Mapping[str, Mapping[str, int]] | None = None, max_sliders: int = 12):
    """Choose a config: a slider per channel group (when the space has at most `max_sliders` groups) and/or
    a dropdown of `presets` (name -> config); on every change ``run(config)`` returns {"text": str,
    "figure": Figure or None}, shown below. Works with ipywidgets 7 and 8 (``observe`` on "value")."""
    import ipywidgets as W
    from IPython.display import display

    if len(space.groups) > max_sliders and not presets:
        raise ValueError(f"{len(space.groups)} channel groups: give presets (a dropdown) instead of sliders")
    sliders = {} if len(space.groups) > max_sliders else {
        g.name: W.SelectionSlider(options=sorted(g.choices), value=g.teacher, description=g.name,
                                  continuous_update=False) for g in space.groups}
    custom = "(sliders)"
    chooser = W.Dropdown(options=([custom] if sliders else []) + list(presets or {}), description="config")
    out = W.Output()
    state = {"config": space.teacher(), "quiet": False}

    def redraw() -> None:
        shown = run(dict(state["config"]))
        with out:
            out.clear_output(wait=True)
            print(shown["text"])
            if shown.get("figure") is not None:
                display(shown["figure"])
                plt.close(shown["figure"])

    def on_slider(change: Mapping[str, Any]) -> None:
        state["config"] = {name: s.value for name, s in sliders.items()}
        if not state["quiet"]:
            state["quiet"] = True
            chooser.value = custom
            state["quiet"] = False
            redraw()

    def on_preset(change: Mapping[str, Any]) -> None:
        if state["quiet"] or change["new"] == custom:
            return
        config = space.validate(dict(presets[change["new"]]))
        state["quiet"] = True                       # move every slider, redraw once
        for name, slider in sliders.items():
            slider.value = config[name]
        state["quiet"] = False
        state["config"] = config
        redraw()

    for slider in sliders.values():
        slider.observe(on_slider, names="value")
    chooser.observe(on_preset, names="value")
    if not sliders:
        state["config"] = space.validate(dict(next(iter(presets.values()))))
    redraw()
    rows = [W.HBox(list(sliders.values())[i:i + 4]) for i in range(0, len(sliders), 4)]
    return W.VBox(([chooser] if presets else []) + rows + [out])
