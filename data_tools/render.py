"""Procedural 3-D heads and a batched renderer with exact self-occlusion, for SynthPIE.

Why this renderer and not a general ray-marcher: Multi-PIE's 13 head-height cameras differ only
by yaw. An orthographic camera turning about the vertical axis keeps every image row inside one
horizontal plane of the head, and a head whose horizontal cross-sections are star-shaped around
that axis is fully described by a radius map ``r(theta, y)`` (cylindrical coordinates). Casting
all the rays of one image row is then a 1-D depth test over that row's cross-section: the
nearest surface sample in each pixel column wins, so the far side of the face is hidden exactly
as a ray-caster would hide it. Geometry, normals and albedo are built once per identity and
expression (closed-form ray/ellipsoid hits plus smooth displacements), every camera is a cheap
re-projection of those samples, and every illumination a cheap re-shading of the same pixels.

Frames: x = the subject's left, y = up, z = forward (towards camera 05_1); lengths in cm, with
y = 0 at eye level. A camera at yaw ``psi`` sits in direction ``(sin psi, 0, cos psi)``, so at
positive yaw (camera 24_0's side) it sees the subject's left cheek and the nose points to the
image's left. Lights are fixed to the head, like Multi-PIE's flashes to the room: one
illumination id lights a face the same way in all 13 views.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

CM = 0.075          # image units per cm; the image spans [-1, 1], i.e. 26.7 cm of head
EYE_LEVEL = 0.15    # height of the eye line in image units (+1 = top edge)
R0 = 9.0            # cm; face coordinate X = R0 * theta, an arc length across the face
SUPERSAMPLE = 2     # rendered at 2x per axis, then averaged: anti-aliasing
DEPTH_STEPS = 4096  # z-buffer depth resolution, steps per cm

# Identity parameters: name -> (mean, standard deviation), cm unless noted. An identity draws
# mean + std * z / difficulty with z ~ N(0, 1) clipped to +-2.5, so cues are spread over the
# whole head (skull, jaw, eyes, brows, nose, lips, ears, hair) and colours vary only modestly.
# Small asymmetries (eye and brow heights, mouth tilt) make the far side more than a mirror.
IDENTITY_PARAMS: dict[str, tuple[float, float]] = {
    "head_w": (7.3, 0.35), "head_d": (9.9, 0.4), "head_h": (10.3, 0.4),
    "face_w": (6.4, 0.35), "forehead_z": (9.3, 0.3), "cheek": (0.5, 0.3),
    "jaw_w": (5.5, 0.45), "jaw_y": (-6.8, 0.4), "chin_y": (-10.2, 0.45),
    "chin_w": (2.4, 0.35), "chin_z": (8.7, 0.4), "brow_ridge": (0.35, 0.15),
    "eye_x": (3.15, 0.2), "eye_y": (0.0, 0.25), "eye_size": (1.0, 0.08), "eye_open": (0.42, 0.07),
    "eye_tilt": (0.03, 0.08), "socket": (0.7, 0.2), "iris_a": (0.0, 1.0), "iris_b": (0.0, 1.0),
    "brow_y": (1.55, 0.22), "brow_thick": (0.42, 0.09), "brow_arch": (0.3, 0.15),
    "brow_tilt": (0.0, 0.08), "brow_len": (2.5, 0.25), "brow_dark": (0.75, 0.12),
    "nose_y": (-4.2, 0.35), "nose_pro": (2.5, 0.35), "nose_bridge": (0.75, 0.15),
    "nose_width": (1.65, 0.18), "nose_hump": (0.0, 0.3), "nose_drop": (1.2, 0.2),
    "mouth_y": (-6.7, 0.3), "mouth_w": (2.45, 0.25), "lip_up": (0.5, 0.1), "lip_lo": (0.65, 0.12),
    "lip_pro": (0.45, 0.15), "lip_red": (0.55, 0.15),
    "ear_y": (-1.3, 0.35), "ear_h": (3.0, 0.3), "ear_out": (1.3, 0.3), "ear_back": (0.12, 0.06),
    "hair_line": (6.3, 0.8), "hair_temple": (1.0, 0.5), "hair_thick": (1.0, 0.35),
    "hair_back": (-6.0, 1.5), "hair_lum": (0.16, 0.03), "hair_warm": (0.5, 0.25),
    "eye_asym": (0.0, 0.12), "brow_asym": (0.0, 0.15), "mouth_tilt": (0.0, 0.04),
    "skin_lum": (0.62, 0.03), "skin_warm": (0.0, 0.025), "neck_w": (4.9, 0.3), "smile": (1.0, 0.2),
}
PARAM_NAMES: tuple[str, ...] = tuple(IDENTITY_PARAMS)


def _draw_z(rng: np.random.Generator, difficulty: float) -> np.ndarray:
    """The standard draw: one clipped z-score per identity parameter."""
    if not difficulty > 0:
        raise ValueError(f"difficulty must be > 0 (higher = identities closer together), got {difficulty}")
    return np.clip(rng.standard_normal(len(IDENTITY_PARAMS)), -2.5, 2.5)


def sample_identity(rng: np.random.Generator, difficulty: float = 1.0) -> np.ndarray:
    """One identity vector (len(PARAM_NAMES),); higher difficulty pulls identities towards the mean face."""
    mean, std = np.array(list(IDENTITY_PARAMS.values())).T
    return mean + std * _draw_z(rng, difficulty) / difficulty


# variety="wide": identities as varied as a real face set. Each draws a latent sex (about +1 male,
# -1 female) and an age in [0, 1]; the standard draw's z-scores then spread wider and shift with sex,
# value = mean + std * clip(z * spread + shift * sex, +-3.2) / difficulty, so the kinds of cues stay
# those of the standard set (no single pose-invariant give-away). name -> (spread, shift in stds per sex).
WIDE_SHAPE: dict[str, tuple[float, float]] = {
    "head_w": (1.3, 0.4), "head_d": (1.3, 0.4), "head_h": (1.2, 0.3), "face_w": (1.5, 0.6), "cheek": (1.5, -0.3),
    "jaw_w": (1.5, 0.9), "chin_w": (1.5, 0.6), "chin_z": (1.3, 0.3), "brow_ridge": (1.5, 0.9),
    "eye_size": (1.3, -0.3), "eye_open": (1.3, -0.2), "socket": (1.4, 0.3),
    "brow_y": (1.2, -0.6), "brow_thick": (1.5, 0.9), "brow_arch": (1.4, -0.6), "brow_len": (1.3, 0.3),
    "brow_dark": (1.5, 0.5), "nose_pro": (1.5, 0.5), "nose_bridge": (1.4, 0.4), "nose_width": (1.6, 0.5),
    "nose_hump": (1.8, 0.4), "nose_drop": (1.4, 0.2), "mouth_w": (1.4, 0.2), "lip_up": (1.6, -0.6),
    "lip_lo": (1.6, -0.6), "lip_pro": (1.4, -0.3), "ear_h": (1.3, 0.4), "ear_out": (1.5, 0.0),
    "neck_w": (1.3, 1.2),
}
NO_EDGE = 99.0   # cm above the eyes: a hair length or bald edge that never shows (short hair, not bald)
# Hair colours (albedo) and their shares on the lightest and the darkest skin; grey or white come with age.
HAIR_COLOURS: dict[str, tuple[tuple[float, float, float], float, float]] = {
    "black": ((0.040, 0.036, 0.034), 0.10, 0.80), "dark brown": ((0.11, 0.075, 0.055), 0.30, 0.20),
    "brown": ((0.24, 0.15, 0.09), 0.28, 0.0), "auburn": ((0.42, 0.16, 0.07), 0.10, 0.0),
    "blond": ((0.62, 0.48, 0.28), 0.22, 0.0),
}
GREY, WHITE = (0.40, 0.39, 0.37), (0.80, 0.79, 0.76)
# Hair styles: name -> (share of women, share of men, hair_len range (cm; NO_EDGE = above the ears),
# hair_thick range (cm), hair_cover (1 = full, low = scalp shows), bald edge (cm; NO_EDGE = not bald)).
HAIR_STYLES: dict[str, tuple[float, float, tuple[float, float], tuple[float, float], float, float]] = {
    "short": (0.15, 0.52, (NO_EDGE, NO_EDGE), (0.6, 1.3), 1.0, NO_EDGE),
    "medium": (0.28, 0.10, (-9.0, -6.0), (0.8, 1.5), 1.0, NO_EDGE),
    "long": (0.45, 0.04, (-16.0, -11.0), (0.9, 1.6), 1.0, NO_EDGE),
    "full": (0.12, 0.12, (NO_EDGE, NO_EDGE), (1.8, 2.6), 1.0, NO_EDGE),
    "buzz": (0.0, 0.11, (NO_EDGE, NO_EDGE), (0.1, 0.2), 0.45, NO_EDGE),
    "bald": (0.0, 0.11, (NO_EDGE, NO_EDGE), (0.25, 0.5), 1.0, 1.8),
}
# Facial hair of men: name -> (share, beard density, beard_reach (0 chin only, 1 up to the sideburns), moustache).
FACIAL_HAIR: dict[str, tuple[float, float, float, float]] = {
    "none": (0.50, 0.0, 0.0, 0.0), "stubble": (0.20, 0.4, 1.0, 0.4), "moustache": (0.08, 0.0, 0.0, 0.85),
    "goatee": (0.07, 0.85, 0.0, 0.85), "full beard": (0.15, 0.9, 1.0, 0.9),
}
# Parameters only wide identities have, appended after PARAM_NAMES: name -> meaning.
WIDE_PARAMS: dict[str, str] = {
    "hair_r": "hair albedo, red", "hair_g": "hair albedo, green", "hair_b": "hair albedo, blue",
    "hair_cover": "how fully hair hides the scalp (1 = fully)",
    "hair_len": "cm: where hair at the sides and back ends",
    "hair_side": "rad: how far forward long hair hangs beside the face",
    "bald": "cm: the bald crown's edge at the front",
    "beard": "beard density", "beard_reach": "0 = chin only, 1 = up the cheeks", "moustache": "moustache density",
    "glasses": "0 or 1", "frame_lum": "frame albedo", "lens_w": "cm: lens half-width", "lens_h": "cm: lens half-height",
}
WIDE_NAMES: tuple[str, ...] = tuple(WIDE_PARAMS)


def _pick(u: float, shares: list[float]) -> int:
    """The index that a uniform number u in [0, 1) selects from unnormalised shares."""
    return int(np.searchsorted(np.cumsum(shares) / np.sum(shares), u, side="right"))


def sample_wide_identity(rng: np.random.Generator, extra: np.random.Generator, difficulty: float = 1.0) -> np.ndarray:
    """One wide-variety identity (len(PARAM_NAMES) + len(WIDE_NAMES),).

    Shapes reuse the standard draw from ``rng``; colours, hair style, facial hair and glasses come
    from ``extra``, always the same count of numbers in the same order, so each identity is
    independent of the others and its standard draw is unchanged.
    """
    mean, std = np.array(list(IDENTITY_PARAMS.values())).T
    z = _draw_z(rng, difficulty)
    u = extra.random(16)
    g = np.clip(extra.standard_normal(3), -2.5, 2.5)
    sex = (1.0 if u[0] < 0.5 else -1.0) + 0.3 * g[0]
    age, tone, male = u[1], u[2], u[0] < 0.5
    for name, (spread, shift) in WIDE_SHAPE.items():
        i = PARAM_NAMES.index(name)
        z[i] = np.clip(z[i] * spread + shift * sex, -3.2, 3.2)
    value = dict(zip(PARAM_NAMES, mean + std * z / difficulty))

    value["skin_lum"] = 0.76 - 0.6 * tone                       # very light to very dark
    value["skin_warm"] = 0.015 + 0.11 * tone + 0.035 * g[1]     # darker skin is more saturated; warm or cool undertone
    value["lip_red"] *= 1 - 0.4 * tone
    value["brow_dark"] = min(max(value["brow_dark"], 0.25), 1.0)
    if u[3] < 0.4 * age ** 2:
        rgb = np.array(GREY) + (np.array(WHITE) - GREY) * u[4]
    else:
        colours = list(HAIR_COLOURS.values())
        rgb = np.array(colours[_pick(u[4], [light + (dark - light) * tone for _, light, dark in colours])][0])
    rgb = np.clip(rgb * np.exp(0.15 * g[2]), 0.02, 0.85)
    style = list(HAIR_STYLES.values())[_pick(u[5], [s[1] if male else s[0] for s in HAIR_STYLES.values()])]
    (len_lo, len_hi), (thick_lo, thick_hi) = style[2], style[3]
    value["hair_thick"] = thick_lo + (thick_hi - thick_lo) * u[6]
    if male:                                                    # receding with age
        value["hair_line"] += 3.5 * age * u[7]
        value["hair_temple"] += 1.5 * age * u[7]
    beard = list(FACIAL_HAIR.values())[_pick(u[8], [f[0] for f in FACIAL_HAIR.values()])] if male else (0.0,) * 4
    growth = 0.85 + 0.3 * u[12]
    extras = {"hair_r": rgb[0], "hair_g": rgb[1], "hair_b": rgb[2], "hair_cover": style[4],
              "hair_len": len_lo + (len_hi - len_lo) * u[10], "hair_side": 1.1 + 0.2 * u[11], "bald": style[5],
              "beard": beard[1] * growth, "beard_reach": beard[2], "moustache": beard[3] * growth,
              "glasses": float(u[9] < 0.12 + 0.2 * age), "frame_lum": 0.03 + 0.3 * u[13] ** 2,
              "lens_w": 1.6 + 0.45 * u[14], "lens_h": 1.1 + 0.4 * u[15]}
    return np.array([value[n] for n in PARAM_NAMES] + [extras[n] for n in WIDE_NAMES])


@dataclass(frozen=True)
class Light:
    """One flash set-up, fixed to the head: direction (degrees; azimuth + = from the subject's left), strength."""
    azimuth: float
    elevation: float
    intensity: float
    ambient: float

    def direction(self) -> tuple[float, float, float]:
        az, el = math.radians(self.azimuth), math.radians(self.elevation)
        return (math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el))


