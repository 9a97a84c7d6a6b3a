"""Plots and the widget of notebook 03 (separable convolutions and layer sensitivity).

Pure functions of plain data (cost-model layer tables, the dict ``gancomp_lite.compress.sensitivity``
returns) that return a matplotlib Figure, plus one widget factory that redraws through a
module-level callback and never returns the figure from it (it would be shown twice).

The shipped study results are package data (``gancomp_lite/results/sensitivity*_quick.json``,
`load_shipped`), written by ``benchmarks/sensitivity.py``; `provenance` says whether they were measured
on the teacher that ships today and by which identity network.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from gancomp_lite.compress.sensitivity import CONTROL, load_results, separable_cost
from gancomp_lite.presets import RESULTS_DIR, result_file

ROLE_COLOURS = {"residual": "tab:blue", "upsampling": "tab:red", "other": "tab:gray", "control": "black"}
CONV_KINDS = ("conv", "convT", "depthwise", "depthwise-convT", "linear")


# ------------------------------------------------------------------ the shipped results
def results_path(arch: str = "resnet9") -> Path:
    """Where the shipped study of `arch`'s quick teacher lives (package data)."""
    return RESULTS_DIR / ("sensitivity_quick.json" if arch == "resnet9" else f"sensitivity_{arch}_quick.json")


def load_shipped(arch: str = "resnet9") -> dict[str, Any]:
    """The shipped sensitivity study of `arch` (``benchmarks/sensitivity.py --arch ARCH`` writes it)."""
    return load_results(result_file(results_path(arch).name, f"python benchmarks/sensitivity.py --arch {arch}"))


def provenance(results: Mapping[str, Any]) -> dict[str, Any]:
    """``{"shipped": bool, "text": str}``: was this study measured on the shipped teacher, scored by which network."""
    from gancomp_lite.viz.distill import teacher_provenance

    checkpoint = results.get("teacher_checkpoint") or {}
    found = teacher_provenance(results["arch"], checkpoint.get("sha256"), checkpoint.get("steps"))
    scorer = results.get("scored_by")
    scored = (f"rank-1 scored by {scorer}" if scorer else
              "rank-1 scored by an identity network the file does not record (the study predates the shipped "
              "loss network and judge)")
    return {"shipped": found["shipped"], "text": f"{found['text']}; {scored}"}


def teacher_label(results: Mapping[str, Any]) -> str:
    """"teacher 00b970ed…, 800 steps" for figure titles (the checkpoint the study was measured on)."""
    checkpoint = results.get("teacher_checkpoint") or {}
    sha, steps = checkpoint.get("sha256"), checkpoint.get("steps")
    return f"teacher {sha[:8] if sha else 'unknown'}…" + (f", {steps} steps" if steps else "")


# ------------------------------------------------------------------ the separable block
def mac_ratio(out_channels: int, kernel_size: int) -> float:
    """MACs of depthwise k x k + pointwise 1x1 over a dense k x k conv: (C_in k^2 + C_in C_out) / (C_in C_out k^2)."""
    if out_channels < 1 or kernel_size < 1:
        raise ValueError(f"out_channels and kernel_size must be positive, got {out_channels}, {kernel_size}")
    return 1 / out_channels + 1 / kernel_size ** 2


