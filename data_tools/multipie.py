"""Multi-PIE (and SynthPIE, which is written in the same layout): parse, pair, split.

Layout (Gross et al. 2010; cropped derivatives keep the basename plus ``_cropped`` / ``_crop_128``)::

    <root>/session0S/multiview/<subject>/<recording>/<camera 05_1>/<subject>_<0S>_<recording>_<code 051>_<illum>.png

``root`` may also be the folder holding ``data/``. Optional files at ``root``:

- ``landmarks.csv``: ``file,x0,y0,...,x4,y4,v0,...,v4`` (file relative to root; 5 points =
  left eye, right eye, nose tip, left and right mouth corner; v = visible 0/1; empty = unknown).
- ``synthpie.json``: written by the SynthPIE renderer; its ``train_ids`` / ``test_ids`` are the
  default split.

The elevated cameras 08_1 and 19_1 are outside the 13-pose protocol and are skipped quietly.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from data_tools.images import check_record_images, is_image_file
from data_tools.protocol import (CAMERA_BY_CODE, CAMERAS, EXCLUDED_CAMERAS, FRONTAL_CAMERA, ILLUMINATION_IDS, Camera,
                                 DataError, camera)
from data_tools.records import FaceRecord, RecordList, Skipped, split_by_identity

NAME_RE = re.compile(r"^(?P<subject>\d{3})_(?P<session>\d{2})_(?P<recording>\d{2})_(?P<code>\d{3})_"
                     r"(?P<illumination>\d{2})(?:_cropped|_crop_\d+)?$")
NAME_RULE = "<subject 3 digits>_<session 2>_<recording 2>_<camera code 3>_<illumination 2>[_cropped|_crop_N].png"

# (session, recording) -> expression (Gross et al. 2010; bob.db.multipie)
EXPRESSIONS: dict[tuple[str, str], str] = {
    ("01", "01"): "neutral", ("01", "02"): "smile",
    ("02", "01"): "neutral", ("02", "02"): "surprise", ("02", "03"): "squint",
    ("03", "01"): "neutral", ("03", "02"): "smile", ("03", "03"): "disgust",
    ("04", "01"): "neutral", ("04", "02"): "neutral", ("04", "03"): "scream",
}
# Identity splits of the frontalization papers: (sessions kept, expression kept, train subjects)
SETTINGS = {
    "setting1": ({"01"}, None, 150),        # session 1 only; first 150 subjects train, rest test
    "setting2": (None, "neutral", 200),     # neutral expression, all sessions; first 200 train
}


@dataclass(frozen=True)
class MultiPieName:
    subject: str
    session: str
    recording: str
    camera: Camera
    illumination: str

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return self.subject, self.session, self.recording, self.camera.cam_id, self.illumination


def parse_name(path: Path) -> MultiPieName:
    """Parse one file name and check it against its folders; DataError names the rule broken."""
    match = NAME_RE.match(path.stem)
    if not match:
        raise DataError(f"{path}: file name does not follow Multi-PIE's {NAME_RULE}")
    name = match.groupdict()
    cam = CAMERA_BY_CODE.get(name["code"])
    if cam is None:
        raise DataError(f"{path}: unknown camera code {name['code']!r}; the 13-pose protocol uses "
                        f"{[c.code for c in CAMERAS]}")
    if name["illumination"] not in ILLUMINATION_IDS:
        raise DataError(f"{path}: illumination {name['illumination']!r} is outside Multi-PIE's 00-19")
    parts = path.parts
    expected = {"camera folder": (parts[-2], cam.cam_id), "recording folder": (parts[-3], name["recording"]),
                "subject folder": (parts[-4], name["subject"]), "session folder": (parts[-6], f"session{name['session']}")}
    for what, (found, wanted) in expected.items():
        if found != wanted:
            raise DataError(f"{path}: the file name says {wanted!r} but its {what} is {found!r}")
    return MultiPieName(name["subject"], name["session"], name["recording"], cam, name["illumination"])


def _data_root(root: Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: Multi-PIE root does not exist or is not a folder")
    for candidate in (root, root / "data"):
        if any(candidate.glob("session*/multiview")):
            return candidate
    raise DataError(f"{root}: no session*/multiview folder; expected Multi-PIE's layout "
                    "<root>/session01/multiview/<subject>/<recording>/<camera>/<file>.png")


def read_landmarks(csv_path: Path) -> dict[Path, tuple[tuple[tuple[float, float], ...], tuple[bool, ...]]]:
    """``file,x0,y0,...,x4,y4,v0,...,v4`` rows -> {normalised root / file: (5 points, 5 visible flags)}.

    Empty cells are unknown points (NaN, not visible); a missing v column means visible.
    """
    root = csv_path.parent
    table = {}
    with open(csv_path, newline="") as fh:
        reader = csv.DictReader(fh)
        needed = ["file"] + [f"{a}{i}" for i in range(5) for a in "xy"]
        missing = [c for c in needed if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{csv_path}: landmark file lacks columns {missing}; header must be "
                            "file,x0,y0,...,x4,y4[,v0,...,v4]")
        for line, row in enumerate(reader, start=2):
            try:
                pts = tuple((float(row[f"x{i}"] or "nan"), float(row[f"y{i}"] or "nan")) for i in range(5))
                vis = tuple(bool(int(row.get(f"v{i}") or 1)) and not math.isnan(pts[i][0]) for i in range(5))
            except ValueError as err:
                raise DataError(f"{csv_path}, line {line}: landmark values must be numbers ({err})") from err
            table[Path(os.path.normpath(root / row["file"]))] = (pts, vis)
    return table


def landmarks_for(table: dict, path: Path) -> tuple:
    """(5 points, 5 visible flags) of an image from a ``read_landmarks`` table, (None, None) if absent."""
    return table.get(Path(os.path.normpath(path)), (None, None))


def _scan(data_root: Path, strict: bool, skipped: list[Skipped]) -> dict[tuple, Path]:
    """All parseable images, keyed by (subject, session, recording, camera, illumination)."""
    index: dict[tuple, Path] = {}
    for multiview in sorted(data_root.glob("session*/multiview")):
        for path in sorted(p for p in multiview.rglob("*") if p.is_file() and is_image_file(p)):
            rel = path.relative_to(multiview).parts
            try:
                if len(rel) != 4:
                    raise DataError(f"{path}: not at <session>/multiview/<subject>/<recording>/<camera>/<file>")
                if rel[2] in EXCLUDED_CAMERAS:
                    continue
                if rel[2] not in {c.cam_id for c in CAMERAS}:
                    raise DataError(f"{path}: unknown camera folder {rel[2]!r}; the 13-pose protocol uses "
                                    f"{[c.cam_id for c in CAMERAS]}")
                name = parse_name(path)
                if name.key in index:
                    raise DataError(f"{path}: duplicate of {index[name.key]} (same subject, session, "
                                    "recording, camera and illumination)")
            except DataError as err:
                if strict:
                    raise
                skipped.append(Skipped(path, str(err).removeprefix(f"{path}: ")))
                continue
            index[name.key] = path
    return index


def load_multipie(root: Path, *, pair_illumination: str = "same", yaws: Iterable[int] | None = None,
                  illuminations: Iterable[str] | None = None, include_frontal: bool = True,
                  strict: bool = True, verify: str = "header") -> RecordList:
    """Every profile (and, with include_frontal, every frontal) paired with its 05_1 frontal.

    pair_illumination: "same" pairs with the frontal at the profile's illumination (TP-GAN);
    an id such as "07" pairs every profile with the frontal at that one illumination.
    yaws / illuminations: keep only these. strict=False skips bad files and lists them in
    ``.skipped`` instead of raising. verify: see ``images.check_record_images``.
    """
    if pair_illumination != "same" and pair_illumination not in ILLUMINATION_IDS:
        raise ValueError(f"pair_illumination must be 'same' or an id 00-19, not {pair_illumination!r}")
    root = Path(root)
    data_root = _data_root(root)
    skipped: list[Skipped] = []
    index = _scan(data_root, strict, skipped)
    if not index:
        raise DataError(f"{root}: no Multi-PIE images found (expected files named {NAME_RULE})")
    landmarks = read_landmarks(root / "landmarks.csv") if (root / "landmarks.csv").is_file() else {}
    keep_yaws = set(yaws) if yaws is not None else None
    keep_illums = set(illuminations) if illuminations is not None else None
    records = []
    for (subject, session, recording, cam_id, illum), path in sorted(index.items()):
        cam = camera(cam_id)
        if (keep_yaws is not None and cam.yaw not in keep_yaws) or (keep_illums is not None and illum not in keep_illums):
            continue
        if cam.cam_id == FRONTAL_CAMERA and not include_frontal:
            continue
        frontal_illum = illum if pair_illumination == "same" else pair_illumination
        frontal = index.get((subject, session, recording, FRONTAL_CAMERA, frontal_illum))
        if frontal is None:
            rule = (f"profile has no frontal: no {subject}_{session}_{recording}_051_{frontal_illum} image in "
                    f"{data_root / f'session{session}/multiview/{subject}/{recording}/{FRONTAL_CAMERA}'}")
            if strict:
                raise DataError(f"{path}: {rule}")
            skipped.append(Skipped(path, rule, "missing_pair"))
            continue
        lm, vis = landmarks_for(landmarks, path)
        records.append(FaceRecord(
            profile=path, frontal=frontal, identity=subject, yaw=cam.yaw, illumination=illum,
            camera=cam.cam_id, session=session, recording=recording,
            expression=EXPRESSIONS.get((session, recording), "unknown"),
            landmarks=lm, visible=vis, frontal_landmarks=landmarks_for(landmarks, frontal)[0],
            frontal_illumination=frontal_illum))
    return check_record_images(records, strict=strict, verify=verify, skipped=skipped, root=root, fmt="multipie")


def split_identities(records: RecordList, split: str) -> tuple[RecordList, RecordList]:
    """Identity-disjoint train/test split by name.

    "first:N": the first N identities (sorted) train, the rest test.
    "fraction:F": the first round(F * count) identities train.
    """
    ids = records.identities()
    kind, _, value = split.partition(":")
    if kind == "first" and value.isdigit():
        n = int(value)
    elif kind == "fraction":
        try:
            n = round(float(value) * len(ids))
        except (ValueError, OverflowError):          # not a number; NaN; infinite
            raise DataError(f"split {split!r}: fraction must be a finite number") from None
    else:
        raise DataError(f"unknown split {split!r}; use 'first:N' or 'fraction:F'")
    if not 0 < n < len(ids):
        raise DataError(f"split {split!r} leaves an empty side: {len(ids)} identities, {n} for training")
    return split_by_identity(records, ids[:n])


def _id_set(ids: Iterable) -> set[str]:
    """synthpie.json may list subjects as numbers or as 3-digit strings."""
    return {f"{i:03d}" if isinstance(i, int) else str(i) for i in ids}


def split_multipie(records: RecordList, split: str = "auto") -> tuple[RecordList, RecordList]:
    """Train/test records under a named protocol.

    "setting1": session 1 only, first 150 subjects train, rest test.
    "setting2": neutral-expression recordings of all sessions, first 200 subjects train, rest test.
    "synthpie": the ``train_ids`` / ``test_ids`` of ``<root>/synthpie.json``.
    "auto": "synthpie" when that file exists, else "setting2".
    "first:N" / "fraction:F": see ``split_identities``.
    """
    meta = Path(records.root or ".") / "synthpie.json"
    if split == "auto":
        split = "synthpie" if meta.is_file() else "setting2"
    if split == "synthpie":
        if not meta.is_file():
            raise DataError(f"{meta}: split 'synthpie' needs this file (written by the SynthPIE renderer)")
        info = json.loads(meta.read_text())
        train_ids, test_ids = _id_set(info["train_ids"]), _id_set(info["test_ids"])
        train = records.subset(r for r in records if r.identity in train_ids)
        test = records.subset(r for r in records if r.identity in test_ids)
        return train, test
    if split in SETTINGS:
        sessions, expression, n_train = SETTINGS[split]
        kept = records.subset(r for r in records if (sessions is None or r.session in sessions)
                              and (expression is None or r.expression == expression))
        ids = kept.identities()
        if len(ids) <= n_train:
            raise DataError(f"split {split!r} trains on the first {n_train} subjects but "
                            f"{records.root} has only {len(ids)}; use 'first:N' for a smaller set")
        return split_by_identity(kept, ids[:n_train])
    return split_identities(records, split)
