"""Shared fixtures: one torch thread, and tiny data trees written with the real file-name grammars."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data_tools.protocol import CAMERAS


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Unit tests use tiny tensors: one thread is faster, and stays fast when other jobs share the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_image(path: Path, size: tuple[int, int] = (16, 16), value: int = 0, mode: str = "RGB") -> Path:
    """A small image whose pixels encode ``value`` (so tests can tell files apart)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    array = rng.integers(0, 256, shape, dtype=np.uint8)
    array.flat[0] = value % 256
    Image.fromarray(array, mode=None).convert(mode).save(path)
    return path


def multipie_path(root: Path, subject: str, session: str, recording: str, cam_id: str, illum: str,
                  suffix: str = "") -> Path:
    code = cam_id.replace("_", "")
    return (root / f"session{session}" / "multiview" / subject / recording / cam_id /
            f"{subject}_{session}_{recording}_{code}_{illum}{suffix}.png")


def make_multipie(root: Path, subjects=("001", "002"), sessions=("01",), recordings=("01",),
                  cameras=None, illums=("00", "07"), size=(16, 16)) -> list[Path]:
    """Write a complete little Multi-PIE tree; returns the written paths."""
    cameras = cameras or [c.cam_id for c in CAMERAS]
    paths = []
    for n, (subject, session, recording, cam, illum) in enumerate(
            (s, se, r, c, i) for s in subjects for se in sessions for r in recordings for c in cameras for i in illums):
        paths.append(write_image(multipie_path(root, subject, session, recording, cam, illum), size, n))
    return paths


@pytest.fixture
def multipie_tree(tmp_path: Path) -> Path:
    root = tmp_path / "multipie"
    make_multipie(root)
    return root
