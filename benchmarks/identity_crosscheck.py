"""Score the shipped quick teachers with the judge and with a recognizer of another kind, with 95% intervals.

    OMP_NUM_THREADS=1 python benchmarks/identity_crosscheck.py [--scorer judge,hog,loss] [--paired-noise 0.05]
                                                               [--faces docs/img/teachers_quick.png]

The judge (Light-CNN-29, `gancomp_lite/weights/judge-quick.pt`) is used by no training objective;
the cross-check (HOG + Fisherfaces, `gancomp_lite.fisherfaces`) is not even a neural network, so a
teacher cannot score well under it by matching a Light-CNN's features. Prints one markdown table per
scorer (rank-1 % per |yaw| and mean, each with its 95% interval, bootstrap over test identities),
the half-width of each mean's interval and the number of test identities that would bring it to
+-1.5 points (width ~ 1/sqrt(identities)). With --paired-noise, also the paired difference between
ResNet-9 and a copy with Gaussian noise on its weights (relative std), the kind of small change that
compression makes: paired intervals are what the compression results quote. With --faces, writes
the picture of docs/teachers.md (rows per test identity: profile, ground truth, each teacher; columns:
yaw 90 ... 15 at illumination 07). See docs/teachers.md.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import default_collate

from gancomp_lite.evaluate import compare, evaluate, frontalize_batch
from gancomp_lite.teachers import (
    QUICK_TEACHERS,
    _data,
    crosscheck_recognizer,
    judge_sha256,
    load_identity,
    load_judge,
    load_teacher,
)

YAWS = ("90", "75", "60", "45", "30", "15", "mean")
TARGET = 0.015


def _row(name: str, rank1: dict[str, float], ci: dict[str, list[float]]) -> str:
    return f"| {name} | " + " | ".join(f"{100 * rank1[y]:.1f} [{100 * ci[y][0]:.1f}, {100 * ci[y][1]:.1f}]"
                                       for y in YAWS) + " |"


def _needed(ci: dict[str, list[float]], identities: int) -> str:
    half = (ci["mean"][1] - ci["mean"][0]) / 2
    return f"±{100 * half:.1f} points; ±1.5 needs about {identities * (half / TARGET) ** 2:.0f} test identities"


def teacher_faces(test, identities: int = 3, yaws: tuple[int, ...] = (90, 75, 60, 45, 30, 15)) -> np.ndarray:
    """(H, W, 3) uint8: per test identity, rows profile, ground truth and each shipped teacher's output."""
    generators = [load_teacher(arch)[0] for arch in QUICK_TEACHERS]
    rows = []
    for ident in range(identities):
        picks = [next(i for i, r in enumerate(test.records) if r.yaw == yaw and r.frontal_illumination == "07"
                      and test.identities.index(r.identity) == ident) for yaw in yaws]
        batch = default_collate([test[i] for i in picks])
        with torch.no_grad():
            images = [batch["profile"], batch["frontal"]] + [frontalize_batch(g, batch).clamp(-1, 1) for g in generators]
        rows += [torch.cat(list(image), dim=2) for image in images]
    grid = torch.cat(rows, dim=1).permute(1, 2, 0)
    return ((grid.numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scorer", default="judge,hog", help="comma list of judge, hog, loss")
    parser.add_argument("--paired-noise", type=float, default=0.0, help="relative weight noise for the paired example")
    parser.add_argument("--faces", type=Path, default=None, help="write the teachers' faces to this PNG")
    args = parser.parse_args()
    _, train, test = _data("quick", 0)
    if args.faces:
        image = Image.fromarray(teacher_faces(test))
        image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(args.faces, optimize=True)
    scorers = {"judge": lambda: load_judge(), "hog": lambda: crosscheck_recognizer(train), "loss": lambda: load_identity()}
    titles = {"judge": f"judge (Light-CNN-29, sha256 {judge_sha256()[:12]})", "hog": "HOG + Fisherfaces",
              "loss": "loss network (Light-CNN-9)"}
    for key in filter(None, args.scorer.split(",")):
        net = scorers[key]()
        print(f"\n| scored by the {titles[key]} | " + " | ".join(f"±{y}" for y in YAWS[:-1]) + " | mean |\n|"
              + "---|" * (len(YAWS) + 1), flush=True)
        notes = []
        for i, arch in enumerate(QUICK_TEACHERS):
            start = time.perf_counter()
            result = evaluate(test, net, load_teacher(arch)[0], progress=False)
            seconds = time.perf_counter() - start
            if i == 0:
                print(_row("raw profiles", result["rank1_raw"], result["rank1_raw_ci"]), flush=True)
                notes.append(f"raw profiles: {_needed(result['rank1_raw_ci'], result['n_identities'])}")
            print(_row(arch, result["rank1"], result["rank1_ci"]), flush=True)
            notes.append(f"{arch}: {_needed(result['rank1_ci'], result['n_identities'])} ({seconds:.0f} s to evaluate)")
        print("\n" + "\n".join(notes), flush=True)
    if args.paired_noise > 0:
        generator = load_teacher("resnet9")[0]
        noisy = load_teacher("resnet9")[0]
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in noisy.parameters():
                p.add_(args.paired_noise * p.std() * torch.randn(p.shape, generator=gen))
        judge = load_judge()
        paired = compare(evaluate(test, judge, generator, per_probe=True, progress=False),
                         evaluate(test, judge, noisy, per_probe=True, progress=False))
        print(f"\nresnet9 with {args.paired_noise} relative weight noise minus resnet9 (judge, rank-1 points): "
              + ", ".join(f"{y}: {100 * paired['diff'][y]:+.1f} [{100 * paired['ci'][y][0]:+.1f}, "
                          f"{100 * paired['ci'][y][1]:+.1f}]" for y in YAWS))


if __name__ == "__main__":
    main()
