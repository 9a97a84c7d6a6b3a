"""The compression report: the paper's Table 3 (cost), Table 1 (rank-1 per |yaw|), Figure 3 (faces)
and the search's cost-quality figure.

Teacher and student are scored on the same test probes by the judge identity network (no training
objective uses it, not even the search, which reads the loss network on the validation identities),
so the student's rank-1 change is a paired difference with a bootstrap interval over identities.
The figures the compression writes are drawn here, not in `gancomp_lite.viz`, so data flows one
way: viz reuses them for the notebooks, compress never imports viz.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from data_tools.protocol import NEUTRAL_ILLUMINATION
from gancomp_lite.checkpoint import read_manifest
from gancomp_lite.compress.search import METRICS
from gancomp_lite.evaluate import compare, evaluate, frontalize_batch
from gancomp_lite.figures import plot_image_rows, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CONVENTION = "gancomp"
FIGURE_YAWS = (90, 75, 60, 45, 30, 15)
METRIC_LABELS = {"l1": "L1 to the ground truth (lower is better)", "ssim": "SSIM (higher is better)",
                 "rank1": "rank-1 mean on validation identities (higher is better)",
                 "id_fid": "ID-FID (lower is better)"}


def scoring_network(preset: str, weights_dir: Path | None = None) -> tuple[nn.Module, dict[str, str]]:
    """The shipped judge of `preset` (used by no training objective) and which file it is."""
    from gancomp_lite.teachers import JUDGE_FILE, WEIGHTS_DIR, load_judge

    path = Path(weights_dir or WEIGHTS_DIR) / JUDGE_FILE.format(preset=preset)
    return load_judge(preset, path.parent), {"role": "judge", "file": path.name, "sha256": read_manifest(path)["sha256"]}


def _scores(result: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("rank1", "rank1_ci", "l1", "psnr", "ssim", "id_fid")
    return {k: result[k] for k in keys if k in result}


def score_on_test(preset: str, teacher: nn.Module, student: nn.Module, test, weights_dir: Path | None = None,
                  progress: bool = True) -> dict[str, Any]:
    """Teacher and student scored by the judge on the same test probes: the report's scoring fields."""
    judge, scored_by = scoring_network(preset, weights_dir)
    teacher_result = evaluate(test, judge, teacher, per_probe=True, progress=progress)
    student_result = evaluate(test, judge, student.eval(), per_probe=True, progress=progress)
    return {
        "raw": {"rank1": teacher_result["rank1_raw"], "rank1_ci": teacher_result.get("rank1_raw_ci")},
        "teacher": _scores(teacher_result), "student": _scores(student_result),
        "paired_difference": compare(teacher_result, student_result), "scored_by": scored_by,
        "test": {"identities": teacher_result["n_identities"], "probes": teacher_result["n_probes"]},
    }


