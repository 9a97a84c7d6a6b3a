"""Supernet training under DDP (2 CPU processes, gloo): every rank samples the same sub-network each
step, so the ranks stay identical, as they do for the teachers (tests/test_ddp.py)."""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gancomp_lite.compress import supernet as S
from gancomp_lite.models.discriminator import PatchGAN
from gancomp_lite.models.registry import build
from gancomp_lite.train import TrainConfig
from test_supernet import TINY, _Pairs

WORLD = 2


def _worker(rank: int, root: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{root}/rendezvous", rank=rank, world_size=WORLD)
    try:
        size, teacher_knobs = TINY["resnet9"]
        torch.manual_seed(0)
        teacher = build("resnet9", None, size, **teacher_knobs).eval()
        cfg = TrainConfig(out_dir=f"{root}/supernet", steps=3, batch_size=2, seed=5, log_every=1, ckpt_every=100,
                          amp=False, progress=False)
        run = S.train_supernet("resnet9", teacher, _Pairs(), size=size,
                               knobs=S.student_design("resnet9", teacher_knobs), teacher_d_state=None,
                               make_d=lambda: PatchGAN(in_channels=6, ndf=8, n_layers=2), train_config=cfg)
        state = {f"{m}.{k}": v for m in ("G", "A", "D") for k, v in run.recipe.raw(m).state_dict().items()}
        torch.save(state, f"{root}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_ranks_train_the_same_supernet(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path),), nprocs=WORLD, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), f"{key} differs between ranks"
    torch.manual_seed(0)
    start = S.build_supernet("resnet9", build("resnet9", None, 32, ngf=8, step=4).eval(), 32,
                             S.student_design("resnet9", {"ngf": 8, "step": 4}), _Pairs().x[:16]).state_dict()
    assert any(not torch.equal(start[k], rank0[f"G.{k}"]) for k in start)      # it did train
