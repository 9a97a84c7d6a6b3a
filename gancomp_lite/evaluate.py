"""The evaluation protocol of frontalization papers, and `gancomp-lite eval`.

- Rank-1 identification per |yaw|: gallery = one frontal image per test identity (neutral
  illumination); probes = every non-frontal test image, frontalized by the generator, and the raw
  profiles as the baseline row. Features come from the frozen identity network (Light-CNN),
  matching is by cosine similarity, and +yaw and -yaw are merged into one |yaw| column
  (FFWM-style, as TP-GAN's Table 1 reports).
- Pixel metrics against the ground-truth frontal: L1, PSNR, SSIM (torchmetrics), on images mapped
  to [0, 1].
- ID-FID: the Frechet distance between Gaussian fits of identity-network features of the
  generated images and of the real frontal images. It is NOT Inception-FID (no Inception network
  is involved) and its values are not comparable with published FIDs.
- 95% intervals by bootstrap over test identities (seeded): probes of one identity are not
  independent (same face, same gallery image), so the identity, not the probe, is the unit that is
  resampled. Two generators evaluated on the same probes are compared by their *paired* difference,
  resampling the same identities for both, which cancels the identities that are hard for everybody.

Results are plain dicts with string keys, so `json.loads(json.dumps(result)) == result`.
"""
from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
from tqdm.auto import tqdm

from data_tools.protocol import NEUTRAL_ILLUMINATION
from gancomp_lite.errors import device_name, int_in
from gancomp_lite.models.lightcnn import to_identity_input

ID_FID_NOTE = "ID-FID = Frechet distance in the identity network's feature space, NOT Inception-FID"
Frontalizer = Callable[[dict[str, Any]], torch.Tensor]
RESAMPLES = 2000


class NonFiniteError(ValueError):
    """A network produced NaN or infinite values: an error, never a score."""


# ------------------------------------------------------------------ metrics on features
def _sqrtm_psd(mat: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix via its eigendecomposition."""
    values, vectors = torch.linalg.eigh((mat + mat.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Frechet distance between Gaussian fits of two feature sets (N, D), in float64.

    d = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2); the inner matrix is
    symmetric PSD, so only symmetric square roots are needed (stable even when N < D and the
    covariances are singular).
    """
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"frechet_distance needs two (N, D) feature sets with the same D, got "
                         f"{tuple(real.shape)} and {tuple(fake.shape)}")
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"frechet_distance needs at least 2 samples per set, got {len(real)} and {len(fake)}")
    real, fake = real.double(), fake.double()
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = torch.cov(real.T).reshape(real.shape[1], -1), torch.cov(fake.T).reshape(fake.shape[1], -1)
    root1 = _sqrtm_psd(s1)
    cross = _sqrtm_psd(root1 @ s2 @ root1).trace()
    distance = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * cross
    return max(distance.item(), 0.0)


def rank1_by_yaw(probe_features: torch.Tensor, probe_identities: torch.Tensor, probe_yaws: torch.Tensor,
                 gallery_features: torch.Tensor, gallery_identities: torch.Tensor) -> dict[str, float]:
    """Rank-1 accuracy per |yaw| (keys "15", "30", ...; +yaw and -yaw merged) and their "mean".

    Each probe is matched to the gallery entry of highest cosine similarity; it is correct when
    that entry's identity is the probe's.
    """
    correct = rank1_correct(probe_features, probe_identities, gallery_features, gallery_identities)
    buckets = probe_yaws.abs()
    result = {str(int(b)): correct[buckets == b].double().mean().item() for b in buckets.unique().sort().values}
    result["mean"] = sum(result.values()) / len(result)
    return result


def rank1_correct(probe_features: torch.Tensor, probe_identities: torch.Tensor,
                  gallery_features: torch.Tensor, gallery_identities: torch.Tensor) -> torch.Tensor:
    """Per probe (bool): is the gallery entry of highest cosine similarity the probe's identity?"""
    if len(probe_features) == 0:
        raise ValueError("rank-1 needs at least one probe (a non-frontal image)")
    sim = F.normalize(probe_features.double(), dim=1) @ F.normalize(gallery_features.double(), dim=1).T
    return gallery_identities[sim.argmax(dim=1)] == probe_identities


# ------------------------------------------------------------------ confidence intervals
def _as_tensor(values: Sequence[Any] | torch.Tensor) -> torch.Tensor:
    return values.detach().cpu() if isinstance(values, torch.Tensor) else torch.as_tensor(list(values))


