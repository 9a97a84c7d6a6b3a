"""Export: the plain student's checkpoint loads with `load_generator`, TorchScript and ONNX reproduce it."""
from __future__ import annotations

import pytest
import torch

from gancomp_lite.checkpoint import read_manifest
from gancomp_lite.compress import export as E
from gancomp_lite.evaluate import load_generator
from gancomp_lite.models.registry import build

KNOBS = {"ngf": 8, "step": 4, "separable": ["c3", "c4", "c5"]}


def _student():
    torch.manual_seed(0)
    return build("resnet9", "4_8_4_4_8_4_4_8", 32, **KNOBS).eval()


def test_export_all_writes_files_that_reproduce_the_student(tmp_path):
    student = _student()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    manifest = {"arch": "resnet9", "config": "4_8_4_4_8_4_4_8", "size": 32, "knobs": KNOBS}
    paths = E.export_all(student, tmp_path, manifest, x)
    with torch.no_grad():
        want = student(x)
    loaded = load_generator(tmp_path / "student.pt")
    with torch.no_grad():
        assert torch.equal(loaded(x), want)
    assert read_manifest(tmp_path / "student.pt")["config"] == "4_8_4_4_8_4_4_8"
    scripted = torch.jit.load(paths["torchscript"])
    assert torch.allclose(scripted(x), want, atol=1e-6)
    assert paths["onnx_max_abs_diff"] <= E.ONNX_TOLERANCE
    import onnxruntime as ort

    session = ort.InferenceSession(paths["onnx"], providers=["CPUExecutionProvider"])
    batch5 = torch.rand(5, 3, 32, 32) * 2 - 1                      # the batch dimension is dynamic
    got = torch.from_numpy(session.run(None, {"profile": batch5.numpy()})[0])
    with torch.no_grad():
        assert torch.allclose(got, student(batch5), atol=1e-4)
    assert not list(tmp_path.glob("*.tmp"))


def test_tpgan_student_exports_with_its_template_boxes(tmp_path):
    torch.manual_seed(0)
    student = build("tpgan", None, 32, base=8, step=4, separable=True).eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    result = E.export_onnx(student, tmp_path / "g.onnx", x)
    assert result["max_abs_diff"] <= E.ONNX_TOLERANCE


def test_a_manifest_without_the_build_recipe_is_refused(tmp_path):
    with pytest.raises(ValueError, match="knobs"):
        E.save_student(tmp_path / "s.pt", _student(), {"arch": "resnet9", "config": None, "size": 32})
