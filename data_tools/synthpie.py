"""SynthPIE: the default data set, rendered procedurally in Multi-PIE's own layout, never downloaded.

Multi-PIE is licensed, so the package renders a stand-in with the same structure: identities
seen by the 13 head-height cameras (+-90 degrees yaw) under up to 20 flash set-ups, with an
optional smile recording, written as
``<root>/session01/multiview/<subj>/<rec>/<cam>/<subj>_01_<rec>_<cam code>_<illum>.png``
plus ``synthpie.json`` (generation parameters) and ``landmarks.csv`` (5 projected landmarks
with visibility flags). One Multi-PIE loader therefore reads SynthPIE and real Multi-PIE alike.
The same seed gives byte-identical files; ``ensure_synthpie`` renders once into a cache.
"""
from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from data_tools import render
from data_tools.protocol import CAMERAS, ILLUMINATION_IDS, NEUTRAL_ILLUMINATION
from gancomp_lite.errors import InputError
from gancomp_lite.presets import get_preset

FORMAT, VERSION = "synthpie", 2   # bump whenever the rendered bytes change: it keys the cache
SESSION = "01"
RECORDINGS = {"neutral": "01", "smile": "02"}      # like Multi-PIE session 1
DEFAULT_DIFFICULTY = 1.0
# "standard": the shipped set (similar skin tones, one kind of hair); "wide": identities as varied as a
# real face set (render.sample_wide_identity). Only a non-standard variety enters the cache key and
# synthpie.json, so standard trees and caches stay byte-identical to those rendered before it existed.
VARIETIES = ("standard", "wide")
# Which flashes a set of n illuminations uses: the neutral one first, then a spread of the others.
ILLUMINATION_ORDER = ("07", "04", "10", "00", "01", "13", "15", "06", "08", "02",
                      "12", "14", "16", "05", "09", "03", "11", "17", "18", "19")
LANDMARK_HEADER = ["file"] + [f"{a}{i}" for i in range(5) for a in "xy"] + [f"v{i}" for i in range(5)]
COMPLETE = ".complete"


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines the rendered bytes (and hence the cache key)."""
    seed: int
    size: int
    ids: int
    train: int
    illuminations: tuple[str, ...]
    neutral_illumination: str
    difficulty: float
    expressions: tuple[str, ...]
    variety: str = "standard"

    def metadata(self) -> dict:
        subjects = [f"{i:03d}" for i in range(1, self.ids + 1)]
        return {"format": FORMAT, "version": VERSION, "seed": self.seed, "size": self.size, "ids": self.ids,
                "train_ids": subjects[:self.train], "test_ids": subjects[self.train:],
                "illuminations": list(self.illuminations), "neutral_illumination": self.neutral_illumination,
                "difficulty": self.difficulty, "expressions": list(self.expressions),
                "recordings": {RECORDINGS[e]: e for e in self.expressions},
                "cameras": {cam.cam_id: cam.yaw for cam in CAMERAS},
                **({"variety": self.variety} if self.variety != "standard" else {})}

    def key(self) -> str:
        """Short hash of every field that changes the bytes (variety only when not standard)."""
        fields = asdict(self)
        if self.variety == "standard":
            del fields["variety"]
        return hashlib.sha256(json.dumps({**fields, "version": VERSION}, sort_keys=True).encode()).hexdigest()[:10]


def synth_config(preset: str = "quick", ids: int | None = None, size: int | None = None, illums: int | None = None,
                 seed: int = 0, difficulty: float = DEFAULT_DIFFICULTY, expressions=("neutral",),
                 neutral_illumination: str = NEUTRAL_ILLUMINATION, variety: str = "standard") -> SynthConfig:
    """Resolve a preset plus overrides into a checked SynthConfig; bad values raise InputError naming the rule."""
    pre = get_preset(preset)
    total = pre.train_ids + pre.test_ids
    ids = total if ids is None else ids
    size = pre.image_size if size is None else size
    illums = pre.illuminations if illums is None else illums
    for name, value, low, high in [("ids", ids, 1, 999), ("size", size, 8, 4096),
                                   ("illums", illums, 1, len(ILLUMINATION_IDS)), ("seed", seed, 0, 2 ** 63 - 1)]:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
            raise InputError(f"SynthPIE {name} must be an integer in [{low}, {high}], got {value!r}")
    if not (isinstance(difficulty, (int, float)) and difficulty > 0):
        raise InputError(f"SynthPIE difficulty must be a number > 0 (higher = identities closer together), got {difficulty!r}")
    expressions = (expressions,) if isinstance(expressions, str) else tuple(expressions)
    if not expressions or len(set(expressions)) != len(expressions) or not set(expressions) <= set(RECORDINGS):
        raise InputError(f"SynthPIE expressions must be distinct names from {sorted(RECORDINGS)}, got {expressions!r}")
    if neutral_illumination not in ILLUMINATION_IDS:
        raise InputError(f"neutral illumination must be one of {ILLUMINATION_IDS[0]}..{ILLUMINATION_IDS[-1]}, "
                         f"got {neutral_illumination!r}")
    if variety not in VARIETIES:
        raise InputError(f"SynthPIE variety must be one of {', '.join(VARIETIES)}, got {variety!r}")
    order = (neutral_illumination,) + tuple(i for i in ILLUMINATION_ORDER if i != neutral_illumination)
    train = ids if ids == 1 else min(max(round(ids * pre.train_ids / total), 1), ids - 1)
    return SynthConfig(int(seed), int(size), int(ids), train, tuple(sorted(order[:illums])), neutral_illumination,
                       float(difficulty), tuple(sorted(expressions, key=list(RECORDINGS).index)), variety)


def image_path(subject: int, recording: str, cam_id: str, illumination: str) -> str:
    """Multi-PIE's path grammar, relative to the data root (forward slashes)."""
    code = cam_id.replace("_", "")
    return (f"session{SESSION}/multiview/{subject:03d}/{recording}/{cam_id}/"
            f"{subject:03d}_{SESSION}_{recording}_{code}_{illumination}.png")


