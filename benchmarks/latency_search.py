"""At equal predicted latency: the student searched under a MACs budget against the one searched under
a latency budget (issue 10, hardware-aware search).

    OMP_NUM_THREADS=1 python benchmarks/latency_search.py --macs-run runs/compress/resnet9-quick \
        --latency-run runs/compress/resnet9-quick-latency --md docs/latency_search_resnet9.md

Both folders are finished `gancomp-lite compress` runs of the same teacher (the latency run's budget
set to the MACs student's predicted latency). Both students are timed in one process, interleaved
(batch 1, eager, this machine's threads; median of the timed runs), and scored on the same test probes
by the judge, with the paired rank-1 difference.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gancomp_lite.bench import example_inputs, time_forward
from gancomp_lite.compress.pipeline import load_bundle
from gancomp_lite.compress.report import scoring_network
from gancomp_lite.evaluate import compare, evaluate, load_generator
from gancomp_lite.latency import LatencyPredictor
from gancomp_lite.teachers import quick_splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--macs-run", type=Path, required=True)
    parser.add_argument("--latency-run", type=Path, required=True)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds per student")
    parser.add_argument("--md", type=Path, default=None)
    args = parser.parse_args()
    runs = {"MACs budget": args.macs_run, "latency budget": args.latency_run}
    reports = {name: json.loads((path / "report.json").read_text()) for name, path in runs.items()}
    students = {name: load_generator(path / "student.pt") for name, path in runs.items()}
    bundle = load_bundle(reports["MACs budget"]["arch"], reports["MACs budget"]["preset"])
    predictor = LatencyPredictor.load(args.latency_run / "latency_table.json")
    inputs = example_inputs(students["MACs budget"], bundle.size)
    times: dict[str, list[float]] = {name: [] for name in students}
    for _ in range(args.rounds):
        for name, model in students.items():
            times[name] += time_forward(model, inputs, args.warmup, args.runs)
    preset = reports["MACs budget"]["preset"]
    judge, scored_by = scoring_network(preset)
    splits = quick_splits(preset)
    results = {name: evaluate(splits.test, judge, model, per_probe=True, progress=False) for name, model in students.items()}
    paired = compare(results["MACs budget"], results["latency budget"])
    lines = [f"{bundle.arch}, quick: the student searched under a MACs budget and the one searched under a latency "
             f"budget set to the first one's predicted latency ({torch.get_num_threads()} thread(s), batch 1, eager; "
             f"median of {args.rounds} x {args.runs} timed runs, interleaved; test split scored by the "
             f"{scored_by['role']} `{scored_by['file']}`)", "",
             "| search budget | config | MACs (M) | predicted ms | measured ms (median) | rank-1 mean [95% CI] | L1 |",
             "|---|---|---|---|---|---|---|"]
    for name, report in reports.items():
        config = report["table3"]["student"]["config"]
        median = sorted(times[name])[len(times[name]) // 2]
        ci = results[name]["rank1_ci"]["mean"]
        lines.append(f"| {name} | `{config}` | {report['table3']['student']['macs'] / 1e6:.1f} | "
                     f"{predictor.predict(config):.2f} | {median:.2f} | {100 * results[name]['rank1']['mean']:.1f} "
                     f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}] | {results[name]['l1']:.4f} |")
    lines += ["", f"Paired rank-1 difference (latency-budget student minus MACs-budget student): "
              f"{100 * paired['diff']['mean']:+.1f} [{100 * paired['ci']['mean'][0]:+.1f}, "
              f"{100 * paired['ci']['mean'][1]:+.1f}] points."]
    table = "\n".join(lines)
    print(table)
    if args.md:
        args.md.write_text(table + "\n")


if __name__ == "__main__":
    main()
