"""Distillation baselines at equal MACs: scratch, output-only and 1x1 feature distillation (eq. 4-5).

    python benchmarks/distill_baselines.py --arch tpgan --steps 600 [--seed 0] [--width 0.5] [--sweep] [--parallel 4]

One student config (every channel group at about `--width` of the shipped quick teacher's, rounded
to an allowed step) is trained with the same steps, batch, optimizer and seed: from scratch (the
teacher's objective only), with an L1 term to the teacher's output, with 1x1-adapter feature
distillation at every tap, and the same with a random instead of the inherited discriminator.
Each run is one ``gancomp-lite distill`` process (``--parallel`` at a time) and is evaluated on the
test identities. Prints a markdown table (MACs in the `gancomp` convention, see
`gancomp_lite.cost`) and writes it to ``docs/distill_baselines.md`` (for readers) and, as package data
for notebook 02, to ``gancomp_lite/results/distill_baselines_<arch>.json``. ``--sweep`` adds runs with
single taps and lambda_distill in {0.1, 1, 10} and writes the sweep notebook 02 reads
(``gancomp_lite/results/distill_sweep_<arch>.json``). Files are rewritten as runs finish.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import torch

from gancomp_lite.compress.distillation import scaled_config
from gancomp_lite.teachers import WEIGHTS_DIR, load_teacher
from gancomp_lite.viz.distill import (baselines_measurement, baselines_path, sweep_from_summaries, sweep_path,
                                     sweep_table)

BASELINES = {"scratch": ("scratch", None, None, False), "output": ("output", None, None, False),
             "feature": ("feature", None, 1.0, False), "feature, random D": ("feature", None, 1.0, True)}
SWEEP_TAPS = {"tpgan": ("dec16", "dec64", "recon128"), "resnet9": ("down2", "block9")}
SWEEP_LAMBDAS = (0.1, 1.0, 10.0)


def jobs(arch: str, sweep: bool) -> dict[str, tuple]:
    """label -> (mode, taps or None = all, lambda_distill or None = the mode's default, random D)."""
    todo = dict(BASELINES)
    if sweep:
        for taps in [None, *[(t,) for t in SWEEP_TAPS[arch]]]:
            for lam in SWEEP_LAMBDAS:
                if taps is None and lam == BASELINES["feature"][2]:
                    continue                                   # that is the "feature" baseline
                todo[f"feature {'+'.join(taps) if taps else 'all'} λ={lam:g}"] = ("feature", taps, lam, False)
    return todo


def run_job(arch: str, config: str, steps: int, seed: int, batch_size: int | None, weights: Path | None, out: Path,
            job: tuple) -> dict:
    mode, taps, lam, random_d = job
    cmd = [sys.executable, "-m", "gancomp_lite.cli", "distill", "--arch", arch, "--config", config, "--mode", mode,
           "--steps", str(steps), "--seed", str(seed), "--out", str(out)]
    cmd += ["--weights", str(weights)] if weights else []
    cmd += ["--taps", ",".join(taps)] if taps else []
    cmd += ["--lambda-distill", str(lam)] if lam is not None else []
    cmd += ["--batch-size", str(batch_size)] if batch_size else []
    cmd += ["--random-d"] if random_d else []
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads((out / "summary.json").read_text())


def _rank1_cells(rank1: dict, yaws: list[str]) -> str:
    return " | ".join(f"{100 * rank1[y]:.1f}" for y in ["mean", *yaws])


def table(results: dict[str, dict]) -> str:
    first = next(iter(results.values()))
    yaws = sorted((k for k in first["metrics"]["rank1"] if k != "mean"), key=int)
    head = ["student", "D", "MACs (M)", "params (M)", "L1", "SSIM", "rank-1 mean", *[f"{y}°" for y in yaws]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    teacher = first["teacher"]
    tm = teacher.get("metrics") or {}
    if tm:
        lines.append(f"| teacher `{teacher['config']}` | – | {teacher['macs'] / 1e6:.1f} | {teacher['params'] / 1e6:.3f} | "
                     f"{tm['l1']:.4f} | {tm['ssim']:.3f} | {_rank1_cells(tm['rank1'], yaws)} |")
        lines.append(f"| raw profiles (no generator) | – | – | – | {tm['raw']['l1']:.4f} | {tm['raw']['ssim']:.3f} | "
                     f"{_rank1_cells(tm['rank1_raw'], yaws)} |")
    for label, s in results.items():
        m = s["metrics"]
        d = "inherited" if s["d_source"].startswith("inherited") else "random"
        lines.append(f"| {label} | {d} | {s['macs'] / 1e6:.1f} | {s['params'] / 1e6:.3f} | {m['l1']:.4f} | "
                     f"{m['ssim']:.3f} | {_rank1_cells(m['rank1'], yaws)} |")
    return "\n".join(lines)


def baselines_doc(results: dict[str, dict], args: argparse.Namespace, config: str, device: str, seconds: float) -> str:
    s = results["scratch"]
    command = (f"python benchmarks/distill_baselines.py --arch {args.arch} --steps {args.steps} --seed {args.seed} "
               f"--width {args.width:g}" + (f" --batch-size {args.batch_size}" if args.batch_size else "")
               + (" --sweep" if args.sweep else "") + f" --parallel {args.parallel}")
    return "\n".join([
        f"# Distillation baselines at equal MACs ({args.arch}, quick preset)", "",
        f"Student `{config}` (every channel group at about {args.width:g} x the teacher's width) of the quick "
        f"teacher `{s['teacher']['config']}`. Every student: {args.steps} steps, batch {s['batch_size']}, seed "
        f"{args.seed}, the teacher's objective and optimizer. *output*: plus an L1 term to the teacher's image, "
        f"weight {results['output']['lambda_distill']:g}. *feature*: plus eq. 4 over the taps "
        f"{', '.join(s['teacher']['taps'])} with 1x1 adapters, lambda_distill {results['feature']['lambda_distill']:g}. "
        f"D *inherited*: the student's D starts from the teacher's D; *random*: from random weights.", "",
        f"MACs per image in the `gancomp` convention (`gancomp_lite.cost`), {s['size']}x{s['size']} input. Test "
        f"identities of SynthPIE quick; L1 and SSIM against the ground-truth frontal in [0, 1]; rank-1 (%) by cosine "
        f"similarity of the shipped Light-CNN's features, ±yaw merged. Teacher and raw-profile rows: the teacher "
        f"checkpoint's own evaluation.", "",
        table(results), "",
        f"Command: `{command}` on {device}; {seconds:.0f} s wall time for all runs.", "",
        "One seed per row, short runs on synthetic data. GAN training on a GPU is not bit-reproducible: compare "
        "rows only where they differ by more than the spread between repeats of the same command.",
        "",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["tpgan", "resnet9"], default="tpgan")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=float, default=0.5, help="student width as a fraction of the teacher's")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the teacher's")
    parser.add_argument("--parallel", type=int, default=1, help="runs at a time (each one process)")
    parser.add_argument("--sweep", action="store_true", help="also the taps x lambda_distill sweep of notebook 02")
    parser.add_argument("--md", type=Path, default=None,
                        help="default docs/distill_baselines.md for tpgan, docs/distill_baselines_<arch>.md otherwise")
    parser.add_argument("--sweep-json", type=Path, default=None, help="default gancomp_lite/results/distill_sweep_<arch>.json")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/distill_baselines"))
    parser.add_argument("--weights", type=Path, default=None, help="folder of the shipped teachers (default: the package's)")
    args = parser.parse_args()

    args.md = args.md or Path("docs/distill_baselines.md" if args.arch == "tpgan" else f"docs/distill_baselines_{args.arch}.md")
    args.sweep_json = args.sweep_json or sweep_path(args.arch)
    _, manifest = load_teacher(args.arch, weights_dir=args.weights or WEIGHTS_DIR)
    config = scaled_config(args.arch, manifest["size"], manifest["knobs"], args.width)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    todo = jobs(args.arch, args.sweep)
    print(f"{args.arch} student {config}; {len(todo)} runs of {args.steps} steps, seed {args.seed}; {device}", flush=True)

    results: dict[str, dict] = {}
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        futures = {pool.submit(run_job, args.arch, config, args.steps, args.seed, args.batch_size, args.weights,
                               args.work_dir / f"run{i:02d}", job): label for i, (label, job) in enumerate(todo.items())}
        for future in as_completed(futures):
            label = futures[future]
            results[label] = summary = future.result()
            print(f"  {label}: {summary['train_seconds_last_call']} s, L1 {summary['metrics']['l1']:.4f}, "
                  f"rank-1 {summary['metrics']['rank1']['mean']:.1%}", flush=True)
            if all(name in results for name in BASELINES):
                ordered = {name: results[name] for name in BASELINES}
                args.md.parent.mkdir(parents=True, exist_ok=True)
                args.md.write_text(baselines_doc(ordered, args, config, device, time.perf_counter() - start))
                measurement = baselines_measurement(ordered, label=device, device=device, command=" ".join(sys.argv),
                                                    steps=args.steps, seed=args.seed)
                baselines_path(args.arch).write_text(json.dumps(
                    {"arch": args.arch, "student_config": config, "convention": "gancomp",
                     "source": "benchmarks/distill_baselines.py", "measurements": [measurement]}, indent=1) + "\n")
            if args.sweep:
                args.sweep_json.parent.mkdir(parents=True, exist_ok=True)
                sweep = sweep_from_summaries(list(results.values()), device)
                args.sweep_json.write_text(json.dumps(sweep, separators=(",", ":")) + "\n")
    print(table({name: results[name] for name in BASELINES}))
    if args.sweep:
        print(sweep_table(sweep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
