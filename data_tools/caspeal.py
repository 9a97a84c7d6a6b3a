"""CAS-PEAL-R1: parse its 12-field file names and pair the pose subset with PM+00 frontals.

A name such as ``MY_000001_IEU+00_PM+45_EN_A0_D0_T0_BB_M0_R1_S0.tif`` reads (bob.db.caspeal)::

    0 gender F/M + age Y/M/O     4 E + expression N L F S C O     8 B + background B R D Y W
    1 subject, 6 digits          5 A0-A6 accessory                9-11 kept as written
    2 I + lighting: type E/F/L, elevation U/M/D, azimuth +00/+-45/+-90
    3 P + pose: pitch U/M/D, yaw +00/+-15/+-22/+-30/+-45/+-67/+-90
    6 D0-D2 distance             7 T0-T2 session

Images are found recursively under the root, so both the original folder tree and a flat copy
work. The frontal of a subject is one of its PM+00 images, preferring normal lighting IEU+00,
neutral expression, no accessory, distance 0 and session 0. Grayscale is read as 3 equal
channels. Eye (or 5-point) annotations are optional: a ``landmarks.csv`` at the root in the
Multi-PIE loader's format, with the nose and mouth cells left empty when only eyes are known.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from data_tools.images import check_record_images, is_image_file
from data_tools.multipie import landmarks_for, read_landmarks
from data_tools.protocol import DataError
from data_tools.records import FaceRecord, RecordList, Skipped

FIELD_RULES = [
    ("gender/age", r"(?P<gender>[FM])(?P<age>[YMO])"),
    ("subject", r"(?P<subject>\d{6})"),
    ("lighting", r"I(?P<light_type>[EFL])(?P<light_elevation>[UMD])(?P<light_azimuth>[+-]\d{2})"),
    ("pose", r"P(?P<pitch>[UMD])(?P<yaw>[+-]\d{2})"),
    ("expression", r"E(?P<expression>[NLFSCO])"),
    ("accessory", r"A(?P<accessory>[0-6])"),
    ("distance", r"D(?P<distance>[0-2])"),
    ("session", r"T(?P<session>[0-2])"),
    ("background", r"B(?P<background>[BRDYW])"),
    ("field 9", r"[A-Z0-9]+"),
    ("field 10", r"[A-Z0-9]+"),
    ("field 11", r"[A-Z0-9]+"),
]
EXPRESSIONS = {"N": "neutral", "L": "laugh", "F": "frown", "S": "surprise", "C": "eyes closed", "O": "mouth open"}
YAWS = frozenset({0, 15, 22, 30, 45, 67, 90, -15, -22, -30, -45, -67, -90})
NORMAL_LIGHTING = "IEU+00"


@dataclass(frozen=True)
class CasPealName:
    gender: str
    age: str
    subject: str
    lighting: str
    pitch: str
    yaw: int
    expression: str
    accessory: int
    distance: int
    session: int
    background: str

    @property
    def pose(self) -> str:
        return f"P{self.pitch}{self.yaw:+03d}"

    def frontal_preference(self) -> tuple:
        """Sort key: smaller is a better frontal target (normal light, neutral, no accessory)."""
        return (self.lighting != NORMAL_LIGHTING, self.expression != "neutral", self.accessory,
                self.distance, self.session)


def parse_name(path: Path) -> CasPealName:
    """Parse a CAS-PEAL-R1 file name; DataError names the field that breaks the grammar."""
    fields = path.stem.split("_")
    if len(fields) != 12:
        raise DataError(f"{path}: a CAS-PEAL-R1 name has 12 '_'-separated fields "
                        f"(e.g. MY_000001_IEU+00_PM+45_EN_A0_D0_T0_BB_M0_R1_S0.tif), this has {len(fields)}")
    values: dict[str, str] = {}
    for text, (what, rule) in zip(fields, FIELD_RULES):
        match = re.fullmatch(rule, text)
        if not match:
            raise DataError(f"{path}: field {text!r} is not a CAS-PEAL {what} code ({rule})")
        values.update(match.groupdict())
    yaw = int(values["yaw"])
    if yaw not in YAWS:
        raise DataError(f"{path}: pose yaw {yaw} is not one of CAS-PEAL's {sorted(YAWS)}")
    return CasPealName(
        gender=values["gender"], age=values["age"], subject=values["subject"],
        lighting=fields[2], pitch=values["pitch"], yaw=yaw,
        expression=EXPRESSIONS[values["expression"]], accessory=int(values["accessory"]),
        distance=int(values["distance"]), session=int(values["session"]), background=values["background"])


def load_caspeal(root: Path, *, pitches: Iterable[str] = ("M",), yaws: Iterable[int] | None = None,
                 include_frontal: bool = True, strict: bool = True, verify: str = "header") -> RecordList:
    """Every non-frontal pose image (pitch in ``pitches``, yaw in ``yaws``) paired with its
    subject's best PM+00 frontal; with include_frontal, also that frontal paired with itself.

    strict=False skips bad files and lists them in ``.skipped`` instead of raising.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: CAS-PEAL-R1 root does not exist or is not a folder")
    skipped: list[Skipped] = []
    parsed: list[tuple[Path, CasPealName]] = []
    first_of: dict[str, Path] = {}     # a CAS-PEAL name is unique: a second copy would count one shot twice
    for path in sorted(p for p in root.rglob("*") if p.is_file() and is_image_file(p)):
        try:
            name = parse_name(path)
            if path.name in first_of:
                raise DataError(f"{path}: duplicate of {first_of[path.name]} (CAS-PEAL names are unique; "
                                "the same shot would be counted twice)")
        except DataError as err:
            if strict:
                raise
            skipped.append(Skipped(path, str(err).removeprefix(f"{path}: ")))
            continue
        first_of[path.name] = path
        parsed.append((path, name))
    if not parsed:
        raise DataError(f"{root}: no CAS-PEAL-R1 images found (expected names such as "
                        "MY_000001_IEU+00_PM+45_EN_A0_D0_T0_BB_M0_R1_S0.tif)")
    frontals: dict[str, tuple[Path, CasPealName]] = {}
    for path, name in parsed:
        if name.pitch == "M" and name.yaw == 0:
            best = frontals.get(name.subject)
            if best is None or (name.frontal_preference(), path.name) < (best[1].frontal_preference(), best[0].name):
                frontals[name.subject] = (path, name)
    landmarks = read_landmarks(root / "landmarks.csv") if (root / "landmarks.csv").is_file() else {}
    keep_pitches, keep_yaws = set(pitches), set(yaws) if yaws is not None else None
    records = []
    for path, name in parsed:
        is_frontal = frontals.get(name.subject, (None,))[0] == path
        if name.pitch == "M" and name.yaw == 0 and not (is_frontal and include_frontal):
            continue   # other frontal shots (lighting, expression, accessory subsets)
        if not is_frontal and (name.pitch not in keep_pitches or (keep_yaws is not None and name.yaw not in keep_yaws)):
            continue
        if name.subject not in frontals:
            rule = f"profile has no frontal: subject {name.subject} has no PM+00 image under {root}"
            if strict:
                raise DataError(f"{path}: {rule}")
            skipped.append(Skipped(path, rule, "missing_pair"))
            continue
        frontal, frontal_name = frontals[name.subject]
        lm, vis = landmarks_for(landmarks, path)
        records.append(FaceRecord(
            profile=path, frontal=frontal, identity=name.subject, yaw=name.yaw, illumination=name.lighting,
            camera=name.pose, session=f"T{name.session}", expression=name.expression,
            landmarks=lm, visible=vis, frontal_landmarks=landmarks_for(landmarks, frontal)[0],
            frontal_illumination=frontal_name.lighting,
            extra={"gender": name.gender, "age": name.age, "pitch": name.pitch, "accessory": name.accessory,
                   "distance": name.distance, "background": name.background}))
    return check_record_images(records, strict=strict, verify=verify, skipped=skipped, root=root, fmt="caspeal")