def _column_counts(correct: torch.Tensor, identities: torch.Tensor, yaws: torch.Tensor
                   ) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """|yaw| column names, and per (identity, column) the number of correct probes and of probes."""
    if not len(correct) == len(identities) == len(yaws) or len(correct) == 0:
        raise ValueError(f"need one identity and one yaw per probe and at least one probe, got "
                         f"{len(correct)} results, {len(identities)} identities, {len(yaws)} yaws")
    buckets = yaws.abs()
    columns = buckets.unique().sort().values
    _, ident_index = identities.unique(return_inverse=True)
    cell = ident_index * len(columns) + torch.searchsorted(columns, buckets)
    shape = (int(ident_index.max()) + 1, len(columns))
    hits = torch.bincount(cell, weights=correct.double(), minlength=shape[0] * shape[1]).reshape(shape)
    totals = torch.bincount(cell, minlength=shape[0] * shape[1]).double().reshape(shape)
    return [str(int(c)) for c in columns], hits, totals


def _bootstrap_rank1(weights: torch.Tensor, hits: torch.Tensor, totals: torch.Tensor) -> torch.Tensor:
    """Rank-1 per column, then the mean over columns, for each row of identity weights: (B, columns + 1)."""
    per_column = (weights @ hits) / (weights @ totals)      # NaN where a resample has no probe in a column
    return torch.cat([per_column, per_column.nanmean(dim=1, keepdim=True)], dim=1)


def _identity_resamples(n_identities: int, resamples: int, seed: int) -> torch.Tensor:
    """(resamples, n_identities): how often each identity is drawn in each bootstrap resample."""
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    draws = torch.randint(n_identities, (resamples, n_identities), generator=torch.Generator().manual_seed(seed))
    return torch.zeros(resamples, n_identities, dtype=torch.float64).scatter_add_(
        1, draws, torch.ones(resamples, n_identities, dtype=torch.float64))


def _percentiles(samples: torch.Tensor, level: float) -> tuple[torch.Tensor, torch.Tensor]:
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=samples.dtype)
    low, high = torch.nanquantile(samples, q, dim=0)
    return low, high


def rank1_interval(correct: Sequence[bool] | torch.Tensor, identities: Sequence[int] | torch.Tensor,
                   yaws: Sequence[int] | torch.Tensor, *, level: float = 0.95, resamples: int = RESAMPLES,
                   seed: int = 0) -> dict[str, list[float]]:
    """Percentile-bootstrap interval of rank-1 per |yaw| column and of their mean, resampling identities.

    correct, identities, yaws: one entry per probe (as `evaluate(..., per_probe=True)` returns them).
    Returns {column: [low, high]} with the columns of `rank1_by_yaw` ("15", ..., "mean").
    """
    columns, hits, totals = _column_counts(_as_tensor(correct), _as_tensor(identities), _as_tensor(yaws))
    samples = _bootstrap_rank1(_identity_resamples(len(hits), resamples, seed), hits, totals)
    low, high = _percentiles(samples, level)
    return {name: [low[i].item(), high[i].item()] for i, name in enumerate(columns + ["mean"])}