def plot_mac_ratio(kernel_sizes: Sequence[int] = (3, 5, 7), max_channels: int = 256) -> Figure:
    """The separable/dense MAC ratio against C_out, one line per kernel size (log x axis)."""
    channels = np.unique(np.geomspace(1, max_channels, 60).astype(int))
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for k in kernel_sizes:
        ax.plot(channels, [mac_ratio(int(c), k) for c in channels], label=f"k = {k}")
        ax.axhline(1 / k ** 2, color=ax.lines[-1].get_color(), lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("output channels C_out")
    ax.set_ylabel("separable MACs / dense MACs")
    ax.set_title("1/C_out + 1/k² (dotted: the 1/k² floor)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ MACs of each layer
def group_of(layer: str, group_layers: Mapping[str, Sequence[str]]) -> str | None:
    """The layer group a cost-model row belongs to (its conv is, or sits inside, one of the group's layers)."""
    for group, names in group_layers.items():
        if any(layer == n or layer.startswith(n + ".") for n in names):
            return group
    return None


def plot_layer_macs(table: Sequence[Mapping[str, Any]], group_layers: Mapping[str, Sequence[str]] | None = None,
                    convention: str = "gancomp", title: str = "") -> Figure:
    """MACs of every conv layer call (a cost-model ``layer_table``), bars coloured by layer group.

    Norm layers are left out of the bars (their MACs, counted only in the gancomp convention,
    are given in the title).
    """
    rows = [r for r in table if r["kind"] in CONV_KINDS]
    if not rows:
        raise ValueError("plot_layer_macs: the layer table has no conv or linear rows")
    norms = sum(r["macs"] for r in table if r["kind"] not in CONV_KINDS)
    groups = [group_of(r["layer"], group_layers or {}) for r in rows]
    names = list(dict.fromkeys(g for g in groups if g is not None))
    palette = plt.get_cmap("tab20")
    colours = {g: palette(i % 20) for i, g in enumerate(names)}
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.0, 0.16 * len(rows) + 1)), 3.6))
    x = np.arange(len(rows))
    ax.bar(x, [r["macs"] / 1e6 for r in rows], color=[colours.get(g, "lightgray") for g in groups])
    ax.set_xticks(x, [r["layer"] for r in rows], rotation=90, fontsize=6)
    ax.set_ylabel(f"MMACs ({convention})")
    total = sum(r["macs"] for r in table)
    ax.set_title(f"{title} {total / 1e6:.1f} MMACs in total ({convention}; norms {norms / 1e6:.1f})".strip(),
                 fontsize=9)
    for g in names:
        ax.bar([0], [0], color=colours[g], label=g)
    if names:
        ax.legend(fontsize=7, ncol=min(len(names), 5))
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ the sensitivity bar chart
STAGES = {"right after the swap": "_init", "after re-training": ""}


def _check_stage(results: Mapping[str, Any], stage: str) -> None:
    if stage not in STAGES.values():
        raise ValueError(f"stage must be '' (after re-training) or '_init' (right after the swap), got {stage!r}")
    if any(f"d_l1{stage}" not in r for r in results["rows"]):
        raise ValueError("these results have no measurements right after the swap (run with eval_before=True)")


