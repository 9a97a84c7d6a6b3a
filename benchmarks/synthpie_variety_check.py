"""Is recognition across pose still hard on SynthPIE's wide identities? Raw-profile rank-1 under a judge.

    OMP_NUM_THREADS=2 python benchmarks/synthpie_variety_check.py [--variety wide] [--seed 0]

Renders (or loads from the cache) the quick set at the given variety, trains a judge to the shipped
judge's spec (`gancomp_lite.teachers.QUICK_JUDGE`: Light-CNN-29 on the near-frontal views of the
training identities) and prints the raw profiles' rank-1 per |yaw| on the test identities with 95%
intervals (bootstrap over identities), next to the shipped judge's figures on the standard set.
Issue 8 asks for below 30% at +-90 and far below the +-15 value. Nothing is written to
``gancomp_lite/weights``.
"""
from __future__ import annotations

import argparse
import time

from data_tools.dataset import load_splits
from data_tools.synthpie import VARIETIES, ensure_synthpie
from gancomp_lite.evaluate import evaluate
from gancomp_lite.models.lightcnn import train_identity_network
from gancomp_lite.presets import get_preset
from gancomp_lite.checkpoint import read_manifest
from gancomp_lite.teachers import JUDGE_FILE, QUICK_JUDGE, WEIGHTS_DIR, near_frontal

YAWS = ("90", "75", "60", "45", "30", "15", "mean")


def _row(name: str, rank1: dict, interval: dict) -> str:
    cells = [f"{100 * rank1[y]:.1f} [{100 * interval[y][0]:.0f}, {100 * interval[y][1]:.0f}]" for y in YAWS]
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variety", choices=VARIETIES, default="wide")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    size = get_preset("quick").image_size
    root = ensure_synthpie("quick", seed=args.seed, variety=args.variety)
    train, test = load_splits(root, "multipie", size=size)
    start = time.perf_counter()
    spec = QUICK_JUDGE
    judge = train_identity_network(near_frontal(train, spec.max_yaw), num_classes=len(train.identities),
                                   steps=spec.steps, seed=args.seed, variant=spec.variant, width=spec.width,
                                   input_size=spec.input_size, batch_size=spec.batch_size, lr=spec.lr, progress=False)
    metrics = evaluate(test, judge, None, progress=False)
    seconds = time.perf_counter() - start
    shipped = read_manifest(WEIGHTS_DIR / JUDGE_FILE.format(preset="quick"))["metrics"]
    print("| raw profiles, judge trained on | " + " | ".join(f"±{y}" if y != "mean" else y for y in YAWS) + " |")
    print("|---" * (len(YAWS) + 1) + "|")
    print(_row("standard (the shipped judge)", shipped["rank1_raw"], shipped["rank1_raw_ci"]))
    print(_row(f"{args.variety} (this run, {seconds:.0f} s)", metrics["rank1_raw"], metrics["rank1_raw_ci"]))


if __name__ == "__main__":
    main()
