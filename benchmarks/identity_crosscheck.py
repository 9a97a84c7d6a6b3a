"""Score the shipped quick teachers with a second identity network that no teacher was trained against.

    OMP_NUM_THREADS=2 python benchmarks/identity_crosscheck.py [--seed 1]

TP-GAN's identity-preserving loss and PIM's recognizer use the shipped identity network, which
also scores them (as in the paper's protocol). A network with the same spec (`QUICK_IDENTITY`,
near-frontal views) but another seed separates real identity preservation from matching that
one network's features. Prints a markdown table of rank-1 (%) per |yaw|; see docs/teachers.md.
"""
from __future__ import annotations

import argparse

from gancomp_lite.evaluate import evaluate
from gancomp_lite.models.lightcnn import train_identity_network
from gancomp_lite.teachers import QUICK_IDENTITY, QUICK_TEACHERS, _data, load_teacher, near_frontal

YAWS = ("90", "75", "60", "45", "30", "15", "mean")


def _row(name: str, rank1: dict[str, float]) -> str:
    return f"| {name} | " + " | ".join(f"{100 * rank1[y]:.1f}" for y in YAWS) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1, help="seed of the second identity network (shipped: 0)")
    args = parser.parse_args()
    spec = QUICK_IDENTITY
    _, train, test = _data("quick", 0)
    net = train_identity_network(near_frontal(train, spec.max_yaw), num_classes=len(train.identities),
                                 steps=spec.steps, seed=args.seed, variant=spec.variant, width=spec.width,
                                 input_size=spec.input_size, batch_size=spec.batch_size, lr=spec.lr, progress=False)
    print(f"| scored by the seed-{args.seed} identity network | " + " | ".join(f"±{y}" for y in YAWS[:-1])
          + " | mean |\n|" + "---|" * (len(YAWS) + 1), flush=True)
    for i, arch in enumerate(QUICK_TEACHERS):
        result = evaluate(test, net, load_teacher(arch)[0], progress=False)
        if i == 0:
            print(_row("raw profiles", result["rank1_raw"]), flush=True)
        print(_row(arch, result["rank1"]), flush=True)


if __name__ == "__main__":
    main()