def build_report(settings, bundle, student: nn.Module, config: Mapping[str, int], budget: int, splits, out: Path,
                 found: Mapping[str, Any], weights_dir: Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Score teacher and student on the test split, draw the faces; the report dict (see `markdown`)."""
    from gancomp_lite.models.registry import channel_space

    teacher_cost, student_cost = bundle.cost_models()
    space = channel_space(bundle.arch, bundle.size, **bundle.student_knobs)
    table3 = {"convention": CONVENTION,
              "teacher": {"macs": teacher_cost.macs(None, CONVENTION), "params": teacher_cost.params(None)},
              "student": {"config": space.encode(config), "macs": student_cost.macs(config, CONVENTION),
                          "params": student_cost.params(config)}}
    table3["macs_ratio"] = table3["teacher"]["macs"] / table3["student"]["macs"]
    table3["params_ratio"] = table3["teacher"]["params"] / table3["student"]["params"]
    scores = score_on_test(settings.preset, bundle.generator, student, splits.test, weights_dir, progress)
    faces = out / "faces.png"
    rows = face_rows(splits.test, {"teacher": bundle.generator, "compressed": student})
    save_figure(faces_figure(rows), faces, dpi=100)
    return {
        "arch": bundle.arch, "preset": settings.preset, "budget": budget, "table3": table3, **scores,
        "search": {k: found[k] for k in ("strategy", "metric", "seconds", "candidates_per_second", "best", "validation",
                                          "budget", "cost_unit")
                   if k in found} | {"evaluated": len(found.get("candidates", []))},
        "faces": faces.name,
    }


def figure_samples(dataset, identities: int = 3, yaws: Sequence[int] = FIGURE_YAWS) -> list[list[int]]:
    """Dataset indices, one row per test identity (the first `identities`), one column per +yaw, neutral light."""
    index = {}
    for i, r in enumerate(dataset.records):
        if r.illumination == NEUTRAL_ILLUMINATION and r.yaw in yaws:
            index.setdefault((r.identity, r.yaw), i)
    names = sorted({r.identity for r in dataset.records if all((r.identity, y) in index for y in yaws)})[:identities]
    return [[index[(name, y)] for y in yaws] for name in names]


@torch.no_grad()
def face_rows(dataset, generators: Mapping[str, nn.Module], identities: int = 3) -> dict[str, torch.Tensor]:
    """Figure 3's rows: for each identity, the profile, the ground truth and each generator's output per yaw."""
    rows: dict[str, torch.Tensor] = {}
    for k, picks in enumerate(figure_samples(dataset, identities), start=1):
        items = [dataset[i] for i in picks]
        batch = {key: torch.stack([it[key] for it in items]) if isinstance(items[0][key], torch.Tensor)
                 else [it[key] for it in items] for key in items[0]}
        rows[f"#{k} profile"] = batch["profile"]
        rows[f"#{k} ground truth"] = batch["frontal"]
        for name, generator in generators.items():
            rows[f"#{k} {name}"] = frontalize_batch(generator.eval(), batch).clamp(-1, 1)
    return rows


def faces_figure(rows: Mapping[str, torch.Tensor], yaws: Sequence[int] = FIGURE_YAWS) -> Figure:
    """Figure 3: one row per named image stack of `face_rows` ((N, 3, S, S) in [-1, 1]), one column per yaw."""
    return plot_image_rows(rows, n=len(yaws), titles=[f"{yaw}°" for yaw in yaws])


# ----------------------------------------------------------------------------- the search figure
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
    import matplotlib.pyplot as plt

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


# ----------------------------------------------------------------------------- markdown
def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _ci(ci: Sequence[float] | None) -> str:
    return "" if not ci else f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def markdown(report: Mapping[str, Any]) -> str:
    """Table 3, Table 1 with intervals and paired differences, and the faces, as markdown."""
    t3, arch = report["table3"], report["arch"]
    columns = [c for c in report["teacher"]["rank1"] if c != "mean"] + ["mean"]
    scorer = report["scored_by"]
    lines = [f"# Compressed {arch} ({report['preset']} preset)", "",
             f"Table 3 (MACs per image, {t3['convention']} convention):", "",
             "| model | config | MACs | params | MACs ratio | params ratio |", "|---|---|---|---|---|---|",
             f"| teacher | – | {t3['teacher']['macs'] / 1e6:.1f} M | {t3['teacher']['params'] / 1e6:.3f} M | 1.0x | 1.0x |",
             f"| compressed | `{t3['student']['config']}` | {t3['student']['macs'] / 1e6:.1f} M | "
             f"{t3['student']['params'] / 1e6:.3f} M | {t3['macs_ratio']:.1f}x | {t3['params_ratio']:.1f}x |", "",
             f"Table 1 (rank-1 %, ±yaw merged, 95% bootstrap intervals over identities; test split: "
             f"{report['test']['identities']} identities, {report['test']['probes']} probes; scored by the "
             f"{scorer['role']} `{scorer['file']}`, sha256 {scorer['sha256'][:12]}):", "",
             "| | " + " | ".join(f"±{c}°" if c != "mean" else "mean" for c in columns) + " | L1 | SSIM |",
             "|---|" + "---|" * (len(columns) + 2)]
    rows = [("raw profiles", report["raw"]), ("teacher", report["teacher"]), ("compressed", report["student"])]
    for name, scores in rows:
        ci = scores.get("rank1_ci") or {}
        cells = [_pct(scores["rank1"].get(c)) + _ci(ci.get(c)) for c in columns]
        pixel = [f"{scores['l1']:.4f}", f"{scores['ssim']:.3f}"] if "l1" in scores else ["–", "–"]
        lines.append(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(pixel) + " |")
    diff = report["paired_difference"]
    lines.append("| compressed − teacher | " + " | ".join(
        f"{100 * diff['diff'][c]:+.1f}{_ci(diff['ci'][c])}" for c in columns) + " | "
        f"{report['student']['l1'] - report['teacher']['l1']:+.4f} | {report['student']['ssim'] - report['teacher']['ssim']:+.3f} |")
    search = report["search"]
    lines += ["", f"Search: {search.get('strategy')} on the validation identities, metric {search.get('metric')}, "
              f"{search.get('evaluated')} candidates in {search.get('seconds')} s "
              f"({search.get('candidates_per_second')} candidates/s); budget "
              f"{search.get('budget', report['budget']):,.6g} {search.get('cost_unit', 'MACs')}.", "",
              f"![faces per |yaw|: profile, ground truth, teacher, compressed]({report['faces']})", ""]
    return "\n".join(lines)
