"""Measured speed of teachers against compressed configs, where the time goes, and the latency predictor's error.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_latency.py --case tpgan-quick [--threads 2] \
        [--backends eager,channels_last,torchscript,onnxruntime] [--warmup 100] [--runs 100] [--predictor] \
        [--out runs/bench_latency]

Cases (students built from a config are untrained: latency does not depend on the weights' values):
    resnet9-quick   the shipped quick ResNet-9 teacher (64 px, ngf 24) against GAN Compression's mobile
                    config scaled to its widths (8_8_12_8_12_12_8_8, mobile-resnet9)
    resnet9-256     GAN Compression's own setting: ResNet-9 (ngf 64, 256 px) against its released
                    mobile student 16_16_32_16_32_32_16_16
    tpgan-quick     the shipped quick TP-GAN teacher (64 px, base 8) against its smallest config
    tpgan-full      the official TP-GAN (128 px, base 64) against a config with ~10x fewer MACs
    tpgan-shipped   the shipped quick TP-GAN teacher against its shipped compressed student (trained)
    tpgan-shipped-dense  the same student widths built without separable convolutions (untrained), against
                    the teacher's architecture (untrained): what the depthwise layers buy in time
Each case prints the Table-4-style markdown table, the roof (one large dense conv), the time and
MACs per layer kind of teacher and student, and with --predictor the latency table's error on
sampled configs; everything is also written as JSON under --out. Uptime's load is in the table.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from gancomp_lite.bench import (bench, example_inputs, load_models, macs_by_layer_kind, roofline_points,  # noqa: E402
                                time_by_layer_kind)
from gancomp_lite.checkpoint import read_manifest  # noqa: E402
from gancomp_lite.compress.pipeline import SHIPPED_FILE  # noqa: E402
from gancomp_lite.latency import LatencyPredictor, describe  # noqa: E402
from gancomp_lite.models.registry import channel_space  # noqa: E402
from gancomp_lite.teachers import WEIGHTS_DIR  # noqa: E402
from gancomp_lite.viz.bench import plot_roofline  # noqa: E402

TPGAN_FULL_STUDENT = "16_16_40_80_152_152_80_40_16_232_128_64_24_64_16_16_40_80_152"   # 9.9x fewer MACs
TPGAN_SHIPPED = WEIGHTS_DIR / SHIPPED_FILE.format(arch="tpgan", preset="quick")
CASES = {
    "resnet9-quick": {"arch": "resnet9", "config": "8_8_12_8_12_12_8_8", "student_arch": "mobile-resnet9"},
    "resnet9-256": {"arch": "resnet9", "size": 256, "knobs": {"ngf": 64}, "config": "16_16_32_16_32_32_16_16",
                    "student_arch": "mobile-resnet9"},
    "tpgan-quick": {"arch": "tpgan",
                    "config": channel_space("tpgan", 64, base=8, step=4).encode(
                        channel_space("tpgan", 64, base=8, step=4).smallest())},
    "tpgan-full": {"arch": "tpgan", "size": 128, "knobs": {}, "config": TPGAN_FULL_STUDENT},
    "tpgan-shipped": {"arch": "tpgan", "student": TPGAN_SHIPPED},
    "tpgan-shipped-dense": {"arch": "tpgan", "size": 64, "knobs": {"base": 8, "step": 2},
                            "config": read_manifest(TPGAN_SHIPPED)["config"]},
}


def layer_kinds(case: dict, threads: int, runs: int) -> list[dict]:
    """Time and MACs per layer kind of the case's teacher and student (eager)."""
    rows = []
    models = load_models(case["arch"], case.get("student"), case.get("config"), case.get("size"), case.get("knobs"),
                         case.get("student_arch"))
    for role, model, info, _ in models:
        times = time_by_layer_kind(model, example_inputs(model, info["size"]), runs=runs, warmup=2, threads=threads)
        macs = macs_by_layer_kind(info["arch"], info["config"], info["size"], **info["knobs"])
        rows.append({"role": role, "arch": info["arch"], "time_ms": times, "macs": macs})
    return rows


def kinds_markdown(rows: list[dict]) -> str:
    kinds = [k for k in rows[0]["time_ms"] if k != "total"]
    lines = ["| layer kind | " + " | ".join(f"{r['role']} ms (% time / % MACs)" for r in rows) + " |",
             "|---|" + "---|" * len(rows)]
    for kind in kinds:
        cells = []
        for r in rows:
            total_macs = sum(r["macs"].values())
            share = 100 * r["macs"].get(kind, 0) / total_macs if kind in r["macs"] else None
            cells.append(f"{r['time_ms'][kind]:.2f} ({100 * r['time_ms'][kind] / r['time_ms']['total']:.0f}% / "
                         + ("-" if share is None else f"{share:.0f}%") + ")")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines.append("| total | " + " | ".join(f"{r['time_ms']['total']:.2f}" for r in rows) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backends", default="eager,channels_last,torchscript,onnxruntime")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--profile-runs", type=int, default=5, help="forwards profiled per model (0: skip)")
    parser.add_argument("--predictor", action="store_true", help="build the latency table and report its error")
    parser.add_argument("--predictor-configs", type=int, default=6, help="sampled configs the error is measured on")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_latency"))
    args = parser.parse_args()
    case = CASES[args.case]
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict = {"case": args.case, "command": " ".join(["python benchmarks/bench_latency.py", f"--case {args.case}",
                    f"--threads {args.threads}", f"--backends {args.backends}", f"--warmup {args.warmup}",
                    f"--runs {args.runs}"] + (["--predictor"] if args.predictor else []))}

    report = bench(case["arch"], case.get("student"), case.get("config"), case.get("size"), case.get("knobs"),
                   args.backends.split(","), args.warmup, args.runs, args.threads, roofline=True,
                   student_arch=case.get("student_arch"))
    result["bench"] = report.to_dict()
    print(report.to_markdown(), "\n", flush=True)
    plot_roofline(report.roofline["gmacs_per_s"], roofline_points(report.models),
                  title=f"{args.case}, {args.threads} thread(s)").savefig(args.out / f"{args.case}_roofline.png", dpi=120)

    if args.profile_runs:
        result["layer_kinds"] = layer_kinds(case, args.threads, args.profile_runs)
        print(kinds_markdown(result["layer_kinds"]), "\n", flush=True)

    if args.predictor:
        teacher = report.models[0]
        start = time.perf_counter()
        predictor = LatencyPredictor.for_arch(case["arch"], teacher.size, teacher.knobs,
                                              table_path=args.out / f"{args.case}_latency_table_{args.threads}t.json",
                                              threads=args.threads)
        built = time.perf_counter() - start
        check = predictor.evaluate(n=args.predictor_configs, seed=7)
        result["predictor"] = {"describe": describe(predictor), "build_and_calibrate_s": built, **check,
                               "calibration": predictor.calibration}
        print(f"{describe(predictor)}; built and calibrated in {built:.1f} s")
        for row in check["rows"]:
            print(f"  {row['config']}: {row['macs'] / 1e9:.3f} G MACs, predicted {row['predicted_ms']:.2f} ms, "
                  f"measured {row['measured_ms']:.2f} ms ({100 * row['error']:+.0f}%)")
        print(f"  mean absolute percentage error {100 * check['mape']:.1f}%", flush=True)
    (args.out / f"{args.case}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
