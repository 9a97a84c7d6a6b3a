"""One place for what makes a run repeatable: the seeds of every random number generator an entry
point touches, and torch's CPU thread count (float sums are split per thread, so a run repeats bit for
bit only at the same count)."""
from __future__ import annotations

import contextlib
import random
from typing import Iterator

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch.Generator seeded the same way for explicit use."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Run torch on `threads` CPU threads inside the block (None: leave the count as it is), then
    restore the previous count.

    The quick networks are so small that a second thread barely helps: a TP-GAN supernet step runs
    at 1.45 steps/s on one thread and 0.90 on two (2-core machine), and on a busy shared machine the
    threads' synchronisation made a run about 10x slower.
    """
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
