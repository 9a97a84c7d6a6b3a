"""Notebook 07's tables and plots (gancomp_lite.viz.compress, end-to-end section), on small report dicts."""
from __future__ import annotations

import copy

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from gancomp_lite.viz import compress as V

YAWS = ("15", "30", "45", "60", "75", "90")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def scores(value: float, width: float = 0.1) -> dict:
    rank1 = {c: value for c in YAWS} | {"mean": value}
    return {"rank1": rank1, "rank1_ci": {c: [value - width, value + width] for c in rank1}, "l1": 0.05, "ssim": 0.7}


def report(teacher: float = 0.7, student: float = 0.6, diff_ci=(-0.2, 0.05), ratio: float = 10.0) -> dict:
    diff = {c: student - teacher for c in YAWS} | {"mean": student - teacher}
    ci = {c: list(diff_ci) for c in diff}
    ci["90"] = [-0.3, -0.01]                      # one |yaw| column resolves a loss
    return {"arch": "tpgan", "preset": "quick", "budget": 60e6,
            "table3": {"convention": "gancomp", "teacher": {"macs": 600e6, "params": 2.4e6},
                       "student": {"config": "8_8_8", "macs": 600e6 / ratio, "params": 0.3e6},
                       "macs_ratio": ratio, "params_ratio": 8.0},
            "raw": {"rank1": scores(0.5)["rank1"], "rank1_ci": scores(0.5)["rank1_ci"]},
            "teacher": scores(teacher), "student": scores(student),
            "paired_difference": {"diff": diff, "ci": ci},
            "scored_by": {"role": "judge", "file": "judge-quick.pt", "sha256": "ab" * 32},
            "test": {"identities": 20, "probes": 720}}


def bench_result(teacher_ms: float = 20.0, student_ms: float = 5.0) -> dict:
    def model(role, macs, ms, nbytes):
        return {"role": role, "macs": macs, "param_bytes": nbytes, "file_bytes": nbytes + 1000,
                "peak_activation_bytes": nbytes // 2,
                "timings": {"eager": {"median_ms": ms, "status": "ok"},
                            "torchscript": {"median_ms": None, "status": "unavailable: no"}}}
    return {"device": "cpu", "threads": 1, "warmup": 5, "runs": 10,
            "machine": {"cpu": "test CPU", "torch": "2.x", "load": "1.0"},
            "models": [model("teacher", 600e6, teacher_ms, 8_000_000), model("student", 60e6, student_ms, 1_000_000)]}


def test_yaw_columns_are_largest_first_then_mean():
    assert V.yaw_columns(report()) == ["90", "75", "60", "45", "30", "15", "mean"]


def test_table1_has_raw_once_then_teacher_compressed_and_paired_rows_per_family():
    text = V.table1_markdown({"tpgan": report(), "pim": report(0.8, 0.75)})
    lines = text.splitlines()
    assert lines[0].startswith("| | ±90° | ±75°") and lines[0].endswith("| mean | L1 | SSIM |")
    assert sum(line.startswith("| raw profiles") for line in lines) == 1
    for name in ("tpgan", "pim"):
        assert any(line.startswith(f"| {name} teacher | 70.0 [60.0, 80.0]") or line.startswith(f"| {name} teacher | 80.0")
                   for line in lines)
        assert any(line.startswith(f"| {name}: compressed − teacher |") for line in lines)
    assert "| tpgan: compressed − teacher | -10.0 [-30.0, -1.0] |" in text     # ±90° first, signed, with its interval
    assert "20 identities, 720 probes" in text and "judge-quick.pt" in text
    with pytest.raises(ValueError):
        V.table1_markdown({})


def test_table1_repeats_raw_rows_when_the_reports_were_scored_on_different_data():
    other = report()
    other["raw"] = copy.deepcopy(other["raw"])
    other["raw"]["rank1"]["mean"] = 0.4
    text = V.table1_markdown({"a": report(), "b": other})
    assert "| a: raw profiles |" in text and "| b: raw profiles |" in text


def test_table1_reading_says_whether_the_interval_excludes_zero():
    unresolved = V.table1_reading({"tpgan": report()})
    assert "includes zero" in unresolved and "-10.0 [-20.0, +5.0] points" in unresolved
    assert "±90° (-10.0 [-30.0, -1.0])" in unresolved and "10.0x fewer MACs" in unresolved
    loss = V.table1_reading({"tpgan": report(diff_ci=(-0.2, -0.01))})
    assert "resolved **loss**" in loss
    gain = V.table1_reading({"tpgan": report(0.6, 0.7, diff_ci=(0.01, 0.2))})
    assert "resolved **gain**" in gain


def test_table3_lists_costs_and_ratios():
    text = V.table3_markdown({"tpgan": report()})
    assert "| tpgan | `8_8_8` | 60.0 | 600.0 | 60.0 | 10.0x | 2.400 | 0.300 | 8.0x |" in text
    assert "gancomp convention" in text


def test_table4_rows_compute_speedup_realised_fraction_and_memory():
    rows = V.table4_rows({"tpgan": bench_result()})
    eager, script = rows
    assert eager["speedup"] == pytest.approx(4.0) and eager["macs_ratio"] == pytest.approx(10.0)
    assert eager["realised_fraction"] == pytest.approx(0.4)
    assert eager["teacher_param_mb"] == pytest.approx(8.0) and eager["student_param_mb"] == pytest.approx(1.0)
    assert script["speedup"] is None and script["status"].startswith("unavailable")
    text = V.table4_markdown({"tpgan": bench_result()})
    assert "| tpgan | cpu (1 thr.) | eager | 20.00 | 5.00 | 4.00x | 10.0x | 0.40 | 8.00 → 1.00 | 8.0x |" in text
    assert "test CPU" in text and "5 warm-up + 10 timed runs" in text
    with pytest.raises(ValueError, match="no student"):
        V.table4_rows({"x": {**bench_result(), "models": bench_result()["models"][:1]}})


def test_rank1_plot_has_one_titled_panel_per_family_with_three_lines():
    fig = V.plot_rank1_per_yaw({"tpgan": report(), "pim": report()})
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["tpgan: rank-1 per |yaw|", "pim: rank-1 per |yaw|"]
    assert all(len(ax.containers) == 3 for ax in panels)           # raw, teacher, compressed (error bars)
    assert fig._suptitle is not None and "rank-1" in fig._suptitle.get_text().lower()


def test_family_view_and_widget():
    rows = {"#1 profile": torch.zeros(6, 3, 8, 8), "#1 teacher": torch.zeros(6, 3, 8, 8)}
    text, figures = V.family_view("tpgan", report(), rows)
    assert "`8_8_8`" in text and "| tpgan teacher |" in text and "includes zero" in text
    assert len(figures) == 2 and "faces per |yaw|" in figures[1]._suptitle.get_text()
    assert len(V.family_view("tpgan", report())[1]) == 1
    widget = V.family_widget({"tpgan": report(), "pim": report()}, {"tpgan": rows})
    pick = widget.children[0]
    assert list(pick.options) == ["tpgan", "pim"]
    pick.value = "pim"                                                   # redraws without faces
    with pytest.raises(ValueError):
        V.family_widget({})
