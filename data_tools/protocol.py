"""Facts of the Multi-PIE protocol shared by every loader: cameras, yaws, illuminations, patch boxes.

Camera ids and yaw signs follow Multi-PIE's 13 head-height cameras (05_1 frontal, 24_0 = +90,
11_0 = -90); the TP-GAN patch sizes are those of the official code at 128x128.
"""
from __future__ import annotations

from dataclasses import dataclass


class DataError(ValueError):
    """A data set breaks a rule: the message names the offending file and the rule."""


@dataclass(frozen=True)
class Camera:
    cam_id: str      # Multi-PIE folder name, e.g. "05_1"
    code: str        # as written in file names, e.g. "051"
    yaw: int         # degrees; + = the subject's face turned to camera 24_0's side


CAMERAS: tuple[Camera, ...] = tuple(
    Camera(cam_id, cam_id.replace("_", ""), yaw)
    for cam_id, yaw in [
        ("24_0", 90), ("01_0", 75), ("20_0", 60), ("19_0", 45), ("04_1", 30), ("05_0", 15),
        ("05_1", 0),
        ("14_0", -15), ("13_0", -30), ("08_0", -45), ("09_0", -60), ("12_0", -75), ("11_0", -90),
    ]
)
FRONTAL_CAMERA = "05_1"
CAMERA_BY_ID = {cam.cam_id: cam for cam in CAMERAS}
CAMERA_BY_CODE = {cam.code: cam for cam in CAMERAS}
CAMERA_BY_YAW = {cam.yaw: cam for cam in CAMERAS}
YAW_BUCKETS: tuple[int, ...] = (15, 30, 45, 60, 75, 90)   # rank-1 is reported per |yaw|

ILLUMINATION_IDS: tuple[str, ...] = tuple(f"{i:02d}" for i in range(20))
NEUTRAL_ILLUMINATION = "07"   # configurable; FFWM/Keras TP-GAN use 06, Bob uses 00 (no flash)

# TP-GAN local patches at 128x128, (height, width); they scale with size/128.
PATCH_SIZES_128: dict[str, tuple[int, int]] = {
    "left_eye": (40, 40),
    "right_eye": (40, 40),
    "nose": (32, 40),
    "mouth": (32, 48),
}
LANDMARK_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def camera(cam: str) -> Camera:
    """Look a camera up by folder id ("05_1") or file code ("051")."""
    found = CAMERA_BY_ID.get(cam) or CAMERA_BY_CODE.get(cam)
    if found is None:
        raise DataError(f"unknown Multi-PIE camera {cam!r}; the 13-pose protocol uses {[c.cam_id for c in CAMERAS]}")
    return found


def patch_boxes(landmarks: "list[tuple[float, float]]", size: int) -> dict[str, tuple[int, int, int, int]]:
    """TP-GAN patch boxes ``(top, left, height, width)`` centred on the 5 landmarks, clipped inside the image.

    Eyes are centred on their landmark, the nose on the nose tip, the mouth on the midpoint of
    the two mouth corners; sizes are the 128x128 ones scaled by ``size / 128``.
    """
    if len(landmarks) != 5:
        raise DataError(f"expected 5 landmarks {LANDMARK_NAMES}, got {len(landmarks)}")
    (lx, ly), (rx, ry), (nx, ny), (m1x, m1y), (m2x, m2y) = landmarks
    centres = {
        "left_eye": (lx, ly),
        "right_eye": (rx, ry),
        "nose": (nx, ny),
        "mouth": ((m1x + m2x) / 2, (m1y + m2y) / 2),
    }
    boxes = {}
    for part, (h128, w128) in PATCH_SIZES_128.items():
        h, w = round(h128 * size / 128), round(w128 * size / 128)
        cx, cy = centres[part]
        top = min(max(round(cy - h / 2), 0), size - h)
        left = min(max(round(cx - w / 2), 0), size - w)
        boxes[part] = (top, left, h, w)
    return boxes

# Multi-PIE's two elevated cameras: real folders, but outside the 13-pose protocol (skipped quietly).
EXCLUDED_CAMERAS: tuple[str, ...] = ("08_1", "19_1")
