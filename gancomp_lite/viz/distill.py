"""Notebook 02 (feature distillation): the gradient-agreement probe, the taps x lambda_distill sweep and its explorer.

Why output distillation is weak for a deterministic generator, measured: for a paired task the
teacher's image T(x) is one more target image close to the ground truth y, so the gradient of
||G'(x) - T(x)||_1 points almost where the gradient of ||G'(x) - y||_1 already points; the
feature term (eq. 4) pulls on the student's hidden layers with signals the image losses do not
carry. `gradient_agreement` measures the cosine between these gradients.

The sweep (``benchmarks/distill_baselines.py --sweep``) distills one quick student per (taps,
lambda_distill), plus a scratch and an output-distillation run at equal MACs; `sweep_from_summaries`
keeps their loss histories and test metrics as JSON (``gancomp_lite/results/distill_sweep_<arch>.json``,
package data), so the widget only reads it; the four equal-MACs baselines are in
``gancomp_lite/results/distill_baselines_<arch>.json`` (`load_baselines`). Every record names the
teacher it was measured on; `teacher_provenance` compares it with the shipped teacher, so a notebook
can say plainly when a result predates the teacher it ships. Plots are pure functions.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from gancomp_lite.distill import FeatureAdapters, distill_loss, feature_taps
from gancomp_lite.presets import RESULTS_DIR, result_file
ALL_TAPS = "all"
PIXEL_TERMS = ("loss_G_pixel", "loss_G_recon")        # TP-GAN's multi-scale L1, pix2pix's L1 (eq. 2)


# ------------------------------------------------------------------ why features: gradient agreement
def _flat_grad(loss: torch.Tensor, params: Sequence[nn.Parameter]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)])


def gradient_agreement(student: nn.Module, teacher: nn.Module, adapters: FeatureAdapters,
                       profile: torch.Tensor, frontal: torch.Tensor) -> dict[str, float]:
    """Cosines between the student's weight gradients of three losses on one batch.

    "output vs ground truth": L1 to T(x) against L1 to y (near 1: output distillation adds little);
    "feature vs ground truth": the feature term (eq. 4) against L1 to y. Also the teacher's own L1
    to y, to show how close T(x) is to the target.
    """
    params = [p for p in student.parameters() if p.requires_grad]
    with torch.no_grad():
        teacher_out = teacher.forward_all(profile)
    outputs = student.forward_all(profile)
    g_truth = _flat_grad(F.l1_loss(outputs["image"], frontal), params)
    g_output = _flat_grad(F.l1_loss(outputs["image"], teacher_out["image"]), params)
    taps = list(adapters.keys())
    g_feature = _flat_grad(distill_loss(feature_taps(teacher_out, taps), feature_taps(outputs, taps), adapters), params)
    return {
        "output vs ground truth": F.cosine_similarity(g_output, g_truth, dim=0).item(),
        "feature vs ground truth": F.cosine_similarity(g_feature, g_truth, dim=0).item(),
        "teacher L1 to ground truth": F.l1_loss(teacher_out["image"], frontal).item(),
    }


def signal_sizes(teacher: nn.Module, profile: torch.Tensor) -> dict[str, int]:
    """Numbers per input that each target gives the student: the output image, then each feature tap."""
    with torch.no_grad():
        outputs = teacher.forward_all(profile[:1])
    sizes = {"output image": outputs["image"].numel()}
    sizes.update({f"tap {name}": feat.numel() for name, feat in feature_taps(outputs).items()})
    return sizes


# ------------------------------------------------------------------ the sweep
def taps_label(taps: Iterable[str] | None, all_taps: Sequence[str]) -> str:
    """"all" for every tap, else the names joined by "+" in the generator's order."""
    chosen = list(all_taps) if taps is None else [t for t in all_taps if t in set(taps)]
    return ALL_TAPS if chosen == list(all_taps) else "+".join(chosen)


