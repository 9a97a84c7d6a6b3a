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
MAX_YAW = 90       # degrees either side of frontal: a face seen from further round has no face to frontalize


def _problem(strict: bool, skipped: list[Skipped], path: Path, rule: str, kind: str = "bad_file") -> None:
    if strict:
        raise DataError(f"{path}: {rule}")
    skipped.append(Skipped(path, rule, kind))


def _is_file(path: Path) -> bool:
    """`path.is_file()`, False for names no file system accepts (a NUL byte, too long)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _yaw_rule(text: str, what: str) -> str | None:
    """Why `text` is not a yaw in degrees (`what` names where it was read), or None when it is one."""
    if not YAW_RE.fullmatch(text):
        return f"{what} {text!r} is not a signed integer of degrees"
    if abs(int(text)) > MAX_YAW:
        return f"{what} {text} is outside [-{MAX_YAW}, {MAX_YAW}] degrees"
    return None


def _from_csv(csv_path: Path, strict: bool, skipped: list[Skipped]) -> list[tuple]:
    rows = []
    try:
        with open(csv_path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{csv_path}: missing columns {missing}; the header must be "
                                f"{','.join(CSV_COLUMNS)}[,illumination]")
            for row in reader:
                rows.extend(_csv_row(csv_path, reader.line_num, row, len(reader.fieldnames), strict, skipped))
    except UnicodeDecodeError as err:
        raise DataError(f"{csv_path}: not UTF-8 text (byte {err.start}); save the CSV as UTF-8") from err
    except csv.Error as err:
        raise DataError(f"{csv_path}: not a readable CSV ({err})") from err
    return rows


def _csv_row(csv_path: Path, line: int, row: dict, fields: int, strict: bool, skipped: list[Skipped]) -> list[tuple]:
    """The pair of one CSV row, or [] after reporting the rule it breaks."""
    where = f"{csv_path.name} line {line}"
    if None in row or None in row.values():    # DictReader files extra fields under None, missing ones as None
        _problem(strict, skipped, csv_path, f"{where}: the row's number of fields differs from the header's {fields}")
        return []
    base = csv_path.parent
    profile, frontal, identity = base / row["profile"], base / row["frontal"], row["identity"].strip()
    rule = _yaw_rule(row["yaw"].strip(), "yaw")
    if rule is None and not identity:
        rule = "identity is empty"
    if rule is None and not _is_file(profile):
        rule = "profile file does not exist"
    if rule is not None:
        _problem(strict, skipped, profile, f"{where}: {rule}")
        return []
    if not _is_file(frontal):
        _problem(strict, skipped, profile, f"{where}: its frontal {frontal} does not exist", "missing_pair")
        return []
    return [(profile, frontal, identity, int(row["yaw"]), (row.get("illumination") or "").strip())]


def _from_tree(root: Path, strict: bool, skipped: list[Skipped]) -> list[tuple]:
    rows = []
    seen: dict[Path, Path] = {}        # real folder -> the identity folder first seen there
    for ident in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        real = ident.resolve()
        if real in seen:
            for image in sorted(p for p in ident.rglob("*") if p.is_file() and is_image_file(p)):
                _problem(strict, skipped, image, f"identity folder {ident.name!r} is a link to {seen[real].name!r}: "
                         "one person under two names would sit on both sides of a split")
            continue
        seen[real] = ident
        by_yaw: dict[int, list[Path]] = {}
        for yaw_dir in sorted(p for p in ident.iterdir() if p.is_dir()):
            images = sorted(p for p in yaw_dir.iterdir() if p.is_file() and is_image_file(p))
            rule = _yaw_rule(yaw_dir.name, "yaw folder")
            if rule is not None:
                for image in images:
                    _problem(strict, skipped, image, rule)
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
