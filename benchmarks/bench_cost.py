"""How many channel configs per second the analytic cost model evaluates (target: >= 10,000).

    python benchmarks/bench_cost.py [--configs 20000] [--seed 0]

For each registered family that builds (plus a synthetic 200-layer model with concatenated
layouts) it prints the layer-call count, the one-off trace time, and configs/s for one config at a
time (``CostModel.macs``, the search-loop call, with validation) and for a batch (``macs_batch``).
"setup s" is the one-off cost: building the teacher on the meta device and tracing it (the first
trace of a process also pays for loading PyTorch's meta kernels, a few seconds).
"""
from __future__ import annotations

import argparse
import random
import time

import torch
from torch import nn

from gancomp_lite.cost import CostModel, default_size
from gancomp_lite.models.registry import FAMILIES
from gancomp_lite.nn.blocks import ConvNormAct
from gancomp_lite.space import ChannelSpace


class Synthetic(nn.Module):
    """A deep stack of conv-norm-act layers, each reading the two previous groups concatenated."""

    def __init__(self, groups: int = 24, depth: int = 100, width: int = 64):
        super().__init__()
        names = [f"g{i}" for i in range(groups)]
        self.space = ChannelSpace.uniform("synthetic", {n: width for n in names})
        full = self.space.teacher()
        self.stem = ConvNormAct(3, (names[0], names[1]), full, 3)
        self.layers = nn.ModuleList(
            ConvNormAct((names[i % groups], names[(i + 1) % groups]), (names[(i + 1) % groups], names[(i + 2) % groups]),
                        full, 3) for i in range(depth))

    def forward(self, x):
        h = self.stem(x)
        for layer in self.layers:
            h = layer(h)
        return h


def bench(name: str, model: CostModel, setup: float, n: int, seed: int) -> None:
    rng = random.Random(seed)
    configs = [model.space.sample(rng) for _ in range(n)]
    start = time.perf_counter()
    for config in configs:
        model.macs(config)
    single = n / (time.perf_counter() - start)
    array = model.array(configs)
    start = time.perf_counter()
    model.macs_batch(array)
    batch = n / (time.perf_counter() - start)
    print(f"{name:<28} {len(model.calls):>6} {setup:>8.2f} {single:>14,.0f} {batch:>14,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'model':<28} {'calls':>6} {'setup s':>8} {'single cfg/s':>14} {'batch cfg/s':>14}")
    for arch in FAMILIES:
        start = time.perf_counter()
        try:
            model = CostModel.for_arch(arch, default_size(arch))
        except ImportError as err:
            print(f"{arch:<28} not available ({err})")
            continue
        bench(f"{arch} @{default_size(arch)}", model, time.perf_counter() - start, args.configs, args.seed)
    start = time.perf_counter()
    with torch.device("meta"):
        synthetic = CostModel(Synthetic(), 128)
    bench("synthetic 24 groups @128", synthetic, time.perf_counter() - start, args.configs, args.seed)


if __name__ == "__main__":
    main()