def _identity(cfg: SynthConfig, subject: int) -> np.ndarray:
    """Subject's parameters: the standard draw from [seed, subject]; wide's extra draws from their own
    stream [seed, subject, 2], so they never shift the standard numbers or another subject's."""
    rng = np.random.default_rng([cfg.seed, subject])
    if cfg.variety == "wide":
        return render.sample_wide_identity(rng, np.random.default_rng([cfg.seed, subject, 2]), cfg.difficulty)
    return render.sample_identity(rng, cfg.difficulty)


def _nuisance(seed: int, subject: int) -> dict[str, np.ndarray]:
    """Per-subject jitter, drawn at fixed shapes so any subset of options renders the same pixels."""
    rng = np.random.default_rng([seed, subject, 1])
    n_rec, n_cam = len(RECORDINGS), len(CAMERAS)
    return {"yaw": np.clip(rng.normal(0, 1.0, (n_rec, n_cam)), -2, 2),          # degrees
            "shift": np.clip(rng.normal(0, 0.01, (n_rec, n_cam)), -0.02, 0.02),  # image units
            "scale": np.clip(rng.normal(1, 0.02, n_rec), 0.95, 1.05),
            "lift": np.clip(rng.normal(0, 0.01, n_rec), -0.02, 0.02),
            "gain": np.clip(rng.normal(1, 0.05, (n_rec, n_cam, len(ILLUMINATION_IDS))), 0.85, 1.15)}


def _prepare_out(root: Path) -> Path:
    """A new, empty temporary sibling of `root` to render into; `root` must be new, empty or a SynthPIE tree.

    Leftovers of killed renders of the same `root` are cleaned first: a half-written ``.tmp`` tree is
    deleted, and an old tree moved aside just before a kill (``.old``) is put back if `root` is missing.
    """
    if root.exists() and (not root.is_dir() or (any(root.iterdir()) and not (root / "synthpie.json").is_file())):
        raise InputError(f"{root} is not empty and holds no synthpie.json: refusing to write a SynthPIE tree into it")
    root.parent.mkdir(parents=True, exist_ok=True)
    for kind in ("tmp", "old"):
        for stale in sorted(root.parent.glob(f".{glob.escape(root.name)}.{kind}-*")):
            if _alive(stale.name.rsplit("-", 1)[-1]):
                continue                  # another process is rendering the same tree right now
            if kind == "old" and not root.exists() and (stale / "synthpie.json").is_file():
                stale.rename(root)
            else:
                shutil.rmtree(stale, ignore_errors=True)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def _alive(pid: str) -> bool:
    """Whether process `pid` runs (a temporary folder named after it is still being written)."""
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _replace_tree(tmp: Path, root: Path) -> None:
    """Put the finished render at `root`: the old tree is moved aside first and deleted last."""
    old = root.parent / f".{root.name}.old-{os.getpid()}"
    if root.exists():
        root.rename(old)
    tmp.rename(root)
    shutil.rmtree(old, ignore_errors=True)