def sweep_from_summaries(summaries: Sequence[Mapping[str, Any]], device: str = "") -> dict[str, Any]:
    """The sweep record notebook 02 reads, from `distillation.run_stage` summaries of one student config.

    The runs must share arch, config, steps, seed and batch (a fair comparison); random-D runs are left out.
    """
    runs = [s for s in summaries if s["d_source"].startswith("inherited")]
    if not runs:
        raise ValueError("no run with the inherited discriminator among the summaries")
    first = runs[0]
    for key in ("arch", "config", "steps", "seed", "batch_size"):
        differing = sorted({str(s[key]) for s in runs})
        if len(differing) > 1:
            raise ValueError(f"sweep runs differ in {key}: {differing}; a sweep compares runs that differ only in the teacher term")
    all_taps = first["teacher"]["taps"]
    return {
        "arch": first["arch"], "config": first["config"], "steps": first["steps"], "seed": first["seed"],
        "batch_size": first["batch_size"], "macs": first["macs"], "params": first["params"],
        "convention": first["convention"], "teacher": first["teacher"], "all_taps": all_taps, "device": device,
        "runs": sorted(({"mode": s["mode"], "taps": taps_label(s["taps"], all_taps) if s["taps"] else None,
                         "lambda_distill": s["lambda_distill"], "history": _rounded(s["history"]),
                         "metrics": {k: s["metrics"][k] for k in ("l1", "ssim", "psnr", "rank1", "id_fid")},
                         "train_seconds": s["train_seconds_last_call"]} for s in runs), key=_run_order),
    }


def _run_order(run: Mapping[str, Any]) -> tuple:
    return ("scratch", "output", "feature").index(run["mode"]), run["taps"] != ALL_TAPS, run["taps"] or "", run["lambda_distill"]


def _rounded(rows: Sequence[Mapping[str, float]]) -> list[dict[str, float]]:
    """Logged losses to 4 significant digits: plenty for curves, a quarter of the file."""
    return [{k: float(f"{v:.4g}") for k, v in row.items()} for row in rows]


def sweep_path(arch: str) -> Path:
    """Where the precomputed sweep of `arch`'s quick teacher lives (``results/distill_sweep_<arch>.json``)."""
    return RESULTS_DIR / f"distill_sweep_{arch}.json"


def load_sweep(arch: str = "tpgan", path: Path | None = None) -> dict[str, Any]:
    """The precomputed sweep of `arch` (see `sweep_from_summaries`); a missing file names the command that writes it."""
    writer = f"python benchmarks/distill_baselines.py --arch {arch} --sweep"
    if path is None:
        path = result_file(sweep_path(arch).name, writer)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no distillation sweep; write it with `{writer}`")
    sweep = json.loads(path.read_text())
    if not sweep.get("runs"):
        raise ValueError(f"{path}: the sweep has no runs")
    return sweep


# ------------------------------------------------------------------ the equal-MACs baselines
BASELINE_STUDENTS = ("scratch", "output", "feature", "feature, random D")


def baselines_path(arch: str) -> Path:
    """Where the equal-MACs baselines of `arch` live (``gancomp_lite/results/distill_baselines_<arch>.json``)."""
    return RESULTS_DIR / f"distill_baselines_{arch}.json"


def load_baselines(arch: str = "resnet9", path: Path | None = None) -> dict[str, Any]:
    """The baselines record of `arch`: ``{"arch", "student_config", "measurements": [...]}``, each measurement
    with its label, device, command, steps, "teacher" (sha256, steps), "scored_by" and "rows" (see
    `baselines_measurement`)."""
    path = Path(path) if path is not None else result_file(baselines_path(arch).name,
                                                           f"python benchmarks/distill_baselines.py --arch {arch}")
    record = json.loads(path.read_text())
    if not record.get("measurements") or not all(m.get("rows") for m in record["measurements"]):
        raise ValueError(f"{path}: a baselines record needs measurements with rows")
    return record


