"""Plots and widgets of the compression stages: the search's cost-quality scatter, the Pareto front,
the best config under a budget, and a supernet's sub-network chosen group by group."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

# The search and faces figures are the compression report's (compress never imports viz); shown here too.
from gancomp_lite.compress.report import METRIC_LABELS, best_under, faces_figure, pareto_front, plot_search
from gancomp_lite.compress.search import METRICS
from gancomp_lite.viz.data import to_image


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


# ----------------------------------------------------------------------------- notebook 04: the once-for-all supernet
def pick_profiles(dataset, yaws: Sequence[int] = (30, 60, 90)) -> list[int]:
    """Indices of one profile per |yaw| in `yaws` (first in record order), each of a different identity."""
    picked: list[int] = []
    used: set[str] = set()
    for yaw in yaws:
        for i, rec in enumerate(dataset.records):
            if abs(rec.yaw) == yaw and rec.identity not in used:
                picked.append(i)
                used.add(rec.identity)
                break
        else:
            raise ValueError(f"no profile at |yaw| {yaw} of an identity not picked yet")
    return picked


def output_channel_norms(weight: torch.Tensor) -> torch.Tensor:
    """The L2 norm of each output filter of a conv weight (out, in, k, k) (or any tensor: per index of dim 0)."""
    return weight.detach().float().reshape(weight.shape[0], -1).norm(dim=1)


def active_fraction(widths: Sequence[int], channels: int) -> torch.Tensor:
    """Per channel index k < `channels`: the fraction of the sampled `widths` (real channel counts) that include it."""
    if not widths:
        raise ValueError("active_fraction needs at least one sampled width")
    w = torch.tensor([int(x) for x in widths]).unsqueeze(1)
    return (torch.arange(channels).unsqueeze(0) < w).float().mean(dim=0)


def plot_weight_slice(weight: torch.Tensor, out_active: int, in_active: int, title: str) -> Figure:
    """|W| summed over the kernel (output x input channels) with the active sub-network's block outlined."""
    from matplotlib.patches import Rectangle

    w = weight.detach().float().abs()
    grid = w.reshape(w.shape[0], w.shape[1], -1).sum(-1)
    fig, ax = plt.subplots(figsize=(5, 4.2))
    im = ax.imshow(grid.numpy(), cmap="viridis", aspect="auto")
    ax.add_patch(Rectangle((-0.5, -0.5), in_active, out_active, fill=False, ec="red", lw=2,
                           label=f"sub-network: first {out_active} outputs x first {in_active} inputs"))
    ax.set_xlabel("input channel")
    ax.set_ylabel("output channel")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7)
    fig.colorbar(im, ax=ax, label="sum of |w| over the kernel")
    return fig


def width_counts(space, configs: Sequence[Mapping[str, int]]) -> dict[str, dict[int, int]]:
    """How often each stored choice of each group appears in `configs` (every choice listed, zeros too)."""
    counts = {g.name: {c: 0 for c in sorted(g.choices)} for g in space.groups}
    for config in configs:
        for name, value in config.items():
            counts[name][value] += 1
    return counts


def plot_sampling(space, configs: Sequence[Mapping[str, int]], macs: Sequence[float], title: str) -> Figure:
    """Left: how often each width of each group was drawn; right: the MACs of the drawn sub-networks."""
    counts = width_counts(space, configs)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    n = len(space.groups)
    for i, g in enumerate(space.groups):
        values = sorted(counts[g.name])
        xs = [i + (j - (len(values) - 1) / 2) * 0.8 / len(values) for j in range(len(values))]
        left.bar(xs, [counts[g.name][v] for v in values], width=0.8 / len(values), color=[f"C{j}" for j in range(len(values))])
    choices = sorted(space.groups[0].choices)
    if all(sorted(g.choices) == choices for g in space.groups):   # one legend entry per width
        from matplotlib.patches import Patch

        left.legend([Patch(color=f"C{j}") for j in range(len(choices))], [str(v) for v in choices],
                    title="stored width", fontsize=7, ncol=2)
    left.axhline(len(configs) / max(len(g.choices) for g in space.groups), color="grey", ls="--", lw=1)
    left.set_xticks(range(n), [g.name for g in space.groups])
    left.set_ylabel(f"times drawn in {len(configs)} steps")
    left.set_title(f"{title}: widths drawn per channel group", fontsize=9)
    right.hist([m / 1e6 for m in macs], bins=30, color="C0")
    right.set_xlabel("MACs per image (M, gancomp convention)")
    right.set_ylabel("sub-networks")
    right.set_title(f"{title}: MACs of the drawn sub-networks", fontsize=9)
    fig.tight_layout()
    return fig


