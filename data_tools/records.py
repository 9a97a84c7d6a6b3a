"""The one sample every loader yields, whatever the data set, and the list loaders return."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable


@dataclass(frozen=True)
class FaceRecord:
    """A profile image paired with the frontal image of the same identity.

    Paths, not pixels: a Dataset (``data_tools.dataset``) turns records into tensors.
    Landmarks are 5 (x, y) points in the profile image's pixel grid (eyes, nose tip, mouth
    corners), or None when the data set has none. Pixel (i, j) covers [j, j+1) x [i, i+1), so a
    pixel centre sits at (j + 0.5, i + 0.5).
    """
    profile: Path
    frontal: Path
    identity: str
    yaw: int
    illumination: str = ""
    camera: str = ""
    session: str = ""
    recording: str = ""
    expression: str = "neutral"
    landmarks: tuple[tuple[float, float], ...] | None = None
    frontal_landmarks: tuple[tuple[float, float], ...] | None = None
    visible: tuple[bool, ...] | None = None
    extra: dict = field(default_factory=dict, compare=False)
    frontal_illumination: str = ""


@dataclass(frozen=True)
class Skipped:
    """A file left out under ``strict=False``, and the rule it broke.

    kind is "bad_file" (unreadable, unparseable name, unknown camera, wrong size, duplicate)
    or "missing_pair" (a profile whose frontal does not exist or is itself bad).
    """
    path: Path
    rule: str
    kind: str = "bad_file"

    def __str__(self) -> str:
        return f"{self.path}: {self.rule}"


class RecordList(list):
    """A list of FaceRecords that remembers where it came from and what was skipped."""

    def __init__(self, records: Iterable[FaceRecord] = (), *, root: Path | None = None,
                 fmt: str = "", skipped: Iterable[Skipped] = ()):
        super().__init__(records)
        self.root = root
        self.fmt = fmt
        self.skipped: list[Skipped] = list(skipped)

    def identities(self) -> list[str]:
        """The sorted identity names present."""
        return sorted({r.identity for r in self})

    def subset(self, records: Iterable[FaceRecord]) -> "RecordList":
        """Another list from the same source (skipped files stay with the full load)."""
        return RecordList(records, root=self.root, fmt=self.fmt)


def split_by_identity(records: RecordList, train_ids: Iterable[str]) -> tuple[RecordList, RecordList]:
    """Identity-disjoint split: records of ``train_ids`` go to train, the rest to test."""
    train_set = set(train_ids)
    train = records.subset(r for r in records if r.identity in train_set)
    test = records.subset(r for r in records if r.identity not in train_set)
    return train, test