def baselines_measurement(summaries: Mapping[str, Mapping[str, Any]], *, label: str, device: str, command: str,
                          steps: int, seed: int) -> dict[str, Any]:
    """One measurement of `load_baselines`'s record from `distillation.run_stage` summaries ({student label: summary}):
    the teacher and raw-profile rows (the teacher checkpoint's own evaluation), then one row per student."""
    first = next(iter(summaries.values()))
    teacher = first["teacher"]
    rows = []
    tm = teacher.get("metrics") or {}
    if tm:
        rows.append({"student": "teacher", "D": None, "macs_m": teacher["macs"] / 1e6, "params_m": teacher["params"] / 1e6,
                     "l1": tm["l1"], "ssim": tm["ssim"], "rank1": tm["rank1"]})
        rows.append({"student": "raw profiles", "D": None, "macs_m": None, "params_m": None, "l1": tm["raw"]["l1"],
                     "ssim": tm["raw"]["ssim"], "rank1": tm["rank1_raw"]})
    for name, summary in summaries.items():
        m = summary["metrics"]
        rows.append({"student": name, "D": "inherited" if summary["d_source"].startswith("inherited") else "random",
                     "macs_m": summary["macs"] / 1e6, "params_m": summary["params"] / 1e6, "l1": m["l1"], "ssim": m["ssim"],
                     "rank1": m["rank1"]})
    return {"label": label, "device": device, "steps": steps, "seed": seed, "command": command,
            "teacher": {"sha256": teacher.get("sha256"), "steps": teacher.get("steps"), "note": teacher.get("note", "")},
            "scored_by": {"sha256": first.get("judge_sha256"), "note": "the judge" if first.get("judge_sha256") else ""},
            "rows": rows}


def baseline_row(measurement: Mapping[str, Any], student: str) -> dict[str, Any]:
    """The row of `student` ("teacher", "raw profiles", "scratch", "output", "feature", "feature, random D")."""
    for row in measurement["rows"]:
        if row["student"] == student:
            return row
    raise KeyError(f"no {student!r} row; rows: {[r['student'] for r in measurement['rows']]}")


