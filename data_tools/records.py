"""The one sample every loader yields, whatever the data set."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class FaceRecord:
    """A profile image paired with the frontal image of the same identity.

    Paths, not pixels: a Dataset (``data_tools.dataset``) turns records into tensors.
    Landmarks are 5 (x, y) points in the profile image's pixel grid (eyes, nose tip, mouth
    corners), or None when the data set has none.
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
