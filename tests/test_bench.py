"""gancomp_lite.bench and its plots: latency, memory, backends, reports, roofline, time per layer kind."""
from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from gancomp_lite import bench as B
from gancomp_lite.checkpoint import save_checkpoint
from gancomp_lite.cli import main
from gancomp_lite.cost import CostModel
from gancomp_lite.models.registry import build
from gancomp_lite.viz.bench import achieved_gmacs, plot_roofline, plot_time_vs_macs

TINY = {"ngf": 8, "step": 4}            # a ResNet-9 small enough to time in milliseconds
TINY_STUDENT = "4_4_8_4_8_8_4_4"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def quick_report() -> B.BenchReport:
    """The shipped quick ResNet-9 teacher against a GAN-Compression-shaped student, eager and ONNX Runtime."""
    return B.bench("resnet9", config="8_8_12_8_12_12_8_8", backends=("eager", "onnxruntime"), warmup=1, runs=3,
                   threads=1)


def test_quick_teacher_vs_student_numbers_are_sane(quick_report):
    teacher, student = quick_report.models
    assert (teacher.role, teacher.weights, teacher.size) == ("teacher", "shipped quick teacher", 64)
    assert student.config == "8_8_12_8_12_12_8_8"
    for model in (teacher, student):
        for timing in model.timings.values():
            assert timing.status == "ok", timing.status
            assert 0 < timing.min_ms <= timing.median_ms <= timing.max_ms
            assert timing.min_ms <= timing.mean_ms <= timing.max_ms
        assert model.param_bytes == 4 * sum(p.numel() for p in build("resnet9", model.config, 64, ngf=24, step=4)
                                            .parameters())
        assert model.file_bytes > model.param_bytes                # float32 weights plus the pickle around them
        assert model.peak_activation_bytes > 0
    assert teacher.peak_activation_bytes > student.peak_activation_bytes
    cost = CostModel.for_arch("resnet9", 64, ngf=24, step=4)
    assert teacher.macs == cost.macs(None) and student.macs == cost.macs("8_8_12_8_12_12_8_8")
    rows = quick_report.comparison()
    assert [r["backend"] for r in rows] == ["eager", "onnxruntime"]
    for row in rows:
        assert math.isfinite(row["speedup"]) and row["speedup"] > 0
        assert row["macs_ratio"] == pytest.approx(teacher.macs / student.macs)
        assert row["realised_fraction"] == pytest.approx(row["speedup"] / row["macs_ratio"])


def test_onnxruntime_output_matches_pytorch(quick_report):
    assert all(m.timings["onnxruntime"].max_abs_diff < B.OUTPUT_TOLERANCE for m in quick_report.models)


def test_onnxruntime_runs_tpgan_with_its_part_crops():
    model = build("tpgan", None, 32, base=8).eval()
    inputs = B.example_inputs(model, 32)
    fn, args = B.prepare_backend(model, inputs, "onnxruntime", threads=1)
    with torch.no_grad():
        expected = model(*inputs)
    assert torch.allclose(fn(*args), expected, atol=B.OUTPUT_TOLERANCE)


def test_report_json_csv_and_markdown_shapes(quick_report):
    data = json.loads(quick_report.to_json())
    assert set(data) == {"device", "threads", "warmup", "runs", "machine", "roofline", "models", "comparison"}
    assert data["threads"] == 1 and data["machine"]["load"]
    assert [m["role"] for m in data["models"]] == ["teacher", "student"]
    assert data["models"][1]["timings"]["eager"]["median_ms"] == quick_report.models[1].timings["eager"].median_ms
    csv_lines = quick_report.to_csv().strip().splitlines()
    assert len(csv_lines) == 1 + 2 * 2 and csv_lines[0].startswith("role,arch,config")
    table = quick_report.to_markdown().splitlines()
    rows = [line for line in table if line.startswith("| teacher") or line.startswith("| student")]
    assert len(rows) == 4 and all(line.count("|") == 13 for line in rows)
    assert "1 thread(s)" in table[0] and "gancomp convention" in table[0]


def test_markdown_names_the_gpu_it_was_measured_on(quick_report):
    from dataclasses import replace

    on_gpu = replace(quick_report, device="cuda", machine={**quick_report.machine, "gpu": "NVIDIA Test Card"})
    header = on_gpu.to_markdown().splitlines()[0]
    assert header.startswith("Measured on NVIDIA Test Card (host ") and "cuda, batch 1" in header