def render_synthpie(out: str | os.PathLike, preset: str = "quick", ids: int | None = None, size: int | None = None,
                    illums: int | None = None, seed: int = 0, progress: bool = True,
                    difficulty: float = DEFAULT_DIFFICULTY, expressions=("neutral",),
                    neutral_illumination: str = NEUTRAL_ILLUMINATION, device: str | None = None,
                    batch: int | None = None, variety: str = "standard") -> dict:
    """Render the SynthPIE tree into ``out`` (empty, new, or an older SynthPIE tree, which is replaced);
    return a small JSON-able summary.

    The render goes to a temporary sibling that replaces ``out`` only once complete, so a killed
    render leaves the previous tree as it was.

    Geometry is built once per identity and expression and re-projected for all 13 cameras;
    shading all illuminations reuses the same pixels. ``batch`` identities render together.
    """
    cfg = synth_config(preset, ids, size, illums, seed, difficulty, expressions, neutral_illumination, variety)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    batch = batch or (16 if device.type == "cuda" else max(1, (4 * 64 * 64) // (cfg.size * cfg.size)))
    final = Path(out)
    root = _prepare_out(final)
    lights = [render.LIGHTS[i] for i in cfg.illuminations]
    light_index = [ILLUMINATION_IDS.index(i) for i in cfg.illuminations]
    rows: list[list[str]] = []
    start = time.perf_counter()
    total = cfg.ids * len(CAMERAS) * len(lights) * len(cfg.expressions)
    with tqdm(total=total, desc="SynthPIE", unit="img", disable=not progress) as bar:
        for first in range(1, cfg.ids + 1, batch):
            subjects = list(range(first, min(first + batch, cfg.ids + 1)))
            identity = torch.tensor(np.stack([_identity(cfg, s) for s in subjects]), dtype=torch.float32, device=device)
            jitter = [_nuisance(cfg.seed, s) for s in subjects]
            for expression in cfg.expressions:
                rec = RECORDINGS[expression]
                k = list(RECORDINGS).index(expression)

                def stacked(name: str) -> torch.Tensor:
                    return torch.tensor(np.stack([j[name][k] for j in jitter]), dtype=torch.float32, device=device)

                yaws = torch.tensor([cam.yaw for cam in CAMERAS], dtype=torch.float32, device=device) + stacked("yaw")
                views = render.render_heads(identity, yaws, lights, cfg.size, smile=float(expression == "smile"),
                                            shift=stacked("shift"), scale=stacked("scale"), lift=stacked("lift"),
                                            gain=stacked("gain")[:, :, light_index])
                pixels = (views.images * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 1, 2, 4, 5, 3).cpu().numpy()
                marks, visible = views.landmarks.cpu().numpy(), views.visible.cpu().numpy()
                for b, subject in enumerate(subjects):
                    for v, cam in enumerate(CAMERAS):
                        (root / image_path(subject, rec, cam.cam_id, "00")).parent.mkdir(parents=True, exist_ok=True)
                        coords = [f"{value:.2f}" for value in marks[b, v].reshape(-1)]
                        flags = [str(int(f)) for f in visible[b, v]]
                        for li, illumination in enumerate(cfg.illuminations):
                            rel = image_path(subject, rec, cam.cam_id, illumination)
                            Image.fromarray(pixels[b, v, li]).save(root / rel, format="PNG")
                            rows.append([rel] + coords + flags)
                    bar.update(len(CAMERAS) * len(lights))
    with open(root / "landmarks.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(LANDMARK_HEADER)
        writer.writerows(sorted(rows))
    (root / "synthpie.json").write_text(json.dumps(cfg.metadata(), indent=1) + "\n")
    _replace_tree(root, final)
    return {"root": str(final), "images": len(rows), "ids": cfg.ids, "train_ids": cfg.train,
            "test_ids": cfg.ids - cfg.train, "size": cfg.size, "illuminations": list(cfg.illuminations),
            "expressions": list(cfg.expressions), "variety": cfg.variety,
            "seconds": round(time.perf_counter() - start, 2)}


def default_cache_dir() -> Path:
    return Path(os.environ.get("GANCOMP_CACHE") or Path.home() / ".cache" / "gancomp-lite")


def ensure_synthpie(preset: str = "quick", seed: int = 0, cache_dir: str | os.PathLike | None = None,
                    ids: int | None = None, size: int | None = None, illums: int | None = None,
                    difficulty: float = DEFAULT_DIFFICULTY, expressions=("neutral",),
                    neutral_illumination: str = NEUTRAL_ILLUMINATION, progress: bool = True,
                    device: str | None = None, variety: str = "standard") -> Path:
    """The root of a complete SynthPIE tree for these parameters, rendering it only if the cache lacks it.

    The cache folder is keyed by every parameter that changes the bytes. A render goes to a temporary
    folder that is renamed into place after its completion marker is written, so a folder without the
    marker (an interrupted or damaged render) is never trusted: it is deleted and rendered again.
    """
    cfg = synth_config(preset, ids, size, illums, seed, difficulty, expressions, neutral_illumination, variety)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    tag = f"-{cfg.variety}" if cfg.variety != "standard" else ""
    root = cache / f"synthpie-{cfg.size}px-{cfg.ids}ids-{len(cfg.illuminations)}il-seed{cfg.seed}{tag}-{cfg.key()}"
    if (root / COMPLETE).is_file():
        return root
    if root.exists():
        shutil.rmtree(root)
    tmp = cache / f".{root.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    summary = render_synthpie(tmp, ids=cfg.ids, size=cfg.size, illums=len(cfg.illuminations), seed=cfg.seed,
                              difficulty=cfg.difficulty, expressions=cfg.expressions,
                              neutral_illumination=cfg.neutral_illumination, progress=progress, device=device,
                              preset=preset, variety=cfg.variety)
    (tmp / COMPLETE).write_text(json.dumps(summary) + "\n")
    try:
        tmp.rename(root)
    except OSError:                       # another process finished the same render first
        shutil.rmtree(tmp, ignore_errors=True)
        if not (root / COMPLETE).is_file():
            raise
    return root


def read_landmarks(root: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """landmarks.csv as {relative path: ((5, 2) pixel coordinates, (5,) bool visibility)}."""
    out = {}
    with open(Path(root) / "landmarks.csv", newline="") as f:
        for row in csv.DictReader(f):
            xy = np.array([[float(row[f"x{i}"]), float(row[f"y{i}"])] for i in range(5)], dtype=np.float32)
            out[row["file"]] = (xy, np.array([row[f"v{i}"] == "1" for i in range(5)]))
    return out


def preview_grid(root: str | os.PathLike, ids: int = 6, illumination: str | None = None, recording: str = "01",
                 landmarks: bool = False) -> np.ndarray:
    """An (ids * H, 13 * W, 3) uint8 grid: one row per identity, the 13 cameras from +90 to -90 degrees.

    With ``landmarks``, the 5 points are drawn as dots: green where visible, red where hidden.
    """
    root = Path(root)
    meta = json.loads((root / "synthpie.json").read_text())
    illumination = illumination or meta["neutral_illumination"]
    marks = read_landmarks(root) if landmarks else {}
    rows = []
    for subject in range(1, min(ids, meta["ids"]) + 1):
        tiles = []
        for cam in CAMERAS:
            rel = image_path(subject, recording, cam.cam_id, illumination)
            tile = np.array(Image.open(root / rel).convert("RGB"))
            if rel in marks:
                for (x, y), seen in zip(*marks[rel]):
                    r, c = int(y), int(x)
                    if 0 <= r < tile.shape[0] and 0 <= c < tile.shape[1]:
                        tile[max(r - 1, 0):r + 1, max(c - 1, 0):c + 1] = (40, 220, 40) if seen else (230, 40, 40)
            tiles.append(tile)
        rows.append(np.concatenate(tiles, 1))
    return np.concatenate(rows, 0)


def save_png(array: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an (H, W, 3) uint8 array as PNG, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")
    return path
