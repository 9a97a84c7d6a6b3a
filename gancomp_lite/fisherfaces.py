"""A classical face recognizer as a standing cross-check of the Light-CNN judge: HOG + Fisherfaces.

Histograms of oriented gradients (Dalal and Triggs, 2005) on the grayscale face, projected by PCA
then LDA (Belhumeur, Hespanha, Kriegman, "Fisherfaces", 1997), both fit in closed form on the
near-frontal views of the training identities. It shares neither architecture, features nor
training procedure with the Light-CNNs, so a generator that learned to please a Light-CNN's
features gains nothing from it: if a teacher's rank-1 holds up here too, its identity is in the
pixels. Deterministic (float64 eigendecompositions, no sampling), a few seconds on a CPU, nothing
downloaded. It plugs into `gancomp_lite.evaluate.evaluate` like a Light-CNN: `forward(gray)`
returns `(feature, feature)` and `input_size` says what it sees.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from gancomp_lite.models.lightcnn import to_identity_input

NAME = "HOG + Fisherfaces (PCA + LDA)"


def hog(gray: torch.Tensor, cell: int = 8, bins: int = 9, clip: float = 0.2) -> torch.Tensor:
    """HOG descriptors (N, D) of grayscale images (N, 1, S, S): unsigned orientations, soft-binned,
    2x2-cell blocks with stride one cell, L2-Hys normalised."""
    if gray.ndim != 4 or gray.shape[1] != 1 or gray.shape[-1] % cell or gray.shape[-2] % cell:
        raise ValueError(f"hog expects (N, 1, H, W) with H and W multiples of cell={cell}, got {tuple(gray.shape)}")
    gray = gray.double()
    padded = F.pad(gray, (1, 1, 1, 1), mode="replicate")
    gx = padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]
    gy = padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]
    magnitude = torch.sqrt(gx.square() + gy.square())
    position = torch.remainder(torch.atan2(gy, gx), torch.pi) / torch.pi * bins - 0.5
    low = torch.floor(position)
    frac = position - low
    low = torch.remainder(low, bins).long()
    hist = torch.zeros(gray.shape[0], bins, *gray.shape[-2:], dtype=gray.dtype)
    hist.scatter_add_(1, low, magnitude * (1 - frac))
    hist.scatter_add_(1, torch.remainder(low + 1, bins), magnitude * frac)
    cells = F.avg_pool2d(hist, cell)
    blocks = F.unfold(cells, 2).transpose(1, 2)                      # (N, blocks, 4 * bins)
    blocks = F.normalize(blocks, dim=2).clamp(max=clip)
    return F.normalize(blocks, dim=2).flatten(1)


class HOGFisher(nn.Module):
    """HOG features projected by a fitted PCA + LDA; build it with `fit_hog_fisher`."""

    def __init__(self, mean: torch.Tensor, projection: torch.Tensor, input_size: int, cells: tuple[int, ...]):
        super().__init__()
        self.input_size = input_size
        self.cells = cells
        self.register_buffer("mean", mean)
        self.register_buffer("projection", projection)

    def describe(self, gray: torch.Tensor) -> torch.Tensor:
        """Concatenated HOG descriptors at every cell size."""
        return torch.cat([hog(gray, cell) for cell in self.cells], dim=1)

    def forward(self, gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = ((self.describe(gray) - self.mean) @ self.projection).float()
        return feature, feature


def fit_hog_fisher(dataset: Dataset, *, input_size: int = 64, cells: tuple[int, ...] = (8, 4),
                   pca_dim: int | None = None, shrinkage: float = 1e-3) -> HOGFisher:
    """Fit PCA then LDA on the HOG descriptors of the profiles of `dataset` (pairs with "profile"
    and "identity"; give it the near-frontal training pairs, whose yaw-0 pairs hold the frontals)
    and return the recognizer in eval mode.

    pca_dim: PCA dimensions kept before LDA (default N - C, as in Fisherfaces, capped at D).
    shrinkage: added to the within-class scatter's diagonal, relative to its mean eigenvalue.
    """
    features, labels = [], []
    for batch in DataLoader(dataset, batch_size=256, shuffle=False):   # yaw-0 pairs bring the frontals
        gray = to_identity_input(batch["profile"], input_size)
        features.append(torch.cat([hog(gray, c) for c in cells], dim=1))
        labels.append(batch["identity"])
    x, y = torch.cat(features), torch.cat(labels)
    classes = y.unique()
    if len(classes) < 2:
        raise ValueError(f"Fisherfaces needs at least 2 identities, got {len(classes)}")
    mean = x.mean(0)
    centred = x - mean
    # PCA by the eigenvectors of the (N x N) Gram matrix: N is far below D.
    values, vectors = torch.linalg.eigh(centred @ centred.T)
    k = min(pca_dim or len(x) - len(classes), int((values > values.max() * 1e-10).sum()))
    values, vectors = values.flip(0)[:k], vectors.flip(1)[:, :k]
    pca = centred.T @ vectors / values.sqrt()                      # (D, k), orthonormal columns
    z = centred @ pca
    class_means = torch.stack([z[y == c].mean(0) for c in classes])
    within = sum(((z[y == c] - m).T @ (z[y == c] - m)) for c, m in zip(classes, class_means))
    within = within + shrinkage * within.trace() / k * torch.eye(k, dtype=z.dtype)
    between = (class_means - z.mean(0)).T @ (class_means - z.mean(0))
    # LDA: whiten the within-class scatter, then the top eigenvectors of the whitened between-class scatter.
    w_values, w_vectors = torch.linalg.eigh(within)
    whiten = w_vectors / w_values.sqrt()
    b_values, b_vectors = torch.linalg.eigh(whiten.T @ between @ whiten)
    lda = whiten @ b_vectors.flip(1)[:, :len(classes) - 1]
    return HOGFisher(mean, pca @ lda, input_size, tuple(cells)).eval()