def plot_channel_norms(before: torch.Tensor, after: torch.Tensor, active: torch.Tensor, title: str) -> Figure:
    """Top: the L2 norm of each output filter of a weight before and after supernet training. Bottom: how far
    each filter moved (L2 norm of after - before) against the fraction of steps in which it was active."""
    if before.shape != after.shape or len(active) != before.shape[0]:
        raise ValueError(f"weights {tuple(before.shape)} and {tuple(after.shape)} and {len(active)} activity values differ")
    channels = list(range(before.shape[0]))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.4), sharex=True)
    top.plot(channels, output_channel_norms(before).numpy(), ".-", label="before (the teacher's weights)")
    top.plot(channels, output_channel_norms(after).numpy(), ".-", label="after supernet training")
    top.set_ylabel("L2 norm of the filter")
    top.set_title(f"{title}: per-output-channel weight norms", fontsize=9)
    top.legend(fontsize=7)
    bottom.bar(channels, active.numpy(), color="lightgrey", label="fraction of steps the channel was active")
    bottom.set_ylabel("fraction of steps")
    twin = bottom.twinx()
    twin.plot(channels, output_channel_norms(after - before).numpy(), ".-", color="C3",
              label="how far the filter moved: ||after - before||")
    twin.set_ylabel("L2 norm of the change", color="C3")
    twin.set_ylim(bottom=0)
    bottom.set_xlabel("output channel index (a sub-network keeps the first ones)")
    bottom.set_title(f"{title}: how far each filter moved, and how often it was trained", fontsize=9)
    handles, labels = bottom.get_legend_handles_labels()
    more_handles, more_labels = twin.get_legend_handles_labels()
    bottom.legend(handles + more_handles, labels + more_labels, fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


@torch.no_grad()
def subnet_outputs(supernet, space, batch: Mapping[str, Any], config: Mapping[str, int],
                   calibration: Sequence[Mapping[str, Any]] | None = None) -> torch.Tensor:
    """The supernet's frontalized `batch` at `config` (stored widths), straight from the shared weights.

    BatchNorm families are recalibrated on `calibration` first (when given), as the search does.
    The supernet is left at full width.
    """
    from gancomp_lite.compress.supernet import recalibrate_bn, uses_batchnorm
    from gancomp_lite.evaluate import frontalize_batch
    from gancomp_lite.nn.elastic import set_active

    set_active(supernet, space.widths(config))
    try:
        if calibration is not None and uses_batchnorm(supernet):
            recalibrate_bn(supernet, calibration)
        supernet.eval()
        return frontalize_batch(supernet, dict(batch))
    finally:
        set_active(supernet, None)


def supernet_faces(supernet, space, batch: Mapping[str, Any], config: Mapping[str, int],
                   calibration: Sequence[Mapping[str, Any]] | None = None) -> dict[str, torch.Tensor]:
    """Input, the supernet's output at `config` and the ground truth for each profile of `batch`, by name."""
    fake = subnet_outputs(supernet, space, batch, config, calibration)
    faces: dict[str, torch.Tensor] = {}
    for i in range(len(fake)):
        yaw = int(batch["yaw"][i])
        faces[f"#{i + 1} input {yaw:+d}°"] = batch["profile"][i]
        faces[f"#{i + 1} sub-network"] = fake[i]
        faces[f"#{i + 1} truth"] = batch["frontal"][i]
    return faces


def subnet_preview(supernet, space, cost, batch: Mapping[str, Any], teacher_macs: float,
                   convention: str = "gancomp", calibration: Sequence[Mapping[str, Any]] | None = None):
    """The `run` callback of `subnet_widget`: config -> {"text": MACs, params, ratio; "faces": supernet_faces}."""

    def run(config: Mapping[str, int]) -> dict[str, Any]:
        config = {g.name: int(config[g.name]) for g in space.groups}
        macs, params = cost.macs(config, convention), cost.params(config)
        text = (f"{space.encode(config)}: {macs / 1e6:.1f} M MACs ({convention} convention), "
                f"{teacher_macs / macs:.1f}x fewer than the teacher; {params / 1e3:.1f} k parameters")
        return {"text": text, "faces": supernet_faces(supernet, space, batch, config, calibration),
                "macs": macs, "params": params}

    return run


# ----------------------------------------------------------------------------- notebook 05: search
def best_so_far(candidates: Sequence[Mapping[str, Any]], metric: str) -> list[float]:
    """The best `metric` among the first 1, 2, ... candidates, in the order they were scored."""
    pick = max if METRICS[metric] else min
    out: list[float] = []
    for c in candidates:
        out.append(c[metric] if not out else pick(out[-1], c[metric]))
    return out


def plot_strategies(found: Mapping[str, Mapping[str, Any]], title: str, optimum: float | None = None,
                    ylabel: str | None = None) -> Figure:
    """Best score found against candidates scored, one line per search (`found`: name -> result dict)."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    metric = None
    for name, result in found.items():
        metric = result["metric"]
        curve = best_so_far(result["candidates"], metric)
        ax.plot(range(1, len(curve) + 1), curve, ".-", label=f"{name} ({len(curve)} scored)")
    if optimum is not None:
        ax.axhline(optimum, color="grey", ls="--", lw=1, label="the optimum (exhaustive)")
    ax.set_xlabel("candidates scored")
    ax.set_ylabel(f"best so far: {ylabel or METRIC_LABELS.get(metric, metric)}", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return fig


def dominated_by(candidates: Sequence[Mapping[str, Any]], target: Mapping[str, Any], metric: str) -> list[str]:
    """Configs of the candidates that beat `target` in both cost (not higher) and metric (strictly better), or
    in cost (strictly lower) and metric (not worse): empty for a Pareto-optimal target."""
    higher = METRICS[metric]

    def at_least(a: float, b: float) -> bool:
        return a >= b if higher else a <= b

    def beats(a: float, b: float) -> bool:
        return a > b if higher else a < b

    return [c["config"] for c in candidates
            if (c["cost"] <= target["cost"] and beats(c[metric], target[metric]))
            or (c["cost"] < target["cost"] and at_least(c[metric], target[metric]))]


def comparison_table(rows: Mapping[str, Mapping[str, Any]], metrics: Sequence[str] = ("l1", "ssim", "rank1")) -> str:
    """A markdown table: one row per named config ({"config", "cost", "params", metric...})."""
    head = "| | config | MACs (M, gancomp) | params (k) | " + " | ".join(metrics) + " |"
    lines = [head, "|" + "---|" * (4 + len(metrics))]
    for name, r in rows.items():
        values = " | ".join(f"{r[m]:.4f}" for m in metrics)
        lines.append(f"| {name} | `{r['config']}` | {r['cost'] / 1e6:.1f} | {r['params'] / 1e3:.1f} | {values} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- notebook 07: end to end (Tables 1, 3, 4, Figure 3)
def yaw_columns(report: Mapping[str, Any]) -> list[str]:
    """The |yaw| columns of a compression report's rank-1 dicts, largest first (as the paper's Table 1), then "mean"."""
    return sorted((c for c in report["teacher"]["rank1"] if c != "mean"), key=int, reverse=True) + ["mean"]


def _pct_ci(value: float, ci: Sequence[float] | None = None, signed: bool = False) -> str:
    spec = "+.1f" if signed else ".1f"
    text = format(100 * value, spec)
    return text if not ci else f"{text} [{format(100 * ci[0], spec)}, {format(100 * ci[1], spec)}]"


def _json_key(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def table1_markdown(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """The paper's Table 1 for compression reports ({name: report}): rank-1 (%) per |yaw| of the raw profiles,
    each teacher and its compressed student with 95% intervals, and the paired difference (compressed minus
    teacher on the same probes, bootstrap over identities)."""
    if not reports:
        raise ValueError("table1_markdown needs at least one report")
    columns = yaw_columns(next(iter(reports.values())))
    head = "| | " + " | ".join("mean" if c == "mean" else f"±{c}°" for c in columns) + " | L1 | SSIM |"
    lines = [head, "|---|" + "---|" * (len(columns) + 2)]

    def row(name: str, scores: Mapping[str, Any], pixel: str) -> str:
        ci = scores.get("rank1_ci") or {}
        return f"| {name} | " + " | ".join(_pct_ci(scores["rank1"][c], ci.get(c)) for c in columns) + f" | {pixel} |"

    raws = {_json_key(r["raw"]) for r in reports.values()}
    shared_raw = len(raws) == 1
    if shared_raw:
        lines.append(row("raw profiles (no generator)", next(iter(reports.values()))["raw"], "– | –"))
    for name, r in reports.items():
        if not shared_raw:
            lines.append(row(f"{name}: raw profiles", r["raw"], "– | –"))
        t, s, d = r["teacher"], r["student"], r["paired_difference"]
        lines.append(row(f"{name} teacher", t, f"{t['l1']:.4f} | {t['ssim']:.3f}"))
        lines.append(row(f"{name} compressed", s, f"{s['l1']:.4f} | {s['ssim']:.3f}"))
        lines.append(f"| {name}: compressed − teacher | " +
                     " | ".join(_pct_ci(d["diff"][c], d["ci"][c], signed=True) for c in columns) +
                     f" | {s['l1'] - t['l1']:+.4f} | {s['ssim'] - t['ssim']:+.3f} |")
    first = next(iter(reports.values()))
    judge = first["scored_by"]
    lines += ["", f"Rank-1 (%) on the test split ({first['test']['identities']} identities, {first['test']['probes']} "
                  f"probes), ±yaw merged, [95% bootstrap interval over identities]; scored by the {judge['role']} "
                  f"`{judge['file']}` (sha256 {judge['sha256'][:12]}), which no training objective uses."]
    return "\n".join(lines)


def table1_reading(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """One markdown bullet per report: the mean rank-1 of teacher and compressed student, the paired difference
    with its interval, whether the interval excludes zero, and at which |yaw| it does."""
    lines = []
    for name, r in reports.items():
        d = r["paired_difference"]
        low, high = d["ci"]["mean"]
        if low > 0:
            verdict = "the interval excludes zero (a resolved **gain**)"
        elif high < 0:
            verdict = "the interval excludes zero (a resolved **loss**)"
        else:
            verdict = f"the interval includes zero (no change resolved on {r['test']['identities']} test identities)"
        resolved = [f"±{c}° ({_pct_ci(d['diff'][c], d['ci'][c], signed=True)})" for c in yaw_columns(r)[:-1]
                    if d["ci"][c][0] > 0 or d["ci"][c][1] < 0]
        per_yaw = (f"; per |yaw|, resolved at {', '.join(resolved)}" if resolved
                   else "; no single |yaw| column resolves a difference")
        lines.append(f"- **{name}**: mean rank-1 {_pct_ci(r['teacher']['rank1']['mean'])} % (teacher) → "
                     f"{_pct_ci(r['student']['rank1']['mean'])} % (compressed, {r['table3']['macs_ratio']:.1f}x fewer "
                     f"MACs); paired difference {_pct_ci(d['diff']['mean'], d['ci']['mean'], signed=True)} points; "
                     f"{verdict}{per_yaw}.")
    return "\n".join(lines)


def table3_markdown(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """The paper's Table 3 for compression reports: MACs and parameters of teacher and student, and their ratios."""
    if not reports:
        raise ValueError("table3_markdown needs at least one report")
    conventions = {r["table3"]["convention"] for r in reports.values()}
    lines = ["| family | compressed config | budget (M MACs) | MACs teacher (M) | MACs compressed (M) | MACs ratio | "
             "params teacher (M) | params compressed (M) | params ratio |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in reports.items():
        t3 = r["table3"]
        lines.append(f"| {name} | `{t3['student']['config']}` | {r['budget'] / 1e6:.1f} | {t3['teacher']['macs'] / 1e6:.1f} | "
                     f"{t3['student']['macs'] / 1e6:.1f} | {t3['macs_ratio']:.1f}x | {t3['teacher']['params'] / 1e6:.3f} | "
                     f"{t3['student']['params'] / 1e6:.3f} | {t3['params_ratio']:.1f}x |")
    lines += ["", f"MACs per image in the {' / '.join(sorted(conventions))} convention (analytic cost model); "
                  f"ratio = teacher / compressed; budget = the MACs limit the search had to meet."]
    return "\n".join(lines)


def table4_rows(benches: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Teacher vs student per (name, backend) from `gancomp_lite.bench.BenchReport.to_dict()` results:
    median latencies, speedup, MACs ratio, realised fraction and the memory figures of both models."""
    rows = []
    for name, b in benches.items():
        teacher = next(m for m in b["models"] if m["role"] == "teacher")
        students = [m for m in b["models"] if m["role"] == "student"]
        if not students:
            raise ValueError(f"{name}: the bench result has no student")
        student = students[0]
        for backend, t in teacher["timings"].items():
            s = student["timings"].get(backend)
            ok = t["median_ms"] is not None and s is not None and s["median_ms"] is not None
            speedup = t["median_ms"] / s["median_ms"] if ok else None
            ratio = teacher["macs"] / student["macs"]
            rows.append({"name": name, "backend": backend, "device": b["device"], "threads": b["threads"],
                         "status": "ok" if ok else (s or {}).get("status", "missing"),
                         "teacher_ms": t["median_ms"], "student_ms": s["median_ms"] if s else None,
                         "speedup": speedup, "macs_ratio": ratio,
                         "realised_fraction": speedup / ratio if speedup is not None else None,
                         "teacher_param_mb": teacher["param_bytes"] / 1e6, "student_param_mb": student["param_bytes"] / 1e6,
                         "teacher_file_mb": teacher["file_bytes"] / 1e6, "student_file_mb": student["file_bytes"] / 1e6,
                         "teacher_peak_mb": teacher["peak_activation_bytes"] / 1e6,
                         "student_peak_mb": student["peak_activation_bytes"] / 1e6})
    return rows


def table4_markdown(benches: Mapping[str, Mapping[str, Any]]) -> str:
    """The paper's Table 4: latency at batch 1 and memory, teacher vs compressed, with where it was measured."""
    rows = table4_rows(benches)
    if not rows:
        raise ValueError("table4_markdown needs at least one bench result")

    def f(value: float | None, spec: str) -> str:
        return "–" if value is None else format(value, spec)

    lines = ["| family | device | backend | teacher (ms) | compressed (ms) | speedup | MACs ratio | realised | "
             "weights teacher → compressed (MB) | memory reduction | peak activations teacher → compressed (MB) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        where = f"{r['device']} ({r['threads']} thr.)" if r["device"] == "cpu" else r["device"]
        lines.append(f"| {r['name']} | {where} | {r['backend']}{'' if r['status'] == 'ok' else ' (' + r['status'] + ')'} | "
                     f"{f(r['teacher_ms'], '.2f')} | {f(r['student_ms'], '.2f')} | "
                     f"{f(r['speedup'], '.2f')}{'x' if r['speedup'] else ''} | {r['macs_ratio']:.1f}x | "
                     f"{f(r['realised_fraction'], '.2f')} | {r['teacher_param_mb']:.2f} → {r['student_param_mb']:.2f} | "
                     f"{r['teacher_param_mb'] / r['student_param_mb']:.1f}x | "
                     f"{r['teacher_peak_mb']:.2f} → {r['student_peak_mb']:.2f} |")
    first = next(iter(benches.values()))
    machine = first.get("machine", {})
    where = machine.get("gpu") or machine.get("cpu") or machine.get("platform")
    lines += ["", f"Measured on this machine: {where}, torch {machine.get('torch')}, load average {machine.get('load')}; "
                  f"batch 1, {first['warmup']} warm-up + {first['runs']} timed runs per model (the paper: 100 + 100); "
                  f"latency = median of the timed runs; speedup = teacher / compressed; realised = speedup / MACs ratio; "
                  f"weights = float32 parameter bytes; peak activations = the most one forward allocates beyond its weights."]
    return "\n".join(lines)


def plot_rank1_per_yaw(reports: Mapping[str, Mapping[str, Any]], title: str = "") -> Figure:
    """One panel per report: rank-1 against |yaw| for the raw profiles, the teacher and the compressed
    student, with their 95% intervals as error bars."""
    if not reports:
        raise ValueError("plot_rank1_per_yaw needs at least one report")
    fig, axes = plt.subplots(1, len(reports), figsize=(3.6 * len(reports) + 0.6, 3.3), squeeze=False, sharey=True)
    for ax, (name, r) in zip(axes[0], reports.items()):
        columns = sorted((c for c in r["teacher"]["rank1"] if c != "mean"), key=int)
        yaws = [int(c) for c in columns]
        for label, scores, style in (("raw profiles", r["raw"], dict(color="grey", ls="--")),
                                     ("teacher", r["teacher"], dict(color="C0")),
                                     (f"compressed ({r['table3']['macs_ratio']:.1f}x fewer MACs)", r["student"],
                                      dict(color="C3"))):
            values = [100 * scores["rank1"][c] for c in columns]
            ci = scores.get("rank1_ci") or {}
            err = None
            if all(c in ci for c in columns):
                err = [[v - 100 * ci[c][0] for v, c in zip(values, columns)],
                       [100 * ci[c][1] - v for v, c in zip(values, columns)]]
            ax.errorbar(yaws, values, yerr=err, marker="o", ms=3, capsize=2, lw=1.2, label=label, **style)
        ax.set_xticks(yaws)
        ax.set_xlabel("|yaw| of the probe (degrees)")
        ax.set_ylim(0, 105)
        ax.set_title(f"{name}: rank-1 per |yaw|", fontsize=9)
        ax.legend(fontsize=7, loc="best")
    axes[0][0].set_ylabel("rank-1 (%), 95% interval")
    fig.suptitle(title or "Rank-1 per |yaw| of teacher and compressed student (test split, judge)", fontsize=10)
    fig.tight_layout()
    return fig


def family_view(name: str, report: Mapping[str, Any], rows: Mapping[str, torch.Tensor] | None = None,
                yaws: Sequence[int] = (90, 75, 60, 45, 30, 15)) -> tuple[str, list[Figure]]:
    """What `family_widget` shows for one report: its Table 1 rows and reading (markdown), the rank-1 plot
    and, with `rows` (`compress.report.face_rows`), its faces per |yaw|."""
    text = (f"**{name}**: `{report['table3']['student']['config']}`, {report['table3']['macs_ratio']:.1f}x fewer MACs, "
            f"{report['table3']['params_ratio']:.1f}x fewer parameters\n\n" + table1_markdown({name: report}) +
            "\n\n" + table1_reading({name: report}))
    figures = [plot_rank1_per_yaw({name: report}, title=f"{name}: rank-1 per |yaw|, teacher vs compressed")]
    if rows:
        fig = faces_figure(rows, yaws)
        fig.suptitle(f"{name}: faces per |yaw| (profile, ground truth, teacher, compressed)", fontsize=9)
        fig.tight_layout()
        figures.append(fig)
    return text, figures


def family_widget(reports: Mapping[str, Mapping[str, Any]],
                  faces: Mapping[str, Mapping[str, torch.Tensor]] | Callable[[str], Mapping[str, torch.Tensor]] | None = None):
    """A dropdown of the reports' names; on change, `family_view` of the chosen one (faces from `faces`)."""
    import ipywidgets as W
    from IPython.display import Markdown, display

    if not reports:
        raise ValueError("family_widget needs at least one report")
    pick = W.Dropdown(options=list(reports), value=next(iter(reports)), description="family")
    out = W.Output()

    def redraw(name: str) -> None:
        rows = None if faces is None else (faces(name) if callable(faces) else faces.get(name))
        text, figures = family_view(name, reports[name], rows)
        with out:
            out.clear_output(wait=True)
            display(Markdown(text))
            for fig in figures:
                display(fig)
                plt.close(fig)

    W.interactive_output(redraw, {"name": pick})
    return W.VBox([pick, out])