def test_unavailable_backend_is_reported_not_raised(monkeypatch):
    def broken(model, *args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    report = B.bench("resnet9", size=16, knobs=TINY, backends=("eager", "compile"), warmup=0, runs=2, threads=1)
    timing = report.models[0].timings["compile"]
    assert timing.status == "unavailable: torch.compile failed: RuntimeError: no compiler here"
    assert not timing.ok and report.models[0].timings["eager"].ok


def test_backend_that_fails_on_its_first_run_is_reported(monkeypatch):
    def prepared_but_broken(model, inputs, backend, threads):
        def run(*args):
            raise RuntimeError("kernel missing")
        return run, inputs

    monkeypatch.setattr(B, "prepare_backend", prepared_but_broken)
    report = B.bench("resnet9", size=16, knobs=TINY, backends=("torchscript",), warmup=0, runs=1, threads=1)
    assert report.models[0].timings["torchscript"].status == \
        "unavailable: first run failed: RuntimeError: kernel missing"


def test_backends_agree_with_eager_on_a_tiny_model():
    report = B.bench("resnet9", config=TINY_STUDENT, size=16, knobs=TINY,
                     backends=("eager", "channels_last", "torchscript"), warmup=0, runs=2, threads=1)
    for model in report.models:
        assert model.weights == "random init"
        for timing in model.timings.values():
            assert timing.status == "ok" and timing.max_abs_diff < 1e-4


def test_bad_backend_and_bad_runs_are_refused():
    with pytest.raises(ValueError, match="unknown backend"):
        B.bench("resnet9", size=16, knobs=TINY, backends=("tensorrt",))
    with pytest.raises(ValueError, match="runs must be >= 1"):
        B.time_forward(lambda: None, (), warmup=0, runs=0)


def test_time_forward_times_every_run():
    calls = []
    times = B.time_forward(lambda x: calls.append(x), (1,), warmup=2, runs=5)
    assert len(calls) == 7 and len(times) == 5 and all(t >= 0 for t in times)


def test_peak_activation_counts_the_forward_allocations():
    model = nn.Sequential(nn.Conv2d(1, 8, 1), nn.Conv2d(8, 1, 1)).eval()
    peak = B.peak_activation_bytes(model, (torch.zeros(1, 1, 32, 32),))
    hidden = 8 * 32 * 32 * 4                                  # the 8-channel intermediate, float32
    assert hidden <= peak <= 3 * hidden


def test_student_checkpoint_is_loaded_and_checked(tmp_path):
    student = build("resnet9", TINY_STUDENT, 16, **TINY)
    path = tmp_path / "student.pt"
    save_checkpoint(path, student.state_dict(), {"arch": "resnet9", "config": TINY_STUDENT, "size": 16, "knobs": TINY})
    report = B.bench("resnet9", student=path, size=16, knobs=TINY, warmup=0, runs=2, threads=1)
    assert report.models[1].weights == str(path) and report.models[1].config == TINY_STUDENT
    with pytest.raises(ValueError, match="at 16px cannot be compared"):
        B.bench("resnet9", student=path, size=32, knobs=TINY, runs=1)


def test_student_of_another_arch():
    report = B.bench("resnet9", config=TINY_STUDENT, student_arch="mobile-resnet9", size=16, knobs=TINY, warmup=0,
                     runs=1, threads=1)
    student = report.models[1]
    assert student.arch == "mobile-resnet9"
    assert student.macs == CostModel.for_arch("mobile-resnet9", 16, **TINY).macs(TINY_STUDENT)


def test_cli_prints_json(capsys):
    assert main(["bench", "--teacher", "resnet9", "--config", TINY_STUDENT, "--size", "16", "--knob", "ngf=8",
                 "--knob", "step=4", "--warmup", "0", "--runs", "2", "--threads", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["comparison"][0]["backend"] == "eager" and data["models"][1]["config"] == TINY_STUDENT


def test_cli_names_the_bad_group(capsys):
    assert main(["bench", "--teacher", "resnet9", "--config", "3_4_8_4_8_8_4_4", "--size", "16", "--knob", "ngf=8",
                 "--knob", "step=4", "--runs", "1"]) == 2
    assert "group 'c0': 3 is narrower than the space allows (4)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "--teacher", "resnet9", "--runs", "0"])


def test_time_by_layer_kind_sees_separable_convs():
    model = build("mobile-resnet9", None, 16, ngf=8, step=4).eval()
    times = B.time_by_layer_kind(model, B.example_inputs(model, 16), runs=2, warmup=1, threads=1)
    assert set(times) == set(B.LAYER_KINDS) | {"total"}
    for kind in ("dense conv", "depthwise conv", "1x1 conv", "transposed conv", "norm", "activation"):
        assert times[kind] > 0, kind
    assert times["total"] == pytest.approx(sum(v for k, v in times.items() if k != "total"))
    dense = build("resnet9", None, 16, **TINY).eval()
    assert B.time_by_layer_kind(dense, B.example_inputs(dense, 16), runs=1, warmup=0)["depthwise conv"] == 0


def test_macs_by_layer_kind_adds_up_to_the_cost_model():
    macs = B.macs_by_layer_kind("mobile-resnet9", None, 16, ngf=8, step=4)
    assert sum(macs.values()) == CostModel.for_arch("mobile-resnet9", 16, ngf=8, step=4).macs(None)
    assert macs["depthwise conv"] > 0 and macs["1x1 conv"] > 0 and macs["transposed conv"] > 0


def test_conv_throughput_is_a_positive_rate():
    roof = B.conv_throughput(threads=1, channels=32, size=16, runs=2, warmup=1)
    assert roof["macs"] == 16 * 16 * 32 * 32 * 9
    assert roof["gmacs_per_s"] == pytest.approx(roof["macs"] / 1e9 / (roof["median_ms"] / 1e3))


def test_roofline_figure_has_one_point_per_model_and_the_roof(quick_report):
    points = B.roofline_points(quick_report.models)
    assert len(points) == 4
    fig = plot_roofline(50.0, points)
    ax = fig.axes[0]
    offsets = ax.collections[0].get_offsets()
    expected = [[p["macs"] / 1e9, achieved_gmacs(p["macs"], p["ms"])] for p in points]
    assert offsets.ravel().tolist() == pytest.approx(sum(expected, []))
    assert ax.lines[0].get_ydata()[0] == 50.0 and "gancomp" in ax.get_xlabel()
    with pytest.raises(ValueError, match="at least one"):
        plot_roofline(50.0, [])


def test_time_vs_macs_plot_has_both_shares():
    times = {"dense conv": 3.0, "norm": 1.0, "other ops": 0.0, "total": 4.0}
    fig = plot_time_vs_macs(times, {"dense conv": 100, "norm": 0})
    bars = fig.axes[0].patches
    assert [b.get_width() for b in bars] == pytest.approx([75.0, 25.0, 100.0, 0.0])
