"""Checkpoints: a state dict plus a JSON manifest, written atomically, loaded without running code.

Layout on disk: ``name.pt`` (``torch.save`` of plain tensors/containers) and ``name.json`` (the
manifest: arch, config string, preset, seed, metrics, ... and the sha256 of ``name.pt``).
Loading checks the hash and uses ``torch.load(weights_only=True)``, so a tampered or pickled-code
checkpoint is refused with a clear message instead of being executed.
"""
from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import pickle
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, tampered with or incompatible."""


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)   # mkstemp makes the file private; a checkpoint is ordinary data
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def move_aside(path: str | os.PathLike) -> Path:
    """Rename `path` to ``<path>.old-<time>`` so that a run can start afresh without deleting it; return the new path."""
    path = Path(path)
    return path.rename(path.with_name(f"{path.name}.old-{time.strftime('%Y%m%d-%H%M%S')}"))


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any], manifest: dict[str, Any] | None = None) -> dict:
    """Save `state` to ``path`` (.pt) and its manifest (with the sha256) beside it (.json); return the manifest."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    atomic_write_bytes(path, payload)
    manifest = dict(manifest or {})
    manifest["file"] = path.name
    manifest["sha256"] = hashlib.sha256(payload).hexdigest()
    atomic_write_bytes(manifest_path(path), (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return manifest


def manifest_path(path: str | os.PathLike) -> Path:
    return Path(path).with_suffix(".json")


# Manifest keys with a fixed meaning, and the types they must have wherever they appear.
MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
    "file": (str,), "sha256": (str,), "arch": (str,), "preset": (str,), "recipe": (str,),
    "config": (str, dict, type(None)), "size": (int,), "seed": (int,), "step": (int,), "total_steps": (int,),
    "batch_size": (int,), "world_size": (int,), "knobs": (dict,), "metrics": (dict, type(None)),
    "settings": (dict,),
}


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest beside `path`, checked to be a JSON object whose known keys have their types."""
    mpath = manifest_path(path)
    if not mpath.is_file():
        raise CheckpointError(f"{mpath}: manifest missing (every checkpoint has a .json beside its .pt)")
    try:
        manifest = json.loads(mpath.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise CheckpointError(f"{mpath}: manifest is not UTF-8 text ({err})") from err
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{mpath}: manifest is not valid JSON ({err})") from err
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{mpath}: manifest must be a JSON object, not a {type(manifest).__name__}")
    for key, types in MANIFEST_TYPES.items():
        value = manifest.get(key)
        if key in manifest and (not isinstance(value, types) or isinstance(value, bool)):
            wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise CheckpointError(f"{mpath}: manifest field {key!r} must be {wanted}, got {value!r}")
    if "size" in manifest and manifest["size"] < 1:
        raise CheckpointError(f"{mpath}: manifest field 'size' must be a positive image size, got {manifest['size']}")
    bad_knobs = {k: v for k, v in manifest.get("knobs", {}).items()
                 if not isinstance(v, (int, float, str, bool, type(None), list))}
    if bad_knobs:
        raise CheckpointError(f"{mpath}: manifest knobs must be numbers, strings or lists, got {bad_knobs}")
    _check_knob_names(mpath, manifest)
    return manifest


def _check_knob_names(mpath: Path, manifest: dict[str, Any]) -> None:
    """A generator family's knobs must be ones its ``build`` takes (else building it would crash)."""
    from gancomp_lite.models.registry import FAMILIES, _family

    if manifest.get("arch") not in FAMILIES or not manifest.get("knobs"):
        return
    params = inspect.signature(_family(manifest["arch"]).build).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(manifest["knobs"]) - set(params) - {"config", "size"})
    if unknown:
        known = sorted(set(params) - {"config", "size"})
        raise CheckpointError(f"{mpath}: manifest knobs {unknown} are not knobs of {manifest['arch']} (it takes {known})")


def _check_archive(path: Path) -> None:
    """A zip checkpoint (torch's format) must read back whole; the pickle check comes after."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as err:
        raise CheckpointError(f"{path}: corrupt checkpoint archive ({err})") from err
    if bad is not None:
        raise CheckpointError(f"{path}: corrupt checkpoint archive (member {bad!r} fails its CRC check)")


def load_checkpoint(
    path: str | os.PathLike,
    expect: dict[str, Any] | None = None,
    verify_hash: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load ``(state, manifest)``; refuse a wrong hash, pickled code, or a manifest that disagrees with `expect`.

    `expect` maps manifest keys to required values, e.g. ``{"arch": "tpgan"}``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    manifest = read_manifest(path)
    if verify_hash:
        actual = sha256_file(path)
        if manifest.get("sha256") != actual:
            raise CheckpointError(
                f"{path}: sha256 mismatch (manifest {manifest.get('sha256')}, file {actual}); "
                "the file was modified or corrupted"
            )
    for key, wanted in (expect or {}).items():
        if manifest.get(key) != wanted:
            raise CheckpointError(f"{path}: incompatible checkpoint, {key}={manifest.get(key)!r} but {wanted!r} is required")
    _check_archive(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"{path}: refused to load, it contains objects other than tensors ({err})") from err
    except (RuntimeError, EOFError, ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: a checkpoint holds a dict of tensors, this one holds a {type(state).__name__}")
    return state, manifest