# 20 set-ups like Multi-PIE's: 00 = no flash (room light only), 01-13 a horizontal sweep from the
# subject's right (-90) to left (+90) with 07 frontal, 14-16 high flashes, 17-19 dim ones.
LIGHTS: dict[str, Light] = {
    "00": Light(0, 0, 0.0, 0.55),
    **{f"{i:02d}": Light(-90 + 15 * (i - 1), 10 if i != 7 else 15, 0.8, 0.3) for i in range(1, 14)},
    "14": Light(-35, 40, 0.8, 0.3), "15": Light(0, 45, 0.8, 0.3), "16": Light(35, 40, 0.8, 0.3),
    "17": Light(-60, 25, 0.5, 0.2), "18": Light(60, 25, 0.5, 0.2), "19": Light(0, -20, 0.45, 0.22),
}


def _params(values: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B, D) identity vectors -> name -> (B, 1, 1) tensors that broadcast over a (B, rows, samples) grid.

    Wide identities carry WIDE_NAMES after PARAM_NAMES; their presence switches the wide features on.
    """
    names = PARAM_NAMES + WIDE_NAMES if values.shape[1] > len(PARAM_NAMES) else PARAM_NAMES
    return {name: values[:, i, None, None] for i, name in enumerate(names)}


def _ellipsoid(s, c, y, centre, axes):
    """Distance from the vertical axis, along the horizontal direction (s, 0, c), to the far side of an
    axis-aligned ellipsoid; where the ray misses, a continuous extension that falls away below the
    hits, so a smooth union shows no seam at the primitive's silhouette."""
    cx, cy, cz = centre
    ax, ay, az = axes
    a = (s / ax) ** 2 + (c / az) ** 2
    b = -(s * cx / ax ** 2 + c * cz / az ** 2)
    k = (cx / ax) ** 2 + ((y - cy) / ay) ** 2 + (cz / az) ** 2 - 1
    disc = b * b - a * k
    return ((-b + disc.sign() * disc.abs().sqrt()) / a).clamp(min=0)


