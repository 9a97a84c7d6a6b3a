"""The classical cross-check recognizer (HOG + Fisherfaces) on cases with known answers."""
from __future__ import annotations

import torch

from gancomp_lite.evaluate import evaluate
from gancomp_lite.fisherfaces import fit_hog_fisher, hog

SIZE, N_IDS = 32, 5


def test_hog_ignores_brightness_scale_and_sees_orientation():
    gen = torch.Generator().manual_seed(0)
    img = torch.rand(2, 1, SIZE, SIZE, generator=gen)
    assert hog(img).shape == (2, 3 * 3 * 4 * 9)                  # 4x4 cells of 8 px, 2x2-cell blocks, 9 bins
    assert torch.allclose(hog(img), hog(0.5 * img))
    ramp = torch.linspace(0, 1, SIZE)
    vertical_edges, horizontal_edges = ramp.expand(SIZE, SIZE), ramp[:, None].expand(SIZE, SIZE)
    # blocks are (bin, cell) ordered; bins are 20 degrees wide, centred at 10, 30, ..., 170
    along_x, along_y = hog(torch.stack([vertical_edges, horizontal_edges])[:, None]).reshape(2, -1, 9, 4).sum((1, 3))
    assert along_y.argmax().item() == 4 and along_y[4] == along_y.sum()            # 90 degrees: bin 4 alone
    assert along_x[0] == along_x[8] and along_x[0] + along_x[8] == along_x.sum()   # 0 degrees: split 0 / 8


def _faces(repeats: int, noise: float, seed: int) -> list[dict]:
    """N_IDS random textures, each seen `repeats` times with pixel noise: pairs as a FaceDataset yields them."""
    base = torch.rand(N_IDS, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    gen = torch.Generator().manual_seed(seed)
    items = []
    for k in range(N_IDS):
        for r in range(repeats):
            face = (base[k] + noise * torch.randn(3, SIZE, SIZE, generator=gen)).clamp(-1, 1)
            items.append({"profile": face, "frontal": base[k], "identity": k, "yaw": 15 * r, "illumination": "07"})
    return items


def test_fisherfaces_recognize_unseen_noisy_views_deterministically():
    train = _faces(4, 0.3, seed=1)
    rec = fit_hog_fisher(train, input_size=SIZE, cells=(8,))
    again = fit_hog_fisher(train, input_size=SIZE, cells=(8,))
    assert torch.equal(rec.projection, again.projection)
    assert rec.projection.shape[1] == N_IDS - 1                   # LDA keeps C - 1 directions
    test = [{**item, "yaw": 15} for item in _faces(3, 0.3, seed=2)] + _faces(1, 0.0, seed=3)
    result = evaluate(test, rec, None, progress=False)
    assert result["rank1_raw"]["mean"] == 1.0
