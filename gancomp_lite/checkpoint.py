"""Checkpoints: a state dict plus a JSON manifest, written atomically, loaded without running code.

Layout on disk: ``name.pt`` (``torch.save`` of plain tensors/containers) and ``name.json`` (the
manifest: arch, config string, preset, seed, metrics, ... and the sha256 of ``name.pt``).
Loading checks the hash and uses ``torch.load(weights_only=True)``, so a tampered or pickled-code
checkpoint is refused with a clear message instead of being executed.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
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


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    mpath = manifest_path(path)
    if not mpath.is_file():
        raise CheckpointError(f"{mpath}: manifest missing (every checkpoint has a .json beside its .pt)")
    try:
        return json.loads(mpath.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{mpath}: manifest is not valid JSON ({err})") from err


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
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"{path}: refused to load, it contains objects other than tensors ({err})") from err
    except (RuntimeError, EOFError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable checkpoint ({err})") from err
    return state, manifest