def _smax(radii: list[torch.Tensor], k: float) -> torch.Tensor:
    """Smooth union of star-shaped solids = smooth maximum of their radii (polynomial: radii more
    than k below the others have no influence, so a primitive's hidden silhouette leaves no seam)."""
    out = radii[0]
    for r in radii[1:]:
        h = (k - (out - r).abs()).clamp(min=0) / k
        out = torch.maximum(out, r) + h * h * k / 4
    return out


def _gauss(x, y, sx, sy):
    return torch.exp(-(x / sx) ** 2 - (y / sy) ** 2)


def _lerp(a, b, t):
    return a + (b - a) * t


def _hermite(y: torch.Tensor, knots_y: torch.Tensor, knots_v: torch.Tensor, end_slope: torch.Tensor) -> torch.Tensor:
    """Smooth (C1) curve through per-identity knots, evaluated at y.

    y: (B, ...); knots_y: (B, K) ascending; knots_v: (B, K, C); end_slope: (B, C) slope at the top
    knot (Catmull-Rom tangents inside, one-sided at the bottom). Returns (B, ..., C).
    """
    B, K, C = knots_v.shape
    flat = y.reshape(B, -1).contiguous()
    seg = (torch.searchsorted(knots_y.contiguous(), flat) - 1).clamp(0, K - 2)
    slope = torch.empty_like(knots_v)
    slope[:, 1:-1] = (knots_v[:, 2:] - knots_v[:, :-2]) / (knots_y[:, 2:] - knots_y[:, :-2]).unsqueeze(-1)
    slope[:, 0] = (knots_v[:, 1] - knots_v[:, 0]) / (knots_y[:, 1] - knots_y[:, 0]).unsqueeze(-1)
    slope[:, -1] = end_slope

    def pick(t: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return t.gather(1, i.unsqueeze(-1).expand(-1, -1, C) if t.dim() == 3 else i)

    y0, y1 = pick(knots_y, seg), pick(knots_y, seg + 1)
    h = (y1 - y0).unsqueeze(-1)
    t = ((flat - y0) / (y1 - y0)).clamp(0, 1).unsqueeze(-1)
    v = ((2 * t ** 3 - 3 * t ** 2 + 1) * pick(knots_v, seg) + (t ** 3 - 2 * t ** 2 + t) * h * pick(slope, seg)
         + (-2 * t ** 3 + 3 * t ** 2) * pick(knots_v, seg + 1) + (t ** 3 - t ** 2) * h * pick(slope, seg + 1))
    return v.reshape(*y.shape, C)


CRANIUM_Y = 3.0   # cm above the eyes: the skull is widest here; above it the skull is half an ellipsoid


def _base_radius(p, s, c, y):
    """The head without facial detail: a loft of horizontal superellipses (half-width W, front depth F,
    back depth K) along smooth per-identity profiles from chin to crown, smoothly joined to the neck."""
    y = y + torch.zeros_like(p["head_w"])
    fz, one = p["forehead_z"], torch.ones_like(p["forehead_z"])
    knots_y = torch.cat([p["chin_y"] - 0.9, p["chin_y"], p["chin_y"] + 1.2, p["jaw_y"],
                         -2.2 * one, 0.8 * one, CRANIUM_Y * one], 1)[:, :, 0]          # chin to skull, (B, K)
    knots_v = torch.stack([
        torch.cat([1.0 * one, p["chin_w"], p["chin_w"] + 1.3, p["jaw_w"], p["face_w"], p["head_w"] - 0.25, p["head_w"]], 1),
        torch.cat([2.0 * one, p["chin_z"] - 1.0, p["chin_z"], fz - 0.6, fz - 0.4, fz + 0.1, fz], 1),
        torch.cat([2.0 * one, 5.0 * one, 6.6 * one, 6.8 * one, p["head_d"] - 2.0, p["head_d"] - 0.5, p["head_d"]], 1),
    ], -1)[:, :, 0]                                       # (B, K, 3): half-width W, front depth F, back depth K
    low = _hermite(y, knots_y, knots_v, torch.zeros_like(knots_v[:, 0]))
    top = p["head_h"] + 2.3 - CRANIUM_Y
    dome = (1 - ((y - CRANIUM_Y) / top) ** 2).clamp(min=0).sqrt().unsqueeze(-1)
    dims = torch.where((y > CRANIUM_Y).unsqueeze(-1), dome * knots_v[:, -1].view(-1, *[1] * (y.dim() - 1), 3), low)
    dims = torch.where((y < knots_y[:, :1].view(-1, *[1] * (y.dim() - 1))).unsqueeze(-1), torch.zeros_like(dims), dims)
    W, F, K = dims.clamp(min=1e-3).unbind(-1)
    front = c >= 0
    q = torch.where(front, 2.4, 2.0)
    head = ((s.abs() / W) ** q + (c.abs() / torch.where(front, F, K)) ** q) ** (-1 / q)
    head = torch.where(dims[..., 0] > 1e-3, head, torch.zeros_like(head))
    neck = _ellipsoid(s, c, y, (0, 0 * y, -1.4), (p["neck_w"], 1e6, p["neck_w"] * 1.05)) * (y < 4)
    return _smax([head, neck], k=1.0)


def _eye_frame(p, X, Y, smile):
    """Per-eye local coordinates: along the eye (+ = outer corner), across it, and the opening's lid heights."""
    side = torch.sign(X)
    lx = (X - side * p["eye_x"]) * side
    ly = Y - p["eye_y"] - side * p["eye_asym"] / 2 - p["eye_tilt"] * lx
    w = 1.35 * p["eye_size"]
    shape = (1 - (lx / w) ** 2).clamp(min=0) ** 0.6
    upper = p["eye_open"] * p["eye_size"] * (1 - 0.2 * smile) * shape * (1 + 0.15 * lx / w)
    lower = 0.7 * upper
    return lx, ly, upper, lower


def _mouth_frame(p, X, smile):
    """Mouth half-width, the lip line's height at X, and the gap the lips open when smiling."""
    width = p["mouth_w"] + 0.45 * smile * p["smile"]
    line = p["mouth_y"] + p["mouth_tilt"] * X + (0.015 + 0.06 * smile * p["smile"]) * X ** 2
    gap = 0.4 * smile * p["smile"]
    return width, line, gap


def _nose_height(p, X, Y):
    """Nose as a displacement: a ridge from the nasion to the tip, an elliptical drop under it, and the alae."""
    nasion, tip = 0.3, p["nose_y"]
    u = ((Y - tip) / (nasion - tip)).clamp(0, 1)          # 0 at the tip, 1 at the nasion
    ridge = _lerp(p["nose_pro"], 0.35, u) + p["nose_hump"] * 4 * u * (1 - u) * 0.35
    below = p["nose_pro"] * (1 - ((tip - Y) / p["nose_drop"]) ** 2).clamp(min=0).sqrt()
    height = torch.where(Y >= tip, ridge * (Y <= nasion + 0.8), below)
    height = height * torch.sigmoid((nasion + 0.8 - Y) / 0.3)
    width = _lerp(0.95 * p["nose_width"], p["nose_bridge"], u ** 0.6)
    across = (1 - (X / width) ** 2).clamp(min=0) ** 2
    alae = sum(0.85 * _gauss(X - sx * (p["nose_width"] - 0.55), Y - tip + 0.55, 0.6, 0.55) for sx in (-1, 1))
    return height * across, alae


def _eye_centres(p: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Eyeball centres (x, y, z), each (B, 1, 1): set back in the skull so that only the lid opening shows them."""
    centres = []
    for sx in (-1, 1):
        th = sx * p["eye_x"] / R0
        ey = p["eye_y"] + sx * p["eye_asym"] / 2
        r_surf = _base_radius(p, torch.sin(th), torch.cos(th), ey)
        centres.append((r_surf * torch.sin(th), ey, r_surf * torch.cos(th) - EYE_RADIUS - 0.15 - p["socket"]))
    return centres


EYE_RADIUS = 1.2   # cm


def _face(p, theta, y, s, c, base, smile):
    """Eyes, brows, nose, cheeks and mouth: the skin radius, an eyeball mask and the albedo."""
    X, Y = R0 * theta, y
    lx, ly, upper, lower = _eye_frame(p, X, Y, smile)
    open_ = torch.sigmoid((upper - ly) / 0.05) * torch.sigmoid((ly + lower) / 0.05) * (upper > 0)
    socket = p["socket"] * _gauss(lx + 0.1, ly + 0.1, 1.8, 1.2)
    brow = p["brow_ridge"] * _gauss(X.abs() - 2.2, Y - 1.3, 2.4, 0.9)
    nose, alae = _nose_height(p, X, Y)
    width, line, gap = _mouth_frame(p, X, smile)
    along = (1 - (X / width) ** 2).clamp(min=0).sqrt()
    ml = Y - line
    up_lip = (p["lip_up"] * along * (1 - 0.25 * torch.exp(-(X / 0.35) ** 2))).clamp(min=0.05)
    lo_lip = (p["lip_lo"] * along).clamp(min=0.05)
    lips = p["lip_pro"] * along ** 2 * (torch.exp(-((ml - gap / 2 - up_lip / 2) / up_lip) ** 2)
                                   + torch.exp(-((ml + gap / 2 + lo_lip / 2) / lo_lip) ** 2))
    mouth_open = torch.sigmoid((gap / 2 - ml.abs()) / 0.04) * (along > 0) if smile else torch.zeros_like(ml)
    groove = 0.25 * torch.exp(-(ml / 0.09) ** 2) * along
    cheeks = (0.3 + 0.3 * p["cheek"]) * _gauss(X.abs() - p["face_w"] + 2.2, Y + 1.9, 1.7, 1.3)
    cheeks = cheeks + 0.35 * smile * p["smile"] * _gauss(X.abs() - 3.6, Y + 3.3, 1.4, 1.2)
    skin = base + brow + nose + alae + lips + cheeks - socket - 1.5 * open_ - groove - 0.5 * mouth_open

    # Eyeballs: spheres behind the lid opening; they show only where the skin is cut away.
    centres = _eye_centres(p)
    eye_r = torch.maximum(*[_ellipsoid(s, c, y, ctr, (EYE_RADIUS,) * 3) for ctr in centres])
    is_eye = eye_r > skin
    radius = torch.maximum(skin, eye_r)

    # Skin albedo with blush, lips, mouth line (teeth when smiling), nostrils, brows and lash lines.
    lum = p["skin_lum"]
    albedo = _skin_rgb(p)
    blush = 0.06 * _gauss(X.abs() - 3.5, Y + 2.8, 1.6, 1.4) + 0.04 * _gauss(X, Y - p["nose_y"], 1.0, 1.0)
    albedo = albedo * (1 - 0.25 * blush) + torch.stack([blush, blush * 0.1, blush * 0.1])
    lip_mask = (torch.sigmoid((up_lip + gap / 2 - ml) / 0.06) * torch.sigmoid((ml + lo_lip + gap / 2) / 0.06)
                * torch.sigmoid((width - X.abs()) / 0.12))
    albedo = _lerp(albedo, _rgb(p["skin_lum"], 0.62 * lum + 0.12, 0.34 * lum, 0.36 * lum), lip_mask * p["lip_red"] * 1.4)
    albedo = _lerp(albedo, _rgb(p["skin_lum"], 0.12, 0.12, 0.12), 0.8 * torch.exp(-(ml / 0.07) ** 2) * along * (1 - smile))
    albedo = _lerp(albedo, _rgb(p["skin_lum"], 0.75, 0.72, 0.66), mouth_open)
    nostril = sum(_gauss(X - sx * 0.55, Y - p["nose_y"] + 0.85, 0.35, 0.18) for sx in (-1, 1))
    albedo = albedo * (1 - 0.75 * nostril.clamp(max=1))
    bx = lx / p["brow_len"]
    by = ly - p["brow_y"] - torch.sign(X) * p["brow_asym"] / 2 - p["brow_arch"] * (1 - (bx - 0.1) ** 2) + p["brow_tilt"] * lx
    thick = torch.where((bx > -0.9) & (bx < 1.0), p["brow_thick"] * (1 - 0.5 * bx.clamp(0, 1)), -1.0)
    albedo = _lerp(albedo, _hair_rgb(p), torch.sigmoid((thick - by.abs()) / 0.08) * p["brow_dark"])
    albedo = albedo * (1 - 0.7 * torch.exp(-((ly - upper) / 0.08) ** 2) * (upper > 0.05))

    # Eyes: sclera, a coloured iris darkening towards its rim, a pupil; gaze straight ahead.
    iris_rgb = torch.stack([0.30 + 0.06 * p["iris_a"] - 0.05 * p["iris_b"],
                            0.20 + 0.04 * p["iris_a"] + 0.04 * p["iris_b"],
                            0.12 + 0.02 * p["iris_a"] + 0.09 * p["iris_b"]]).clamp(0.03, 0.6)
    eye_rgb = _rgb(p["skin_lum"], 0.85, 0.82, 0.8) * torch.ones_like(radius)
    for cx, cy, cz in centres:
        d = ((radius * s - cx) ** 2 + (y - cy) ** 2).sqrt()
        front = radius * c > cz
        eye_rgb = _lerp(eye_rgb, iris_rgb * (0.55 + 0.45 * (1 - d / 0.55).clamp(0, 1)), torch.sigmoid((0.55 - d) / 0.05) * front)
        eye_rgb = _lerp(eye_rgb, torch.zeros_like(eye_rgb), torch.sigmoid((0.2 - d) / 0.04) * front)
    albedo = torch.where(is_eye, eye_rgb, albedo)
    gloss = torch.where(is_eye, 0.8, 0.15 + 0.25 * lip_mask)
    power = torch.where(is_eye, 80.0, 18.0)
    return radius, skin, albedo, gloss, power


def _ears(p, theta, y, s, c):
    """Both ears: flattened ellipsoids on the sides of the head, each with a hollow (concha)."""
    ears = []
    for sx in (-1, 1):
        ang = sx * (math.pi / 2 + p["ear_back"])
        cx, cz = (p["head_w"] - 0.6) * torch.sin(ang), (p["head_w"] - 0.6) * torch.cos(ang) - 0.6
        r = _ellipsoid(s, c, y, (cx, p["ear_y"], cz), (0.5 + p["ear_out"], p["ear_h"], 1.9))
        ears.append(r - 0.4 * _gauss(R0 * (theta - ang) / 1.4, y - p["ear_y"] + 0.3, 0.55, 1.2 * p["ear_h"] / 3))
    return torch.maximum(*ears)


def _rgb(like: torch.Tensor, r, g, b) -> torch.Tensor:
    """A colour as a (3, ...) tensor on like's device, broadcast with like and the channel values."""
    return torch.stack(torch.broadcast_tensors(*[like * 0 + v for v in (r, g, b)]))


def _skin_rgb(p):
    lum = p["skin_lum"]
    return _rgb(p["skin_lum"], lum * (1.0 + p["skin_warm"]), lum * 0.80, lum * (0.68 - p["skin_warm"]))


def _hair_rgb(p):
    if "hair_r" in p:
        return _rgb(p["skin_lum"], p["hair_r"], p["hair_g"], p["hair_b"])
    return p["hair_lum"] * _rgb(p["skin_lum"], 1 + 0.35 * p["hair_warm"], 0.85, 0.7 - 0.2 * p["hair_warm"])


def _band(d, half, edge):
    """1 where |d| < half, falling to 0 over about `edge`."""
    return torch.sigmoid((half - d.abs()) / edge)


def _facial_hair_and_glasses(p, theta, y, smile, albedo, is_eye):
    """Wide identities: beard, moustache and glasses painted on the skin in face coordinates (albedo only,
    so landmarks stay put), placed by the identity's own mouth, nose, jaw, eyes and ears so that all
    views agree."""
    X, Y = R0 * theta, y
    ax = X.abs()
    width, line, gap = _mouth_frame(p, X, smile)
    lips = (torch.sigmoid((width + 0.1 - ax) / 0.1) * torch.sigmoid((line + p["lip_up"] + gap / 2 - Y) / 0.06)
            * torch.sigmoid((Y - line + p["lip_lo"] + gap / 2) / 0.06))
    # Beard: from the neck below the jaw up to a line that climbs from the mouth's corners to the sideburns.
    sideburn = R0 * 1.4
    reach = 2.6 + p["beard_reach"] * (sideburn - 2.6)
    top = line + (p["ear_y"] + 0.6 * p["ear_h"] - line) * ((ax - width) / (sideburn - width)).clamp(0, 1) ** 0.7
    bottom = _lerp(p["chin_y"] - 1.7, p["jaw_y"] - 1.2, (ax / 7).clamp(max=1))
    beard = torch.sigmoid((reach - ax) / 0.3) * torch.sigmoid((top - Y) / 0.25) * torch.sigmoid((Y - bottom) / 0.4)
    # Moustache: under the nose, over the top of the upper lip, drooping at the corners.
    low = line + 0.3 * p["lip_up"] + gap / 2 - 0.6 * (ax / width).clamp(max=1.3) ** 3
    tache = (torch.sigmoid((width + 0.3 - ax) / 0.15) * torch.sigmoid((p["nose_y"] - 1.0 - Y) / 0.12)
             * torch.sigmoid((Y - low) / 0.1))
    texture = 1 + 0.2 * torch.sin(7.3 * X + 3.1 * Y) * torch.sin(2.9 * X - 6.7 * Y)
    hair = (torch.maximum(p["beard"] * beard * (1 - lips), p["moustache"] * tache) * texture).clamp(0, 1)
    albedo = _lerp(albedo, _hair_rgb(p), hair * ~is_eye)
    # Glasses: a rounded-rectangle rim round each eye, a bridge over the nose and arms back to the ears.
    lx, ly = ax - p["eye_x"], Y - p["eye_y"] - 0.15
    rim = ((lx / p["lens_w"]) ** 4 + (ly / p["lens_h"]) ** 4) ** 0.25
    frame = _band((rim - 1) * p["lens_h"], 0.12, 0.04)
    bar_y = p["eye_y"] + 0.45
    frame = frame + _band(Y - bar_y, 0.1, 0.04) * torch.sigmoid((p["eye_x"] - p["lens_w"] + 0.2 - ax) / 0.05)
    along = ((lx - p["lens_w"]) / (sideburn - p["eye_x"] - p["lens_w"])).clamp(0, 1)
    arm_y = bar_y + (p["ear_y"] + p["ear_h"] - 0.3 - bar_y) * along
    arm = _band(Y - arm_y, 0.09, 0.04) * torch.sigmoid((lx - p["lens_w"]) / 0.05) * torch.sigmoid((R0 * 1.5 - ax) / 0.1)
    frame_rgb = p["frame_lum"] * _rgb(p["skin_lum"], 1.15, 1.0, 0.85)
    return _lerp(albedo, frame_rgb, p["glasses"] * (frame + arm).clamp(max=1) * ~is_eye)


def _hair_volume(p, y):
    """Hair thickness (cm) at height y: fuller on the crown."""
    return p["hair_thick"] * (0.55 + 0.45 * torch.sigmoid((y - 4.0) / 2.0))


def head_surface(p: dict[str, torch.Tensor], theta: torch.Tensor, y: torch.Tensor, smile: float,
                 face: bool = True, ears: bool = True) -> dict[str, torch.Tensor]:
    """Radius (cm), albedo (3, ...) and gloss of the head at cylindrical sample points (theta, y).

    theta and y broadcast to (B, rows, samples); ``smile`` is 0 (neutral) or 1. ``face`` and
    ``ears`` may be switched off where the caller knows those parts cannot reach (speed only).
    """
    s, c = torch.sin(theta), torch.cos(theta)
    base = _base_radius(p, s, c, y)
    if face:
        radius, skin, albedo, gloss, power = _face(p, theta, y, s, c, base, smile)
    else:
        radius = skin = base
        albedo, gloss, power = _skin_rgb(p) * torch.ones_like(base), torch.full_like(base, 0.15), torch.full_like(base, 18.0)
    is_eye = radius > skin
    wide = "hair_r" in p
    if wide:
        albedo = _facial_hair_and_glasses(p, theta, y, smile, albedo, is_eye)

    # Hair: a shell over the skull above a hairline that runs from the forehead round the ears to the nape.
    a = theta.abs()
    ear_top = p["ear_y"] + p["ear_h"] + 0.3
    knots = [(0.0, p["hair_line"]), (0.65, p["hair_line"] + p["hair_temple"]), (0.95, 3.5 - 0.3 * p["hair_temple"]),
             (1.25, 0.3 * torch.ones_like(ear_top)), (1.42, ear_top), (1.9, ear_top), (2.3, p["hair_back"]), (math.pi + 0.01, p["hair_back"])]
    hairline = torch.zeros_like(a + ear_top)
    for (a0, h0), (a1, h1) in zip(knots, knots[1:]):
        t = ((a - a0) / (a1 - a0)).clamp(0, 1)
        hairline = torch.where((a >= a0) & (a < a1), h0 + (h1 - h0) * (1 - torch.cos(math.pi * t)) / 2, hairline)
    hair_m = torch.sigmoid((y - hairline) / 0.25)
    if wide:                          # a bald crown: bare above an edge that rises from the front to the back
        hair_m = hair_m * torch.sigmoid((p["bald"] + 3.0 * (1 - c) - y) / 0.5)
    radius = torch.maximum(skin + _hair_volume(p, y) * hair_m, radius)
    is_hair = (hair_m > 0.1) & ~is_eye
    if wide:
        # Longer hair falls from the skull's widest line down to hair_len: straight at the sides, inwards at
        # the back, its front edge slanting backwards as it falls; it hides the ears.
        hang = (torch.sigmoid((y - p["hair_len"]) / 0.5) * (y < CRANIUM_Y)
                * torch.sigmoid((a - p["hair_side"] - 0.02 * (CRANIUM_Y - y)) / 0.06))
        at = torch.full_like(p["hair_thick"], CRANIUM_Y)
        drape = _base_radius(p, s, c, at) + _hair_volume(p, at) - 0.3 * (-c).clamp(min=0) * (CRANIUM_Y - y)
        drape = torch.maximum(drape, skin + 0.6 * p["hair_thick"])
        is_hair = is_hair | (drape * hang > radius - 0.3)     # from the foot of the hair's edge on
        radius = torch.maximum(radius, drape * hang)
    streaks = 1 + 0.18 * torch.sin(R0 * theta * 9 + 1.7 * y) * torch.sin(R0 * theta * 2.3 - 0.4 * y)
    hair_rgb = _lerp(_skin_rgb(p), _hair_rgb(p), p["hair_cover"]) if wide else _hair_rgb(p)
    albedo = torch.where(is_hair, hair_rgb * streaks, albedo)
    gloss = torch.where(is_hair, 0.12, gloss)
    power = torch.where(is_hair, 10.0, power)
    if ears:
        ear = _ears(p, theta, y, s, c)
        if wide:
            ear = ear - 4 * hang
        is_ear = ear > radius
        radius = _smax([radius, ear], k=0.12)
        albedo = torch.where(is_ear, _skin_rgb(p) * _rgb(p["skin_lum"], 1.02, 0.95, 0.95), albedo)
        gloss = torch.where(is_ear, 0.15, gloss)
        power = torch.where(is_ear, 18.0, power)
    return {"radius": radius, "albedo": albedo, "gloss": gloss, "power": power}


FACE_THETA, EAR_THETA = 1.05, 2.35   # |theta| ranges that face detail and ears can reach (radians)
FACE_Y = (-13.0, 5.0)                # heights (cm) that face detail can reach


def surface_maps(p: dict[str, torch.Tensor], theta: torch.Tensor, ys: torch.Tensor, smile: float) -> dict[str, torch.Tensor]:
    """head_surface on the full (B, rows, n) grid of sorted theta (n,) and rows ys (B, rows, 1), evaluating
    face detail and ears only in the blocks of the grid they can reach."""
    cut = [0, int((theta < -EAR_THETA).sum()), int((theta < -FACE_THETA).sum()),
           int((theta < FACE_THETA).sum()), int((theta < EAR_THETA).sum()), len(theta)]
    in_face = ((ys > FACE_Y[0]) & (ys < FACE_Y[1])).any(0).flatten()
    r0 = int(torch.nonzero(in_face)[0]) if in_face.any() else 0
    r1 = int(torch.nonzero(in_face)[-1]) + 1 if in_face.any() else 0
    columns = []
    for k, (i0, i1) in enumerate(zip(cut, cut[1:])):
        th = theta[i0:i1].view(1, 1, -1)
        if k == 2:
            rows = [head_surface(p, th, ys[:, :r0], smile, face=False, ears=False),
                    head_surface(p, th, ys[:, r0:r1], smile, face=True, ears=False),
                    head_surface(p, th, ys[:, r1:], smile, face=False, ears=False)]
            columns.append({key: torch.cat([r[key] for r in rows], -2) for key in rows[0]})
        else:
            columns.append(head_surface(p, th, ys, smile, face=False, ears=k in (1, 3)))
    return {key: torch.cat([col[key] for col in columns], -1) for key in columns[0]}


def landmarks_3d(p: dict[str, torch.Tensor], smile: float) -> torch.Tensor:
    """(B, 5, 3) head-frame points: image-left eye (the subject's right), image-right eye, nose tip, mouth corners.

    Eye centres are the iris centres (gaze straight ahead); the nose tip is the most forward point
    of the nose's midline; the mouth corners sit on the lip line at the mouth's half-width.
    """
    points = [torch.stack([cx, cy, cz + EYE_RADIUS], -1).reshape(-1, 3) for cx, cy, cz in _eye_centres(p)]
    ys = p["nose_y"] + torch.linspace(-0.8, 0.8, 33, device=p["nose_y"].device).view(1, 1, -1)
    zero = torch.zeros_like(ys)
    r = head_surface(p, zero, ys, smile)["radius"]
    best = r.argmax(-1, keepdim=True)
    points.append(torch.stack([zero[:, 0, 0], ys.gather(-1, best).flatten(), r.gather(-1, best).flatten()], -1))
    width = _mouth_frame(p, 0, smile)[0]
    for sx in (-1, 1):
        theta = sx * width / R0
        line = _mouth_frame(p, sx * width, smile)[1]
        rc = head_surface(p, theta, line, smile)["radius"]
        points.append(torch.stack([rc * torch.sin(theta), line, rc * torch.cos(theta)], -1).reshape(-1, 3))
    return torch.stack(points, 1)


@dataclass
class Views:
    """Rendered views of B identities under V cameras and L lights."""
    images: torch.Tensor      # (B, V, L, 3, H, W), float in [0, 1]
    landmarks: torch.Tensor   # (B, V, 5, 2), pixel coordinates (x, y); (0, 0) = top-left image corner
    visible: torch.Tensor     # (B, V, 5), bool: the landmark is the nearest surface along its ray


def render_heads(identities: torch.Tensor, yaws: torch.Tensor, lights: list[Light], size: int, smile: float = 0.0,
                 shift: torch.Tensor | None = None, scale: torch.Tensor | None = None,
                 lift: torch.Tensor | None = None, gain: torch.Tensor | None = None) -> Views:
    """Render B identities (B, D) under yaws (B, V) degrees and the given lights.

    Nuisance terms (all optional): ``shift`` (B, V) horizontal offset and ``scale``/``lift`` (B,)
    zoom and vertical offset in image units, ``gain`` (B, V, L) flash strength factors.
    """
    B, V = yaws.shape
    dev = identities.device
    p = _params(identities)
    shift = torch.zeros(B, V, device=dev) if shift is None else shift
    scale = torch.ones(B, device=dev) if scale is None else scale
    lift = torch.zeros(B, device=dev) if lift is None else lift
    gain = torch.ones(B, V, len(lights), device=dev) if gain is None else gain
    rows = size * SUPERSAMPLE
    n = 6 * rows                                  # surface samples per row: several per pixel column
    theta = (torch.arange(n, device=dev) + 0.5) * (2 * math.pi / n) - math.pi
    v = 1 - (torch.arange(rows, device=dev) + 0.5) * (2 / rows)
    ys = (v.view(1, rows, 1) - EYE_LEVEL - lift.view(B, 1, 1)) / (CM * scale.view(B, 1, 1))
    psi = torch.deg2rad(yaws).view(B, V, 1, 1)

    surf = surface_maps(p, theta, ys, smile)
    feats = _surface_features(surf, theta, ys)
    zbuf = _zbuffer(surf["radius"], theta, psi, shift, scale, rows)
    hit = zbuf >= 0
    g = torch.gather(feats.unsqueeze(1).expand(B, V, -1, rows, n), -1,
                     (zbuf.clamp(min=0) % n).unsqueeze(2).expand(B, V, feats.shape[1], rows, rows))
    images = _shade(g, hit, psi, lights, gain, size)
    landmarks, visible = _landmarks(p, theta, psi, shift, scale, lift, size, smile)
    return Views(images, landmarks, visible)


def _surface_features(surf: dict[str, torch.Tensor], theta: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """(B, 9, rows, n) per-sample shading inputs: normal (3), albedo (3), gloss, gloss power, cavity occlusion."""
    r = surf["radius"]
    n = r.shape[-1]
    # Normals from the radius map: n ~ (r sin - r_t cos, -r r_y, r cos + r_t sin).
    r_t = (r.roll(-1, -1) - r.roll(1, -1)) / (2 * (2 * math.pi / n))
    r_pad = torch.cat([r[:, :1], r, r[:, -1:]], 1)
    y_pad = torch.cat([2 * ys[:, :1] - ys[:, 1:2], ys, 2 * ys[:, -1:] - ys[:, -2:-1]], 1)
    r_y = (r_pad[:, 2:] - r_pad[:, :-2]) / (y_pad[:, 2:] - y_pad[:, :-2])
    st, ct = torch.sin(theta), torch.cos(theta)
    normal = torch.stack([r * st - r_t * ct, -r * r_y, r * ct + r_t * st], 1)
    normal = normal / normal.norm(dim=1, keepdim=True).clamp(min=1e-6)
    # Ambient occlusion from cavities: how far the surface lies below its local average.
    k = max(3, n // 96) | 1
    padded = F.pad(F.pad(r.unsqueeze(1), (k // 2, k // 2, 0, 0), mode="circular"), (0, 0, k // 2, k // 2), mode="replicate")
    ao = torch.exp(-1.2 * (F.avg_pool2d(padded, k, stride=1)[:, 0] - r).clamp(min=0))
    return torch.cat([normal, surf["albedo"].permute(1, 0, 2, 3), surf["gloss"].unsqueeze(1),
                      surf["power"].unsqueeze(1), ao.unsqueeze(1)], 1)


def _zbuffer(r: torch.Tensor, theta: torch.Tensor, psi: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
             cols: int) -> torch.Tensor:
    """(B, V, rows, cols) index of the nearest surface sample per pixel (-1 = background).

    Each sample is projected into every camera and the largest depth wins via scatter_reduce on a
    key that packs (depth, sample index). Scalars are folded into small (B, V, 1, n) factors so each
    big (B, V, rows, n) tensor costs few passes.
    """
    B, V = psi.shape[:2]
    n = r.shape[-1]
    st, ct = torch.sin(theta), torch.cos(theta)
    across = (st * torch.cos(psi) - ct * torch.sin(psi)) * (CM * scale.view(B, 1, 1, 1) * cols / 2)
    toward = (st * torch.sin(psi) + ct * torch.cos(psi)) * DEPTH_STEPS
    rr = r.unsqueeze(1)
    col = torch.addcmul((shift.view(B, V, 1, 1) + 1) * (cols / 2) + 1, rr, across).clamp_(0, cols + 1).long()
    key = torch.addcmul(torch.full_like(toward, 64.0 * DEPTH_STEPS), rr, toward).long().mul_(n)
    key.add_(torch.arange(n, device=r.device))
    key = torch.where(rr > 0.05, key, torch.full_like(key, -1))
    zbuf = torch.full((B, V, r.shape[1], cols + 2), -1, dtype=torch.long, device=r.device)
    zbuf.scatter_reduce_(-1, col, key, reduce="amax")
    return zbuf[..., 1:-1]                    # columns 0 and cols + 1 collect the samples outside the image


def _shade(g: torch.Tensor, hit: torch.Tensor, psi: torch.Tensor, lights: list[Light], gain: torch.Tensor,
           size: int) -> torch.Tensor:
    """(B, V, L, 3, size, size) images: per light, ambient (darkened in cavities) + Lambert + Blinn-Phong."""
    B, V = psi.shape[:2]
    nrm, alb, gloss, power, occ = g[:, :, 0:3], g[:, :, 3:6], g[:, :, 6:7], g[:, :, 7:8], g[:, :, 8:9]
    view = torch.cat([torch.sin(psi), torch.zeros_like(psi), torch.cos(psi)], 2).unsqueeze(-1)   # (B, V, 3, 1, 1)
    images = []
    for i, lt in enumerate(lights):
        ldir = torch.tensor(lt.direction(), device=g.device).view(1, 1, 3, 1, 1)
        half = F.normalize(ldir + view, dim=2)
        inten = (lt.intensity * gain[:, :, i]).view(B, V, 1, 1, 1)
        lam = (nrm * ldir).sum(2, keepdim=True).clamp(min=0)
        spec = gloss * (nrm * half).sum(2, keepdim=True).clamp(min=0).pow(power) * (lam > 0)
        rgb = alb * (lt.ambient * occ + inten * lam) + inten * spec
        background = 0.22 + 0.35 * lt.ambient + 0.15 * inten
        rgb = torch.where(hit.unsqueeze(2), rgb, background.expand_as(rgb))
        rows = rgb.shape[-1]
        images.append(F.avg_pool2d(rgb.reshape(B * V, 3, rows, rows), rows // size).reshape(B, V, 3, size, size))
    return torch.stack(images, 2).clamp(0, 1) ** (1 / 1.3)


def _landmarks(p, theta, psi, shift, scale, lift, size, smile) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, V, 5, 2) pixel positions and (B, V, 5) visibility of the 5 landmarks.

    Visibility is tested exactly in each landmark's own horizontal slice: a landmark is hidden if the
    slice's outline crosses the ray from the landmark to the camera in front of it.
    """
    B, V = psi.shape[:2]
    pts = landmarks_3d(p, smile)                                                                     # (B, 5, 3)
    x3, y3, z3 = pts[..., 0].unsqueeze(1), pts[..., 1].unsqueeze(1), pts[..., 2].unsqueeze(1)         # (B, 1, 5)
    psi = psi[:, :, :, 0]                                                                            # (B, V, 1)
    lu = x3 * torch.cos(psi) - z3 * torch.sin(psi)
    ld = x3 * torch.sin(psi) + z3 * torch.cos(psi)
    ring = head_surface(p, theta.view(1, 1, -1), pts[..., 1:2], smile)["radius"].unsqueeze(1)       # (B, 1, 5, n)
    ou = ring * torch.sin(theta - psi.unsqueeze(-1)) - lu.unsqueeze(-1)
    od = ring * torch.cos(theta - psi.unsqueeze(-1))
    ou2, od2 = ou.roll(-1, -1), od.roll(-1, -1)
    crosses = (ou * ou2 <= 0) & (ou != ou2)
    at = od + (od2 - od) * (ou / (ou - ou2).where(ou != ou2, torch.ones_like(ou)))
    hidden = (crosses & (at > ld.unsqueeze(-1) + 0.2)).any(-1)
    px = (lu * CM * scale.view(B, 1, 1) + shift.view(B, V, 1) + 1) * (size / 2)
    py = ((1 - (y3 * CM * scale.view(B, 1, 1) + EYE_LEVEL + lift.view(B, 1, 1))) * (size / 2)).expand(B, V, -1)
    visible = ~hidden & (px >= 0) & (px <= size) & (py >= 0) & (py <= size)
    return torch.stack([px, py], -1), visible
