"""TP-GAN's face alignment from 5 landmarks (``face_db_align_single_custom.m``, Light-CNN test crop).

At 128x128: rotate so the eyes are level, scale so the vertical distance from the eye centre to
the mouth centre is 48 px, and place the eye centre 40 px from the top, horizontally centred.
Other sizes scale every length by size/128. One similarity transform does all three, so the
landmarks map exactly and the image is resampled once.

Coordinates are continuous: pixel (i, j) covers [j, j+1) x [i, i+1).
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from data_tools.protocol import DataError

EC_Y_128 = 40.0       # eye centre, px from the top
EC_MC_Y_128 = 48.0    # eye centre to mouth centre, vertical px
# Only when the mouth is unknown (e.g. CAS-PEAL's eye-only annotations): an approximate
# inter-ocular distance for a frontal face in the same crop. Not from TP-GAN.
EYE_DISTANCE_128 = 44.0
# A typical aligned frontal face at 128 (eye and mouth heights exact by construction, x spreads
# approximate): used to place the frontal patch boxes when a data set has no landmarks.
CANONICAL_LANDMARKS_128 = np.array([[42.0, 40.0], [86.0, 40.0], [64.0, 66.0], [47.0, 88.0], [81.0, 88.0]])


def canonical_landmarks(size: int) -> np.ndarray:
    """The canonical 5 points scaled to a size x size crop."""
    return CANONICAL_LANDMARKS_128 * (size / 128.0)


def alignment_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 similarity transform taking source pixels to the aligned size x size crop."""
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    if not np.isfinite(pts[:2]).all():
        raise DataError(f"alignment needs both eye landmarks, got {pts[:2].tolist()}")
    eye_l, eye_r = pts[0], pts[1]
    eye_c = (eye_l + eye_r) / 2
    dx, dy = eye_r - eye_l
    angle = math.atan2(dy, dx) if math.hypot(dx, dy) > 1e-6 else 0.0
    if abs(angle) > math.pi / 2:      # eyes given right-to-left in the image (e.g. mirrored)
        angle -= math.copysign(math.pi, angle)
    cos, sin = math.cos(-angle), math.sin(-angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    mouth = pts[3:5]
    if np.isfinite(mouth).all():
        ec_mc_y = (rot @ (mouth.mean(axis=0) - eye_c))[1]
        if ec_mc_y <= 1e-6:
            raise DataError(f"alignment needs the mouth below the eyes; landmarks {pts.tolist()}")
        scale = EC_MC_Y_128 * size / 128.0 / ec_mc_y
    else:
        eye_dist = math.hypot(dx, dy)
        if eye_dist <= 1e-6:
            raise DataError(f"eye-only alignment needs two distinct eyes; landmarks {pts.tolist()}")
        scale = EYE_DISTANCE_128 * size / 128.0 / eye_dist
    linear = scale * rot
    target = np.array([size / 2.0, EC_Y_128 * size / 128.0])
    return np.hstack([linear, (target - linear @ eye_c)[:, None]])


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points (NaN stays NaN)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def align_face(image: Image.Image, landmarks: np.ndarray, size: int) -> tuple[Image.Image, np.ndarray]:
    """The TP-GAN-aligned size x size crop and the landmarks in its pixel grid.

    Strong down-scaling first box-filters by an integer factor, so small crops do not alias.
    """
    matrix = alignment_matrix(landmarks, size)
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    factor = max(1, int(1.0 / scale)) if scale < 0.5 else 1
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    if factor > 1:
        image = image.reduce(factor)
        matrix = matrix @ np.diag([factor, factor, 1.0])   # reduced pixel -> source pixel -> crop
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    aligned = image.transform((size, size), Image.Transform.AFFINE, data=tuple(inverse.ravel()),
                              resample=Image.Resampling.BILINEAR)
    return aligned, transform_points(alignment_matrix(pts, size), pts)
