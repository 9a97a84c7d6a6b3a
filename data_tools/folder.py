"""Users' own paired faces, in one of two layouts.

1. A CSV (``<root>/pairs.csv``, or ``root`` given as the .csv file itself) with the header
   ``profile,frontal,identity,yaw`` and an optional ``illumination`` column; paths are relative
   to the CSV's folder. One row = one training pair.

2. A folder tree, one folder per identity and one sub-folder per yaw in signed degrees::

       <root>/<identity>/<yaw>/<image>       e.g. alice/0/a.png, alice/+45/a.png, alice/-30/b.png

   The ``0`` folder holds the frontal images. A profile pairs with the frontal of the same file
   name when there is one (e.g. the same lighting), otherwise with the identity's first frontal
   (sorted by name). Frontal images are also paired with themselves.

Optional 5-point landmarks: ``landmarks.csv`` beside the CSV / at the root, in the Multi-PIE
loader's format (``file,x0,y0,...,x4,y4,v0,...,v4``).
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from data_tools.images import check_record_images, is_image_file
from data_tools.multipie import landmarks_for, read_landmarks
from data_tools.protocol import DataError
from data_tools.records import FaceRecord, RecordList, Skipped

CSV_COLUMNS = ("profile", "frontal", "identity", "yaw")
YAW_RE = re.compile(r"[+-]?\d{1,3}")


def _problem(strict: bool, skipped: list[Skipped], path: Path, rule: str, kind: str = "bad_file") -> None:
    if strict:
        raise DataError(f"{path}: {rule}")
    skipped.append(Skipped(path, rule, kind))


def _from_csv(csv_path: Path, strict: bool, skipped: list[Skipped]) -> list[tuple]:
    base = csv_path.parent
    rows = []
    with open(csv_path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{csv_path}: missing columns {missing}; the header must be "
                            f"{','.join(CSV_COLUMNS)}[,illumination]")
        for line, row in enumerate(reader, start=2):
            profile, frontal = base / row["profile"], base / row["frontal"]
            if not YAW_RE.fullmatch(row["yaw"].strip()):
                _problem(strict, skipped, profile, f"{csv_path.name} line {line}: yaw {row['yaw']!r} is not an integer")
                continue
            if not profile.is_file():
                _problem(strict, skipped, profile, f"{csv_path.name} line {line}: profile file does not exist")
                continue
            if not frontal.is_file():
                _problem(strict, skipped, profile, f"{csv_path.name} line {line}: its frontal {frontal} does not exist",
                         "missing_pair")
                continue
            rows.append((profile, frontal, row["identity"].strip(), int(row["yaw"]),
                         (row.get("illumination") or "").strip()))
    return rows


def _from_tree(root: Path, strict: bool, skipped: list[Skipped]) -> list[tuple]:
    rows = []
    for ident in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        by_yaw: dict[int, list[Path]] = {}
        for yaw_dir in sorted(p for p in ident.iterdir() if p.is_dir()):
            images = sorted(p for p in yaw_dir.iterdir() if p.is_file() and is_image_file(p))
            if not YAW_RE.fullmatch(yaw_dir.name):
                for image in images:
                    _problem(strict, skipped, image, f"yaw folder {yaw_dir.name!r} is not a signed integer of degrees")
                continue
            by_yaw.setdefault(int(yaw_dir.name), []).extend(images)
        frontals = by_yaw.get(0, [])
        frontal_by_name = {p.name: p for p in frontals}
        for yaw, images in sorted(by_yaw.items()):
            for image in images:
                if not frontals:
                    _problem(strict, skipped, image, f"profile has no frontal: {ident / '0'} holds no image",
                             "missing_pair")
                    continue
                rows.append((image, frontal_by_name.get(image.name, frontals[0]), ident.name, yaw, ""))
    return rows


def load_folder(root: Path, *, strict: bool = True, verify: str = "header") -> RecordList:
    """Records from a pairs CSV or an <identity>/<yaw>/<image> tree (see the module docstring)."""
    root = Path(root)
    skipped: list[Skipped] = []
    if root.is_file() and root.suffix.lower() == ".csv":
        csv_path = root
    elif root.is_dir():
        csv_path = root / "pairs.csv" if (root / "pairs.csv").is_file() else None
    else:
        raise DataError(f"{root}: folder data root does not exist (give a folder or a pairs .csv file)")
    base = csv_path.parent if csv_path else root
    rows = _from_csv(csv_path, strict, skipped) if csv_path else _from_tree(root, strict, skipped)
    if not rows and not skipped:
        raise DataError(f"{root}: no images found; expected pairs.csv or <identity>/<yaw>/<image> folders")
    landmarks = read_landmarks(base / "landmarks.csv") if (base / "landmarks.csv").is_file() else {}
    records = []
    for profile, frontal, identity, yaw, illumination in rows:
        lm, vis = landmarks_for(landmarks, profile)
        records.append(FaceRecord(profile=profile, frontal=frontal, identity=identity, yaw=yaw,
                                  illumination=illumination, frontal_illumination=illumination,
                                  landmarks=lm, visible=vis,
                                  frontal_landmarks=landmarks_for(landmarks, frontal)[0]))
    return check_record_images(records, strict=strict, verify=verify, skipped=skipped, root=base, fmt="folder")