def plot_sensitivity(results: Mapping[str, Any], stage: str = "") -> Figure:
    """Three panels per layer group: MACs saved (%), change of L1 and of mean rank-1 against the teacher.

    Bars are coloured by the group's role (residual / upsampling / other, black = the control that
    re-trains the unchanged teacher). `stage` "" shows after re-training, "_init" right after the swap.
    """
    rows = results["rows"]
    if not rows:
        raise ValueError("plot_sensitivity: the results have no rows")
    _check_stage(results, stage)
    labels = [r["group"] for r in rows]
    colours = [ROLE_COLOURS.get(r["role"], "tab:gray") for r in rows]
    x = np.arange(len(rows))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    panels = [([r["macs_saved_pct"] for r in rows], f"MACs saved, % ({results['convention']})"),
              ([r[f"d_l1{stage}"] for r in rows], "Δ L1 vs teacher (lower is better)"),
              ([100 * r[f"d_rank1{stage}"] for r in rows], "Δ rank-1 vs teacher, points (higher is better)")]
    for ax, (values, title) in zip(axes, panels):
        ax.bar(x, values, color=colours)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(x, labels, rotation=45, fontsize=8)
        ax.set_title(title, fontsize=9)
    for role, colour in ROLE_COLOURS.items():
        if any(r["role"] == role for r in rows):
            axes[0].bar([0], [0], color=colour, label=role)
    axes[0].legend(fontsize=7)
    when = "right after the swap" if stage else f"after {results['settings']['steps']} distillation steps"
    fig.suptitle(f"{results['arch']} at {results['size']}px ({teacher_label(results)}): one group separable at a time, "
                 f"change against that teacher {when}", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ choosing several groups
def choice_summary(results: Mapping[str, Any], chosen: Collection[str], macs: int, stage: str = "_init") -> dict[str, Any]:
    """MACs of a choice of separable groups (`macs`, counted live) and its *estimated* quality.

    `stage` "_init": the teacher plus the sum of the chosen groups' changes right after the swap.
    `stage` "": after re-training; the teacher plus the control row's change (what the re-training
    does by itself, counted once) plus each chosen group's change beyond the control's, so the
    re-training's noise adds up too. Either way the estimate assumes the groups' effects add up,
    which interactions between swapped groups can break: only that student measures them (a sum
    can even leave the possible range; rank-1 is clipped to [0, 1], L1 to >= 0). No group chosen:
    the teacher itself.
    """
    _check_stage(results, stage)
    by_group = {r["group"]: r for r in results["rows"]}
    unknown = sorted(set(chosen) - set(by_group) | set(chosen) & {CONTROL})
    if unknown:
        measured = sorted(set(by_group) - {CONTROL})
        raise ValueError(f"no sensitivity rows for groups {unknown}; measured groups are {measured}")
    teacher = results["teacher"]
    deltas = {}
    for key in ("d_l1", "d_rank1"):
        control = by_group[CONTROL][key + stage] if CONTROL in by_group else 0.0
        deltas[key] = control + sum(by_group[g][key + stage] - control for g in chosen) if chosen else 0.0
    return {"groups": sorted(chosen), "stage": stage, "macs": int(macs),
            "macs_saved_pct": 100 * (1 - macs / teacher["macs"]),
            "l1": max(teacher["l1"] + deltas["d_l1"], 0.0),
            "rank1": min(max(teacher["rank1"] + deltas["d_rank1"], 0.0), 1.0), **deltas}


def plot_choice(results: Mapping[str, Any], summary: Mapping[str, Any]) -> Figure:
    """MACs against L1 and rank-1: the teacher, each single-group student (at the summary's stage) and
    the chosen combination (star)."""
    teacher, convention, stage = results["teacher"], results["convention"], summary["stage"]
    rows = [r for r in results["rows"] if r["group"] != CONTROL]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, label in zip(axes, ("l1", "rank1"), ("L1 (lower is better)", "mean rank-1 (higher is better)")):
        ax.scatter([teacher["macs"] / 1e6], [teacher[key]], marker="s", color="black", label="teacher")
        for r in rows:
            ax.scatter([r["macs"] / 1e6], [r[key + stage]], color=ROLE_COLOURS.get(r["role"], "tab:gray"))
            ax.annotate(r["group"], (r["macs"] / 1e6, r[key + stage]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        ax.scatter([summary["macs"] / 1e6], [summary[key]], marker="*", s=220, color="gold", edgecolor="black",
                   label="chosen (estimated quality)", zorder=3)
        ax.set_xlabel(f"MMACs ({convention})")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7)
    chosen = ", ".join(summary["groups"]) or "none"
    when = "right after the swap" if stage else "after re-training"
    fig.suptitle(f"{results['arch']} ({teacher_label(results)}), separable: {chosen}  |  "
                 f"{summary['macs_saved_pct']:.1f}% MACs saved, quality estimated {when} from single-group rows: "
                 f"ΔL1 {summary['d_l1']:+.4f}, Δrank-1 {100 * summary['d_rank1']:+.1f} points", fontsize=9)
    fig.tight_layout()
    return fig


def choice_macs(results: Mapping[str, Any], chosen: Collection[str]) -> int:
    """MACs of the teacher with `chosen` groups separable, recomputed by the cost model."""
    return separable_cost(results["arch"], results["size"], results["knobs"], tuple(chosen), results.get("config"),
                          results["convention"]).macs


def show_choice(results: Mapping[str, Any], stage: str = "_init", **flags: bool) -> None:
    """Widget callback: `flags` maps each group to whether it is separable; draws and shows the figure."""
    chosen = [g for g, on in flags.items() if on]
    plot_choice(results, choice_summary(results, chosen, choice_macs(results, chosen), stage))
    plt.show()


def separable_explorer(results: Mapping[str, Any]):
    """One checkbox per measured group and a stage toggle; changes redraw MACs (live) against estimated quality."""
    import ipywidgets as W

    groups = [r["group"] for r in results["rows"] if r["group"] != CONTROL]
    boxes = {g: W.Checkbox(value=False, description=g, indent=False, layout=W.Layout(width="70px")) for g in groups}
    stage = W.ToggleButtons(options=list(STAGES.items()), value="_init", description="quality")
    out = W.interactive_output(lambda **kw: show_choice(results, **kw), {"stage": stage, **boxes})
    return W.VBox([W.HBox(list(boxes.values())), stage, out])