def baselines_table(measurement: Mapping[str, Any]) -> str:
    """One measurement as a markdown table: student, D, MACs, L1, SSIM, mean rank-1 and rank-1 per |yaw|."""
    yaws = sorted((k for k in measurement["rows"][0]["rank1"] if k != "mean"), key=int)
    lines = ["| student | D | MACs (M) | L1 | SSIM | rank-1 mean (%) | " + " | ".join(f"{y}°" for y in yaws) + " |",
             "|" + "---|" * (6 + len(yaws))]
    for row in measurement["rows"]:
        macs = "–" if row["macs_m"] is None else f"{row['macs_m']:.1f}"
        lines.append(f"| {row['student']} | {row['D'] or '–'} | {macs} | {row['l1']:.4f} | {row['ssim']:.3f} | "
                     f"{100 * row['rank1']['mean']:.1f} | " + " | ".join(f"{100 * row['rank1'][y]:.1f}" for y in yaws) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------ which teacher a result was measured on
def shipped_teacher_manifest(arch: str) -> dict[str, Any] | None:
    """The manifest of the shipped quick teacher of `arch` (``gancomp_lite/weights/<arch>-quick.json``), or None."""
    from gancomp_lite.teachers import WEIGHTS_DIR

    path = WEIGHTS_DIR / f"{arch}-quick.json"
    return json.loads(path.read_text()) if path.is_file() else None


def teacher_summary(arch: str) -> str:
    """One line on the shipped quick teacher of `arch`, from its manifest: steps, hash, and its scores by the
    judge (mean and ±90 rank-1 against the raw profiles, L1, SSIM)."""
    manifest = shipped_teacher_manifest(arch)
    if manifest is None:
        return f"{arch}: no shipped quick teacher"
    m = manifest["metrics"]
    return (f"shipped {arch} quick teacher: {manifest.get('steps', '?')} steps, sha256 {manifest['sha256'][:8]}…; "
            f"scored by the judge: mean rank-1 {100 * m['rank1']['mean']:.1f}% (raw profiles {100 * m['rank1_raw']['mean']:.1f}%), "
            f"at ±90° {100 * m['rank1']['90']:.1f}% (raw {100 * m['rank1_raw']['90']:.1f}%); L1 {m['l1']:.3f}, SSIM {m['ssim']:.3f}")


def teacher_provenance(arch: str, sha256: str | None, steps: int | None = None) -> dict[str, Any]:
    """Was a result measured on the teacher that ships today? ``{"shipped": bool, "text": str}``.

    Compares the recorded teacher checkpoint hash with the shipped manifest's; the text names both
    (hash prefix and training steps) so a notebook can print it instead of quoting stale numbers.
    """
    manifest = shipped_teacher_manifest(arch)
    if manifest is None:
        return {"shipped": False, "text": f"{arch}: no shipped quick teacher to compare with"}
    recorded = f"{(sha256 or 'unknown')[:8]}…" + (f", {steps} steps" if steps else "")
    shipped = f"{manifest['sha256'][:8]}…, {manifest.get('steps', '?')} steps"
    if sha256 == manifest["sha256"]:
        return {"shipped": True, "text": f"{arch}: measured on the shipped teacher ({shipped})"}
    return {"shipped": False,
            "text": f"{arch}: measured on an OLDER teacher ({recorded}), not the shipped one ({shipped}); "
                    f"these numbers describe that older teacher only"}


def tap_choices(sweep: Mapping[str, Any]) -> list[str]:
    return sorted({run["taps"] for run in sweep["runs"] if run["mode"] == "feature"}, key=lambda t: (t != ALL_TAPS, t))


def lambda_choices(sweep: Mapping[str, Any]) -> list[float]:
    return sorted({run["lambda_distill"] for run in sweep["runs"] if run["mode"] == "feature"})


def find_run(sweep: Mapping[str, Any], mode: str, taps: str | None = None, lambda_distill: float | None = None) -> dict:
    """The run of `mode` (and, for feature runs, `taps` label and `lambda_distill`)."""
    for run in sweep["runs"]:
        if run["mode"] == mode and (mode != "feature" or (run["taps"] == taps and run["lambda_distill"] == lambda_distill)):
            return run
    raise KeyError(f"no {mode} run with taps={taps!r}, lambda_distill={lambda_distill}; "
                   f"taps {tap_choices(sweep)}, lambdas {lambda_choices(sweep)}")


def history(run: Mapping[str, Any]) -> dict[str, list[float]]:
    """A run's log as ``{"step": [...], term: [...]}`` (the format of `gancomp_lite.viz` loss plots)."""
    columns: dict[str, list[float]] = {"step": []}
    for row in run["history"]:
        columns["step"].append(row["step"])
        for key, value in row.items():
            if key != "step":
                columns.setdefault(key, []).append(value)
    return columns


def _pixel_term(columns: Mapping[str, Any]) -> str:
    return next(name for name in PIXEL_TERMS if name in columns)


def plot_sweep_run(sweep: Mapping[str, Any], taps: str, lambda_distill: float) -> Figure:
    """The explorer's picture: the chosen feature run against scratch and output distillation.

    Left: the pixel loss to the ground truth during training; middle: the distillation term;
    right: test L1 and rank-1 of the three students (equal MACs).
    """
    runs = {"scratch": find_run(sweep, "scratch"), "output": find_run(sweep, "output"),
            f"feature ({taps}, λ={lambda_distill:g})": find_run(sweep, "feature", taps, lambda_distill)}
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.1))
    for label, run in runs.items():
        cols = history(run)
        axes[0].plot(cols["step"], cols[_pixel_term(cols)], label=label)
        if "loss_G_distill" in cols:
            axes[1].plot(cols["step"], cols["loss_G_distill"], label=label,
                         color="tab:orange" if run["mode"] == "output" else "tab:green")
    axes[0].set_title("pixel L1 to the ground truth (train)", fontsize=9)
    axes[1].set_title("λ · L_distill (train)", fontsize=9)
    axes[1].set_yscale("log")
    for ax in axes[:2]:
        ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    names = list(runs)
    l1 = [runs[n]["metrics"]["l1"] for n in names]
    rank1 = [100 * runs[n]["metrics"]["rank1"]["mean"] for n in names]
    x = torch.arange(len(names)).numpy()
    axes[2].bar(x - 0.2, l1, 0.4, color="tab:blue", label="test L1 (lower is better)")
    twin = axes[2].twinx()
    twin.bar(x + 0.2, rank1, 0.4, color="tab:red", label="rank-1 % (higher is better)")
    axes[2].set_xticks(x, ["scratch", "output", "feature"], fontsize=8)
    axes[2].set_ylabel("test L1", color="tab:blue", fontsize=8)
    twin.set_ylabel("rank-1 (%)", color="tab:red", fontsize=8)
    axes[2].set_title(f"test, {sweep['macs'] / 1e6:.0f}M MACs each ({sweep['convention']})", fontsize=9)
    sha = ((sweep.get("teacher") or {}).get("sha256") or "unknown")[:8]
    fig.suptitle(f"{sweep['arch']} sweep (teacher {sha}…, {sweep.get('steps', '?')} steps per student on {sweep.get('device') or '?'}): "
                 f"scratch, output and feature ({taps}, λ={lambda_distill:g}) students at equal MACs", fontsize=9)
    fig.tight_layout()
    return fig


