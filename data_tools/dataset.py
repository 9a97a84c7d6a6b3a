"""One torch Dataset for every loader: FaceRecords in, training samples out.

A sample is a dict:

- ``profile``, ``frontal``: 3 x S x S float in [-1, 1]
- ``yaw`` (int, degrees), ``identity`` (int index into ``dataset.identities``), ``identity_name``
- ``illumination`` (str), ``mirrored`` (bool)
- ``landmarks``: 5 x 2 float, the profile's points in the S x S grid (NaN when unknown)
- ``visible``: 5 bool
- ``frontal_landmarks``: 5 x 2 float, the frontal's points (canonical points when unknown)
- ``patch_boxes``: 4 x 4 int, TP-GAN's (top, left, height, width) boxes on the frontal, in the
  order left_eye, right_eye, nose, mouth (used by the local-patch losses)

Images are decoded when the Dataset is built (``preload``, the default for small sets) or per
item; either way a bad file raises DataError naming it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from data_tools.align import align_face, canonical_landmarks
from data_tools.images import image_size, read_image
from data_tools.protocol import NEUTRAL_ILLUMINATION, PATCH_SIZES_128, DataError, patch_boxes
from data_tools.records import FaceRecord, RecordList

PRELOAD_LIMIT = 5000   # preload by default when a set has at most this many distinct images
PATCH_ORDER = tuple(PATCH_SIZES_128)   # left_eye, right_eye, nose, mouth
_NAN5 = np.full((5, 2), np.nan)


def _as_points(points) -> np.ndarray:
    return _NAN5.copy() if points is None else np.asarray(points, dtype=np.float64).reshape(5, 2)


def prepare_image(path: Path, points, size: int, align: bool) -> tuple[np.ndarray, np.ndarray]:
    """Decode one file to an S x S x 3 uint8 array and move its landmarks into that grid.

    Without alignment a non-square image is centre-cropped to a square before resizing.
    """
    image = read_image(path)
    pts = _as_points(points)
    if align:
        if not np.isfinite(pts[:2]).all():
            raise DataError(f"{path}: align=True needs landmarks, and this image has no eye landmarks")
        try:
            image, pts = align_face(image, pts, size)
        except DataError as err:
            raise DataError(f"{path}: {err}") from err
    else:
        w, h = image.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        if (w, h) != (side, side):
            image = image.crop((left, top, left + side, top + side))
        if side != size:
            image = image.resize((size, size), Image.Resampling.BILINEAR)
        pts = (pts - [left, top]) * (size / side)
    return np.array(image, dtype=np.uint8), pts


def mirror_points(pts: np.ndarray, size: int) -> np.ndarray:
    """Landmarks of the left-right flipped image, re-ordered so index 0 is again the image-left eye."""
    flipped = pts.copy()
    flipped[:, 0] = size - flipped[:, 0]
    return flipped[[1, 0, 2, 4, 3]]


class FaceDataset(Dataset):
    """Profile/frontal pairs as tensors; see the module docstring for the sample layout.

    size: output side (default: the images' own, which must then be square).
    align: TP-GAN alignment from the landmarks (every image needs them).
    mirror: flip negative-yaw pairs so every profile faces one side (TP-GAN MIRROR_TO_ONE_SIDE).
    preload: decode all images once into one uint8 tensor (default: sets of at most
    PRELOAD_LIMIT distinct images).
    identities: the identity list to index into (default: the records' own, sorted).
    """

    def __init__(self, records: Iterable[FaceRecord], size: int | None = None, *, align: bool = False,
                 mirror: bool = False, preload: bool | None = None, identities: list[str] | None = None):
        self.records = list(records)
        if not self.records:
            raise DataError("FaceDataset got no records: the data set or split is empty")
        self.align, self.mirror = align, mirror
        self.identities = sorted({r.identity for r in self.records}) if identities is None else list(identities)
        self._id_index = {name: i for i, name in enumerate(self.identities)}
        unknown = sorted({r.identity for r in self.records} - set(self._id_index))
        if unknown:
            raise DataError(f"identities {unknown[:5]} are not in the given identity list")
        self._points: dict[Path, object] = {}
        for r in self.records:
            self._points.setdefault(r.profile, r.landmarks)
            self._points.setdefault(r.frontal, r.frontal_landmarks)
        self.paths = sorted(self._points)
        self.size = size or self._native_size()
        self.preloaded = len(self.paths) <= PRELOAD_LIMIT if preload is None else preload
        self._pixels: torch.Tensor | None = None
        self._grid_points: dict[Path, np.ndarray] = {}
        self._label_cache: dict[int, dict] = {}
        if self.preloaded:
            self._preload()

    def _native_size(self) -> int:
        w, h = image_size(self.records[0].profile)
        if w != h and not self.align:
            raise DataError(f"{self.records[0].profile}: images are {w}x{h}, not square; pass size= (centre crop) "
                            "or align=True")
        return min(w, h)

    def _preload(self) -> None:
        pixels = torch.empty((len(self.paths), 3, self.size, self.size), dtype=torch.uint8)
        for i, path in enumerate(tqdm(self.paths, desc="decoding images", leave=False)):
            array, pts = prepare_image(path, self._points[path], self.size, self.align)
            pixels[i] = torch.from_numpy(array).permute(2, 0, 1)
            self._grid_points[path] = pts
        self._pixels = pixels
        self._row = {path: i for i, path in enumerate(self.paths)}

    def _image(self, path: Path) -> tuple[torch.Tensor, np.ndarray]:
        if self._pixels is not None:
            return self._pixels[self._row[path]], self._grid_points[path]
        array, pts = prepare_image(path, self._points[path], self.size, self.align)
        return torch.from_numpy(array).permute(2, 0, 1), pts

    def __len__(self) -> int:
        return len(self.records)

    def _labels(self, index: int, pts: np.ndarray, frontal_pts: np.ndarray) -> dict:
        """Everything but the pixels, as tensors (cached: it depends on the record only)."""
        rec = self.records[index]
        if rec.frontal_landmarks is None:
            frontal_pts = canonical_landmarks(self.size)
        visible = np.array(rec.visible if rec.visible is not None else np.isfinite(pts[:, 0]), dtype=bool)
        yaw, mirrored = rec.yaw, self.mirror and rec.yaw < 0
        if mirrored:
            pts, frontal_pts = mirror_points(pts, self.size), mirror_points(frontal_pts, self.size)
            visible, yaw = visible[[1, 0, 2, 4, 3]], -yaw
        boxes = patch_boxes([tuple(p) for p in frontal_pts], self.size)
        return {
            "yaw": yaw,
            "identity": self._id_index[rec.identity],
            "identity_name": rec.identity,
            "illumination": rec.illumination,
            "mirrored": mirrored,
            "landmarks": torch.tensor(pts, dtype=torch.float32),
            "visible": torch.from_numpy(visible),
            "frontal_landmarks": torch.tensor(frontal_pts, dtype=torch.float32),
            "patch_boxes": torch.tensor([boxes[part] for part in PATCH_ORDER], dtype=torch.int64),
        }

    def __getitem__(self, index: int) -> dict:
        rec = self.records[index]
        profile, pts = self._image(rec.profile)
        frontal, frontal_pts = self._image(rec.frontal)
        labels = self._label_cache.get(index)
        if labels is None:
            labels = self._label_cache[index] = self._labels(index, pts, frontal_pts)
        if labels["mirrored"]:
            profile, frontal = profile.flip(-1), frontal.flip(-1)
        sample = {"profile": profile.float() / 127.5 - 1.0, "frontal": frontal.float() / 127.5 - 1.0}
        sample.update({key: value.clone() if torch.is_tensor(value) else value for key, value in labels.items()})
        return sample


def load_records(root: Path, fmt: str = "multipie", **opts) -> RecordList:
    """Dispatch to the loader of a format: "multipie" (also SynthPIE), "caspeal" or "folder"."""
    if fmt == "multipie":
        from data_tools.multipie import load_multipie
        return load_multipie(root, **opts)
    if fmt == "caspeal":
        from data_tools.caspeal import load_caspeal
        return load_caspeal(root, **opts)
    if fmt == "folder":
        from data_tools.folder import load_folder
        return load_folder(root, **opts)
    raise ValueError(f"unknown data format {fmt!r}; choose multipie, caspeal or folder")


def load_splits(root: Path, fmt: str = "multipie", size: int | None = None, *, split: str | None = None,
                align: bool = False, mirror: bool = False, preload: bool | None = None,
                **loader_opts) -> tuple[FaceDataset, FaceDataset]:
    """(train, test) FaceDatasets from a data tree, split by identity.

    split: for Multi-PIE/SynthPIE see ``multipie.split_multipie`` (default "auto": SynthPIE's
    own split, else setting 2); for the other formats "first:N" or "fraction:F" (default 0.8).
    Other keyword options go to the loader (e.g. pair_illumination, strict).
    """
    from data_tools.multipie import split_identities, split_multipie

    records = load_records(root, fmt, **loader_opts)
    if fmt == "multipie":
        train, test = split_multipie(records, split or "auto")
    else:
        train, test = split_identities(records, split or "fraction:0.8")
    return tuple(FaceDataset(part, size, align=align, mirror=mirror, preload=preload) for part in (train, test))


def hold_out_identities(dataset: FaceDataset, n: int) -> tuple[FaceDataset, FaceDataset]:
    """(rest, held out): the last `n` identities of `dataset` (sorted names) become a validation set.

    Search and model selection read the held-out identities, never the test ones.
    """
    names = sorted({r.identity for r in dataset.records})
    if not 0 < n < len(names):
        raise DataError(f"cannot hold out {n} of {len(names)} identities: keep at least one on each side")
    held = set(names[-n:])
    parts = ([r for r in dataset.records if r.identity not in held], [r for r in dataset.records if r.identity in held])
    return tuple(FaceDataset(part, dataset.size, align=dataset.align, mirror=dataset.mirror) for part in parts)


def gallery_records(records: Iterable[FaceRecord], illumination: str | None = NEUTRAL_ILLUMINATION) -> list[FaceRecord]:
    """One frontal image per identity for rank-1 evaluation: its first appearance (earliest
    session, then recording) at the given illumination (None: any). Returned as yaw-0 records
    whose profile and frontal are both the gallery image.
    """
    best: dict[str, tuple] = {}
    seen = set()
    for r in records:
        seen.add(r.identity)
        if illumination is not None and r.frontal_illumination != illumination:
            continue
        key = (r.session, r.recording, str(r.frontal))
        if r.identity not in best or key < best[r.identity][0]:
            best[r.identity] = (key, r)
    missing = sorted(seen - set(best))
    if missing:
        raise DataError(f"no frontal image at illumination {illumination!r} for identities {missing[:10]}"
                        f"{' ...' if len(missing) > 10 else ''}; pick another gallery illumination")
    return [FaceRecord(profile=r.frontal, frontal=r.frontal, identity=r.identity, yaw=0,
                       illumination=r.frontal_illumination, session=r.session,
                       recording=r.recording, expression=r.expression, landmarks=r.frontal_landmarks,
                       frontal_landmarks=r.frontal_landmarks, frontal_illumination=r.frontal_illumination)
            for _, (_, r) in sorted(best.items())]
