"""Benchmark SynthPIE: rendering speed (images/s, PNG writing included), the quick set, and a cached load.

    python benchmarks/bench_synthpie.py                    # 16 identities at 64x64, 3 illuminations
    python benchmarks/bench_synthpie.py --quick-set        # also the whole quick preset and its cached load
    python benchmarks/bench_synthpie.py --variety wide     # the wide-variety identities

Prints wall-clock and process CPU seconds and the machine's load average: the CPU is shared, so
wall-clock figures from a busy machine understate the renderer.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from data_tools.synthpie import ensure_synthpie, render_synthpie


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--illums", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variety", choices=["standard", "wide"], default="standard")
    parser.add_argument("--quick-set", action="store_true", help="also render the quick preset and time a cached load")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, device {args.device}, variety {args.variety}, "
          f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        render_synthpie(os.path.join(tmp, "warm"), ids=1, size=args.size, illums=1, progress=False, device=args.device)
        summary, wall, cpu = timed(lambda: render_synthpie(os.path.join(tmp, "bench"), ids=args.ids, size=args.size,
                                                           illums=args.illums, seed=args.seed, progress=False,
                                                           device=args.device, variety=args.variety))
        n = summary["images"]
        print(f"render {n} images at {args.size}x{args.size}: {wall:.2f} s wall = {n / wall:.1f} images/s "
              f"(process CPU {cpu:.2f} s; load average {os.getloadavg()[0]:.2f})")
        if args.quick_set:
            root, wall, cpu = timed(lambda: ensure_synthpie("quick", seed=args.seed, cache_dir=tmp, progress=False,
                                                            device=args.device, variety=args.variety))
            count = sum(1 for _ in root.rglob("*.png"))
            print(f"quick set, {count} images: {wall:.1f} s wall = {count / wall:.1f} images/s "
                  f"(process CPU {cpu:.1f} s; load average {os.getloadavg()[0]:.2f})")
            again, wall, _ = timed(lambda: ensure_synthpie("quick", seed=args.seed, cache_dir=tmp, progress=False,
                                                           variety=args.variety))
            assert again == root
            print(f"cached load: {wall * 1000:.1f} ms")


if __name__ == "__main__":
    main()
