"""Reading face images, and the load-time checks every loader shares.

Loaders check every file once when a set is loaded (readable, one common size), so a bad file
is reported up front with its name and never crashes an epoch half-way.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, UnidentifiedImageError

from data_tools.protocol import DataError
from data_tools.records import FaceRecord, RecordList, Skipped

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})


def is_image_file(path: Path) -> bool:
    """An image by suffix, not a hidden file (``.DS_Store``, ``._x.png`` from macOS copies)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB; grayscale (CAS-PEAL) is replicated to 3 channels, 16-bit scaled down."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return img.convert("RGB")


def read_image(path: Path) -> Image.Image:
    """The decoded image as 8-bit RGB, or a DataError naming the file."""
    try:
        with Image.open(path) as img:
            img.load()
            return _to_rgb(img)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        raise DataError(f"{path}: unreadable or corrupt image ({err})") from err


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header only: cheap enough for a whole data set."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        raise DataError(f"{path}: unreadable or corrupt image ({err})") from err


def check_record_images(records: Iterable[FaceRecord], *, strict: bool, verify: str = "header",
                        skipped: list[Skipped] | None = None, root: Path | None = None,
                        fmt: str = "") -> RecordList:
    """Keep the records whose two images are readable and share the set's one image size.

    verify: "header" reads sizes only (fast), "decode" decodes every pixel (finds truncated
    files too), "none" trusts the files. The common size is the most frequent one.
    strict: raise DataError at the first problem; otherwise skip and list it.
    """
    if verify not in ("header", "decode", "none"):
        raise ValueError(f"verify must be 'header', 'decode' or 'none', not {verify!r}")
    records = list(records)
    skipped = list(skipped or [])
    sizes: dict[Path, tuple[int, int] | None] = {}
    for path in sorted({p for r in records for p in (r.profile, r.frontal)}):
        if verify == "none":
            continue
        try:
            sizes[path] = read_image(path).size if verify == "decode" else image_size(path)
        except DataError as err:
            if strict:
                raise
            sizes[path] = None
            skipped.append(Skipped(path, str(err).removeprefix(f"{path}: ")))
    counts = Counter(s for s in sizes.values() if s is not None)
    common = counts.most_common(1)[0][0] if counts else None
    for path, size in sorted(sizes.items()):
        if size is not None and size != common:
            rule = (f"image is {size[0]}x{size[1]} but the set's images are {common[0]}x{common[1]}; "
                    "all images of a set must share one size")
            if strict:
                raise DataError(f"{path}: {rule}")
            sizes[path] = None
            skipped.append(Skipped(path, rule))
    kept = []
    for rec in records:
        if sizes.get(rec.profile, ()) is None:
            continue   # the profile itself is already listed as a bad file
        if sizes.get(rec.frontal, ()) is None:
            skipped.append(Skipped(rec.profile, f"its frontal {rec.frontal} is a bad file", "missing_pair"))
            continue
        kept.append(rec)
    return RecordList(kept, root=root, fmt=fmt, skipped=skipped)
