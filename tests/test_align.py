import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from data_tools.align import CANONICAL_LANDMARKS_128, align_face, alignment_matrix, transform_points
from data_tools.protocol import DataError

# a tilted, off-centre face in a 300x200 photo
LANDMARKS = np.array([[100.0, 80.0], [160.0, 95.0], [130.0, 120.0], [105.0, 150.0], [150.0, 160.0]])


@pytest.mark.parametrize("size", [128, 64])
def test_landmarks_land_on_tpgan_canonical_positions(size):
    pts = transform_points(alignment_matrix(LANDMARKS, size), LANDMARKS)
    s = size / 128
    assert pts[0, 1] == pytest.approx(pts[1, 1])                     # eyes level
    eye_c, mouth_c = pts[:2].mean(axis=0), pts[3:].mean(axis=0)
    assert eye_c == pytest.approx([64 * s, 40 * s])                  # centred, 40 px from the top
    assert mouth_c[1] - eye_c[1] == pytest.approx(48 * s)            # eye-to-mouth 48 px
    # a similarity: distances scale uniformly
    ratio = np.linalg.norm(pts[0] - pts[4]) / np.linalg.norm(LANDMARKS[0] - LANDMARKS[4])
    assert np.linalg.norm(pts[1] - pts[2]) / np.linalg.norm(LANDMARKS[1] - LANDMARKS[2]) == pytest.approx(ratio)


@pytest.mark.parametrize("size", [128, 48])
def test_image_content_moves_with_the_landmarks(size):
    img = Image.new("RGB", (300, 200))
    draw = ImageDraw.Draw(img)
    x, y = LANDMARKS[1]
    draw.rectangle([x - 4, y - 4, x + 3, y + 3], fill=(255, 255, 255))   # pixels x-4..x+3: centre at x
    aligned, pts = align_face(img, LANDMARKS, size)
    assert aligned.size == (size, size)
    red = np.asarray(aligned)[..., 0].astype(float)
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    cx, cy = (red * xs).sum() / red.sum(), (red * ys).sum() / red.sum()
    assert cx == pytest.approx(pts[1, 0], abs=0.6) and cy == pytest.approx(pts[1, 1], abs=0.6)


def test_eye_only_alignment_and_degenerate_landmarks():
    eyes_only = LANDMARKS.copy()
    eyes_only[2:] = np.nan
    pts = transform_points(alignment_matrix(eyes_only, 128), eyes_only)
    assert pts[1, 0] - pts[0, 0] == pytest.approx(44.0) and pts[0, 1] == pytest.approx(40.0)
    assert np.isnan(pts[2:]).all()
    upside_down = LANDMARKS.copy()
    upside_down[3:, 1] = 10
    with pytest.raises(DataError, match="mouth below the eyes"):
        alignment_matrix(upside_down, 128)
    with pytest.raises(DataError, match="both eye"):
        alignment_matrix(np.full((5, 2), np.nan), 128)


def test_canonical_landmarks_are_consistent_with_the_alignment_rule():
    eye_c = CANONICAL_LANDMARKS_128[:2].mean(axis=0)
    mouth_c = CANONICAL_LANDMARKS_128[3:].mean(axis=0)
    assert eye_c[1] == 40 and mouth_c[1] - eye_c[1] == 48
    assert math.isclose(eye_c[0], 64) and math.isclose(mouth_c[0], 64)
