"""Export a compressed generator: checkpoint + manifest, TorchScript, and ONNX checked with onnxruntime.

The exported model is the plain sub-network (built at its own widths, no slicing at run time). The
checkpoint loads with `gancomp_lite.evaluate.load_generator` (and `gancomp-lite eval --generator`);
TorchScript and ONNX take one input, the profile image (N, 3, S, S) in [-1, 1], and return the
frontal image (TP-GAN and PIM place their part patches at the template boxes, as `forward(x)` does).
"""
from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gancomp_lite.checkpoint import atomic_write_bytes, save_checkpoint

ONNX_OPSET = 17
ONNX_TOLERANCE = 1e-4


class ExportError(RuntimeError):
    """An exported model does not reproduce the PyTorch model's output."""


class _ImageOnly(nn.Module):
    """forward(profile) -> frontal: the one-input signature the exported files have."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, profile: torch.Tensor) -> torch.Tensor:
        return self.generator(profile)


def save_student(path: Path, student: nn.Module, manifest: dict[str, Any]) -> dict[str, Any]:
    """The student's state dict (fp32) and manifest; `manifest` needs arch, config, size, knobs."""
    missing = [k for k in ("arch", "config", "size", "knobs") if k not in manifest]
    if missing:
        raise ValueError(f"a student manifest needs {missing}")
    return save_checkpoint(path, {k: v.detach().cpu() for k, v in student.state_dict().items()}, manifest)


def export_torchscript(student: nn.Module, path: Path, example: torch.Tensor) -> Path:
    """A traced TorchScript module of `student` (eval mode), written atomically."""
    module = _ImageOnly(student).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(module, example)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def export_onnx(student: nn.Module, path: Path, example: torch.Tensor) -> dict[str, Any]:
    """ONNX (opset 17, dynamic batch) of `student`, checked against PyTorch with onnxruntime.

    Returns {"path", "max_abs_diff"}; raises `ExportError` when onnxruntime's output differs by more
    than `ONNX_TOLERANCE`.
    """
    import onnxruntime as ort

    module = _ImageOnly(student).eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), tmp, input_names=["profile"], output_names=["frontal"],
                              opset_version=ONNX_OPSET, dynamic_axes={"profile": {0: "batch"}, "frontal": {0: "batch"}},
                              dynamo=False)
        session = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"profile": example.numpy()})[0])
        with torch.no_grad():
            want = module(example)
        diff = (got - want).abs().max().item()
        if not diff <= ONNX_TOLERANCE:
            raise ExportError(f"onnxruntime's output differs from PyTorch's by {diff:.2e} (> {ONNX_TOLERANCE:g})")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return {"path": str(path), "max_abs_diff": diff}


def export_all(student: nn.Module, out_dir: Path, manifest: dict[str, Any], example: torch.Tensor,
               name: str = "student") -> dict[str, Any]:
    """``<name>.pt`` + ``.json``, ``<name>.ts`` (TorchScript) and ``<name>.onnx`` in `out_dir`; their paths."""
    out_dir = Path(out_dir)
    student = student.eval().cpu()
    example = example.cpu()
    saved = save_student(out_dir / f"{name}.pt", student, manifest)
    ts = export_torchscript(student, out_dir / f"{name}.ts", example)
    onnx = export_onnx(student, out_dir / f"{name}.onnx", example)
    return {"checkpoint": str(out_dir / f"{name}.pt"), "sha256": saved.get("sha256"), "torchscript": str(ts),
            "onnx": onnx["path"], "onnx_max_abs_diff": onnx["max_abs_diff"]}