def _show_sweep_run(sweep: Mapping[str, Any], taps: str, lambda_distill: float) -> None:
    plot_sweep_run(sweep, taps, lambda_distill)
    plt.show()


def distill_explorer(sweep: Mapping[str, Any]):
    """Taps and lambda_distill controls over the precomputed sweep, redrawing `plot_sweep_run` (a VBox)."""
    import ipywidgets as W

    taps = W.Dropdown(options=tap_choices(sweep), value=tap_choices(sweep)[0], description="taps")
    lambdas = lambda_choices(sweep)
    lam = W.SelectionSlider(options=[(f"{v:g}", v) for v in lambdas], value=lambdas[len(lambdas) // 2],
                            description="λ_distill", continuous_update=False)
    out = W.interactive_output(functools.partial(_show_sweep_run, sweep), {"taps": taps, "lambda_distill": lam})
    return W.VBox([W.HBox([taps, lam]), out])


def sweep_table(sweep: Mapping[str, Any]) -> str:
    """Every run of the sweep as a markdown table (mode, taps, lambda, test L1, SSIM, rank-1)."""
    lines = ["| mode | taps | λ_distill | L1 | SSIM | rank-1 (%) |", "|---|---|---|---|---|---|"]
    for run in sweep["runs"]:
        m = run["metrics"]
        lines.append(f"| {run['mode']} | {run['taps'] or '–'} | {run['lambda_distill']:g} | {m['l1']:.4f} | "
                     f"{m['ssim']:.3f} | {100 * m['rank1']['mean']:.1f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------ the notebook's teacher
def notebook_teacher(arch: str = "tpgan", size: int = 64, seed: int = 0) -> dict[str, Any]:
    """The shipped quick teacher with its D (``shipped`` True), or else a fresh random one of the same shape.

    Returns ``{"generator", "discriminator", "make_d", "size", "knobs", "shipped"}``: the live cells
    run either way; only the shipped teacher makes the numbers meaningful.
    """
    from gancomp_lite.models.registry import build
    from gancomp_lite.teachers import QUICK_TEACHERS, TEACHER_FILE, WEIGHTS_DIR, build_discriminator, load_teacher

    spec = QUICK_TEACHERS[arch]
    shipped = (WEIGHTS_DIR / TEACHER_FILE.format(arch=arch, preset="quick")).is_file()
    if shipped:
        generator, discriminator, manifest = load_teacher(arch, with_discriminator=True)
        size, knobs = manifest["size"], dict(manifest["knobs"])
        kind, d_knobs = manifest["discriminator"]["kind"], manifest["discriminator"]["knobs"]
    else:
        torch.manual_seed(seed)
        knobs, (kind, d_knobs) = dict(spec.knobs), spec.discriminator
        generator = build(arch, None, size, **knobs).eval()
        discriminator = build_discriminator(kind, size, **d_knobs)
    return {"generator": generator, "discriminator": discriminator, "size": size, "knobs": knobs,
            "make_d": functools.partial(build_discriminator, kind, size, **d_knobs), "shipped": shipped}