def paired_difference(correct_a: Sequence[bool] | torch.Tensor, correct_b: Sequence[bool] | torch.Tensor,
                      identities: Sequence[int] | torch.Tensor, yaws: Sequence[int] | torch.Tensor, *,
                      level: float = 0.95, resamples: int = RESAMPLES, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Rank-1 of b minus rank-1 of a on the same probes, per |yaw| column and mean, with a paired
    bootstrap interval (the same resampled identities for both).

    Returns {"diff": {column: b - a}, "ci": {column: [low, high]}}; an interval that excludes 0
    is a difference the test split resolves at that level.
    """
    a, b = _as_tensor(correct_a), _as_tensor(correct_b)
    if len(a) != len(b):
        raise ValueError(f"paired_difference needs both models scored on the same probes, got {len(a)} and {len(b)}")
    identities, yaws = _as_tensor(identities), _as_tensor(yaws)
    columns, hits_a, totals = _column_counts(a, identities, yaws)
    _, hits_b, _ = _column_counts(b, identities, yaws)
    ones = torch.ones(1, len(totals), dtype=torch.float64)
    diff = (_bootstrap_rank1(ones, hits_b, totals) - _bootstrap_rank1(ones, hits_a, totals))[0]
    weights = _identity_resamples(len(totals), resamples, seed)
    low, high = _percentiles(_bootstrap_rank1(weights, hits_b, totals) - _bootstrap_rank1(weights, hits_a, totals), level)
    names = columns + ["mean"]
    return {"diff": {n: diff[i].item() for i, n in enumerate(names)},
            "ci": {n: [low[i].item(), high[i].item()] for i, n in enumerate(names)}}


def compare(first: Mapping[str, Any], second: Mapping[str, Any], *, level: float = 0.95,
            resamples: int = RESAMPLES, seed: int = 0) -> dict[str, dict[str, Any]]:
    """`paired_difference` of two `evaluate(..., per_probe=True)` results (second minus first);
    refuses results that were not scored on the same probes."""
    for name, result in (("first", first), ("second", second)):
        if "correct" not in result.get("probes", {}):
            raise ValueError(f"the {name} result has no per-probe correctness of a generator: "
                             f"evaluate it with per_probe=True and a generator")
    pa, pb = first["probes"], second["probes"]
    if pa["identity"] != pb["identity"] or pa["yaw"] != pb["yaw"]:
        raise ValueError("the two results were not scored on the same probes (identities or yaws differ)")
    return paired_difference(pa["correct"], pb["correct"], pa["identity"], pa["yaw"],
                             level=level, resamples=resamples, seed=seed)


def _pixel_scores(output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image L1, PSNR and SSIM of [-1, 1] images, measured in [0, 1]."""
    out, tgt = ((output + 1) / 2).clamp(0, 1), ((target + 1) / 2).clamp(0, 1)
    return {
        "l1": (out - tgt).abs().mean(dim=(1, 2, 3)),
        "psnr": peak_signal_noise_ratio(out, tgt, data_range=1.0, reduction="none", dim=(1, 2, 3)),
        "ssim": structural_similarity_index_measure(out, tgt, data_range=1.0, reduction="none"),
    }


# ------------------------------------------------------------------ the protocol
def frontalize_batch(generator: nn.Module | Frontalizer, batch: dict[str, Any]) -> torch.Tensor:
    """A module with a `frontalize(batch)` method gets the whole batch; other modules get the profiles."""
    if isinstance(generator, nn.Module):
        method = getattr(generator, "frontalize", None)
        return method(batch) if callable(method) else generator(batch["profile"])
    return generator(batch)


def _select(batch: dict[str, Any], keep: torch.Tensor) -> dict[str, Any]:
    """The samples of a collated batch where `keep` is True (tensors and lists alike)."""
    return {k: v[keep] if isinstance(v, torch.Tensor) else [x for x, kept in zip(v, keep.tolist()) if kept]
            for k, v in batch.items()}


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class _Collector:
    """Features and per-image scores of one probe kind (raw profiles or generator outputs)."""

    def __init__(self) -> None:
        self.features: list[torch.Tensor] = []
        self.scores: dict[str, list[torch.Tensor]] = {"l1": [], "psnr": [], "ssim": []}

    def add(self, features: torch.Tensor, images: torch.Tensor, frontal: torch.Tensor) -> None:
        self.features.append(features.cpu())
        for name, values in _pixel_scores(images, frontal).items():
            self.scores[name].append(values.cpu())

    def summary(self, real_features: torch.Tensor) -> dict[str, float]:
        scores = {name: torch.cat(values).double().mean().item() for name, values in self.scores.items()}
        return {**scores, "id_fid": frechet_distance(real_features, torch.cat(self.features))}


@torch.no_grad()
def evaluate(
    dataset: Dataset,
    identity_net: nn.Module,
    generator: nn.Module | Frontalizer | None = None,
    *,
    gallery: Dataset | None = None,
    gallery_illumination: str = NEUTRAL_ILLUMINATION,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    progress: bool = True,
    per_probe: bool = False,
    resamples: int = RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the protocol on a test set; return rank-1 per |yaw| with intervals, L1/PSNR/SSIM and ID-FID.

    dataset: samples are dicts with "profile" and "frontal" (3 x S x S in [-1, 1]), "yaw"
        (degrees), "identity" (int) and "illumination"; samples at yaw 0 are not probes.
    identity_net: `forward(gray) -> (logits, feature)` with an `input_size` attribute (LightCNN).
    generator: a module (called on the profiles, or its `frontalize(batch)` if it has one) or a
        callable taking the collated batch dict; it must return images shaped like "frontal".
        None evaluates the raw profiles only (the baseline row).
    gallery: samples whose "frontal" is the gallery image of their identity (e.g. a FaceDataset of
        `data_tools.dataset.gallery_records`, sharing the test set's identity list); by default
        the first sample of each identity whose "illumination" is `gallery_illumination`, taking
        a sample's frontal to share its illumination.

    per_probe: also return "probes" = {"identity", "yaw", "correct_raw"[, "correct"]}, one entry
        per probe (ints), so that two models can be paired later (`compare`) without re-running them.
    resamples, level, seed: the bootstrap over identities behind the intervals (resamples=0: none).

    Keys: "rank1_raw" (raw profiles as probes), "raw" (their l1/psnr/ssim/id_fid); with a
    generator also "rank1", "l1", "psnr", "ssim", "id_fid". Rank-1 dicts are keyed by |yaw|
    as strings plus "mean" (the mean over |yaw| columns). With resamples > 0: "rank1_raw_ci" and
    "rank1_ci" ({column: [low, high]}), "rank1_vs_raw" (the generator's paired gain over the raw
    profiles, see `paired_difference`) and "interval" (how they were computed). Always "n_probes",
    "n_gallery", "n_identities", "note". Raises NonFiniteError when the identity network or the
    generator outputs NaN or infinity.
    """
    device = torch.device(device)
    modules = [m for m in (identity_net, generator) if isinstance(m, nn.Module)]
    modes = [m.training for m in modules]
    for module in modules:
        module.eval()

    def identity_features(images: torch.Tensor) -> torch.Tensor:
        features = identity_net(to_identity_input(images, identity_net.input_size))[1]
        if not torch.isfinite(features).all():
            raise NonFiniteError(f"the identity network ({type(identity_net).__name__}) produced non-finite "
                                 f"features (NaN or inf): its weights or inputs are broken")
        return features

    raw, generated = _Collector(), _Collector()
    real, identities, yaws = [], [], []
    gallery_images: dict[int, torch.Tensor] = {}
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    try:
        for batch in tqdm(loader, desc="evaluate", disable=not progress):
            if gallery is None:
                for i, (ident, illum) in enumerate(zip(batch["identity"].tolist(), batch["illumination"])):
                    if str(illum) == str(gallery_illumination) and ident not in gallery_images:
                        gallery_images[ident] = batch["frontal"][i]
            is_probe = batch["yaw"] != 0
            if not is_probe.any():
                continue
            batch = _to_device(_select(batch, is_probe), device)
            frontal = batch["frontal"]
            real.append(identity_features(frontal).cpu())
            raw.add(identity_features(batch["profile"]), batch["profile"], frontal)
            if generator is not None:
                output = frontalize_batch(generator, batch)
                if not isinstance(output, torch.Tensor) or output.shape != frontal.shape:
                    got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
                    raise ValueError(f"the generator must return images shaped like the frontal targets "
                                     f"{tuple(frontal.shape)}, got {got}")
                if not torch.isfinite(output).all():
                    raise NonFiniteError(f"the generator ({type(generator).__name__}) produced non-finite images "
                                         f"(NaN or inf): its weights are broken; no score is given")
                generated.add(identity_features(output), output, frontal)
            identities.append(batch["identity"].cpu())
            yaws.append(batch["yaw"].cpu())

        if not identities:
            raise ValueError("the test set has no probes: every sample has yaw 0")
        if gallery is not None:
            for item in gallery:
                gallery_images.setdefault(int(item["identity"]), item["frontal"])
        probe_ids, probe_yaws = torch.cat(identities), torch.cat(yaws)
        missing = sorted(set(probe_ids.tolist()) - set(gallery_images))
        if missing:
            raise ValueError(f"no gallery image (frontal at illumination {gallery_illumination!r}) for identities "
                             f"{missing[:10]}; pass gallery= or another gallery_illumination")
        gallery_ids = torch.tensor(sorted(gallery_images))
        gallery_features = torch.cat([
            identity_features(torch.stack([gallery_images[i] for i in chunk.tolist()]).to(device)).cpu()
            for chunk in gallery_ids.split(batch_size)
        ])
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)

    real_features = torch.cat(real)
    correct_raw = rank1_correct(torch.cat(raw.features), probe_ids, gallery_features, gallery_ids)
    result: dict[str, Any] = {
        "rank1_raw": rank1_by_yaw(torch.cat(raw.features), probe_ids, probe_yaws, gallery_features, gallery_ids),
        "raw": raw.summary(real_features),
    }
    bootstrap = {"level": level, "resamples": resamples, "seed": seed}
    if resamples > 0:
        result["rank1_raw_ci"] = rank1_interval(correct_raw, probe_ids, probe_yaws, **bootstrap)
    probes = {"identity": probe_ids.tolist(), "yaw": probe_yaws.tolist(), "correct_raw": correct_raw.int().tolist()}
    if generator is not None:
        features = torch.cat(generated.features)
        correct = rank1_correct(features, probe_ids, gallery_features, gallery_ids)
        result["rank1"] = rank1_by_yaw(features, probe_ids, probe_yaws, gallery_features, gallery_ids)
        result.update(generated.summary(real_features))
        probes["correct"] = correct.int().tolist()
        if resamples > 0:
            result["rank1_ci"] = rank1_interval(correct, probe_ids, probe_yaws, **bootstrap)
            result["rank1_vs_raw"] = paired_difference(correct_raw, correct, probe_ids, probe_yaws, **bootstrap)
    if resamples > 0:
        result["interval"] = {**bootstrap, "method": "percentile bootstrap over test identities"}
    if per_probe:
        result["probes"] = probes
    result.update({"n_probes": len(probe_ids), "n_gallery": len(gallery_ids),
                   "n_identities": len(probe_ids.unique()), "note": ID_FID_NOTE})
    return result


# ------------------------------------------------------------------ reporting
def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "–"
    if math.isinf(value):
        return "inf"
    return f"{100 * value:.2f}" if percent else f"{value:.3f}"


def _with_interval(value: float | None, interval: Sequence[float] | None) -> str:
    text = _fmt(value, percent=True)
    if value is None or interval is None:
        return text
    return f"{text} [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def format_table(results: Mapping[str, Mapping[str, Any]], raw_row: str | None = "raw profiles",
                 extra_columns: Mapping[str, Mapping[str, str]] | None = None, intervals: bool = False,
                 scored_by: str | None = None) -> str:
    """A markdown table in the style of TP-GAN's Table 1: rank-1 (%) per ±yaw, then L1/SSIM/ID-FID.

    results: row name -> `evaluate` result. raw_row: name of the baseline row taken from the
        first result's raw-profile scores (None: no baseline row).
    extra_columns: row name -> {column: text}, e.g. MACs and parameters per teacher.
    intervals: follow each rank-1 with its 95% interval where the result has one ("rank1_ci").
    scored_by: names the identity network that scored the rows (file and sha256), in the footnote.
    """
    if not results:
        raise ValueError("format_table needs at least one result")
    rows: list[tuple[str, Mapping[str, float], Mapping[str, Any], Mapping[str, Any]]] = []
    if raw_row is not None:
        first = next(iter(results.values()))
        rows.append((raw_row, first["rank1_raw"], first["raw"], first.get("rank1_raw_ci", {})))
    rows += [(name, res["rank1"], res, res.get("rank1_ci", {})) for name, res in results.items() if "rank1" in res]
    yaws = sorted({int(k) for _, rank1, _, _ in rows for k in rank1 if k != "mean"}, reverse=True)
    extra_names = sorted({c for cols in (extra_columns or {}).values() for c in cols})
    header = (["method"] + [f"±{y}°" for y in yaws] + ["mean", "L1", "SSIM", "ID-FID*"] + extra_names)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, rank1, pixel, ci in rows:
        keys = [str(y) for y in yaws] + ["mean"]
        cells = [name] + [_with_interval(rank1.get(k), ci.get(k) if intervals else None) for k in keys]
        cells += [_fmt(pixel.get("l1")), _fmt(pixel.get("ssim")), _fmt(pixel.get("id_fid"))]
        cells += [(extra_columns or {}).get(name, {}).get(c, "–") for c in extra_names]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    note = "Rank-1 (%) by cosine similarity of identity features, ±yaw merged"
    if intervals:
        note += "; [95% interval, bootstrap over test identities]"
    if scored_by:
        note += f"; scored by {scored_by}"
    lines.append(f"{note}. *{ID_FID_NOTE}.")
    return "\n".join(lines)


def format_paired(name_a: str, name_b: str, paired: Mapping[str, Mapping[str, Any]]) -> str:
    """One line per model pair: rank-1 difference (points) per column with its 95% interval."""
    cells = [f"{k}: {100 * paired['diff'][k]:+.1f} [{100 * paired['ci'][k][0]:+.1f}, {100 * paired['ci'][k][1]:+.1f}]"
             for k in sorted(paired["diff"], key=lambda k: (k == "mean", -int(k) if k != "mean" else 0))]
    return f"{name_b} - {name_a} (rank-1 points, paired 95% interval): " + ", ".join(cells)


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float written as a string ("inf", "-inf", "nan"): strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


# ------------------------------------------------------------------ command line
def load_generator(path: str | Path) -> nn.Module:
    """A generator saved as its state dict, with manifest keys "arch" (a registry name), "config"
    (a config string or null = teacher widths), "size" and optional "knobs"; built with
    `gancomp_lite.models.registry.build` and returned in eval mode. Shipped teachers
    (`gancomp_lite.teachers`) keep the generator under "G" beside their discriminator "D"."""
    from gancomp_lite.checkpoint import CheckpointError, load_checkpoint
    from gancomp_lite.models.registry import FAMILIES, build

    state, manifest = load_checkpoint(path)
    arch = manifest.get("arch")
    if arch not in FAMILIES or "size" not in manifest:
        raise CheckpointError(f"{path}: not a generator checkpoint (needs manifest 'arch' in {sorted(FAMILIES)} "
                              f"and 'size'; got arch={arch!r})")
    net = build(arch, manifest.get("config"), manifest["size"], **manifest.get("knobs", {}))
    if isinstance(state.get("G"), dict):
        state = state["G"]
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not match {arch} at config {manifest.get('config')!r} ({err})") from err
    return net.eval()


def register(subparsers: argparse._SubParsersAction) -> None:
    cmd = subparsers.add_parser("eval", help="rank-1 per |yaw|, L1/PSNR/SSIM and ID-FID on a test split")
    cmd.add_argument("--data", type=Path, required=True, help="data root")
    cmd.add_argument("--format", choices=["multipie", "caspeal", "folder"], default="multipie")
    cmd.add_argument("--identity", type=Path, required=True, help="identity network checkpoint (Light-CNN)")
    cmd.add_argument("--generator", type=Path, action="append", default=[],
                     help="generator checkpoint (repeatable); none = raw-profile baseline only")
    cmd.add_argument("--split", default=None, help="identity split (see data_tools.dataset.load_splits)")
    cmd.add_argument("--size", type=int_in(8, 4096), default=None, help="image size (default: the images' own)")
    cmd.add_argument("--gallery-illumination", default=NEUTRAL_ILLUMINATION)
    cmd.add_argument("--batch-size", type=int_in(1), default=32)
    cmd.add_argument("--device", type=device_name, default="cuda" if torch.cuda.is_available() else "cpu")
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    cmd.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from data_tools.dataset import FaceDataset, gallery_records, load_splits
    from gancomp_lite.models.lightcnn import load_identity_network
    from gancomp_lite.seeding import seed_everything

    from gancomp_lite.checkpoint import read_manifest

    seed_everything(args.seed)
    _, test = load_splits(args.data, args.format, args.size, split=args.split)
    gallery = FaceDataset(gallery_records(test.records, args.gallery_illumination), test.size,
                          identities=test.identities)
    identity_net = load_identity_network(args.identity).to(args.device)
    scorer = {"file": args.identity.name, "sha256": read_manifest(args.identity)["sha256"]}
    generators: Sequence[tuple[str, nn.Module | None]] = (
        [(p.stem, load_generator(p).to(args.device)) for p in args.generator] or [("raw profiles", None)]
    )
    # a NonFiniteError (NaN or Inf outputs or features) reaches gancomp_lite.cli.main: one line, exit 1
    results = {name: {**evaluate(test, identity_net, gen, gallery=gallery,
                                 gallery_illumination=args.gallery_illumination, batch_size=args.batch_size,
                                 device=args.device, per_probe=True, seed=args.seed), "scored_by": scorer}
               for name, gen in generators}
    names = list(results)
    paired = {f"{name} - {names[0]}": compare(results[names[0]], results[name], seed=args.seed)
              for name in names[1:] if "rank1" in results[name]}
    for result in results.values():
        result.pop("probes")
    if args.json:
        print(json.dumps(json_safe({**results, **({"paired": paired} if paired else {})}), indent=2, allow_nan=False))
    else:
        print(format_table(results, intervals=True, scored_by=f"{scorer['file']} (sha256 {scorer['sha256'][:16]}...)"))
        for name in names[1:]:
            if f"{name} - {names[0]}" in paired:
                print(format_paired(names[0], name, paired[f"{name} - {names[0]}"]))
    return 0
