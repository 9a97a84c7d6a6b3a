"""The main job (`gancomp-lite run`) on the quick preset: every stage writes what its summary names."""
from __future__ import annotations

import json

from gancomp_lite.cli import main


def test_run_writes_previews_table_and_summary(tmp_path, capsys, monkeypatch):
    from gancomp_lite import pipeline

    # the live compression with a handful of steps: the same stages as the demo, a fraction of its cost
    monkeypatch.setattr(pipeline, "DEMO_COMPRESSION", {**pipeline.DEMO_COMPRESSION, "steps_supernet": 2,
                                                       "steps_finetune": 2, "candidates": 2, "val_limit": 16})
    assert main(["run", "--preset", "quick", "--out", str(tmp_path), "--seed", "0"]) == 0
    printed = json.loads(capsys.readouterr().out)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert printed == summary
    data = summary["data"]
    assert data["identities"] == {"train": 60, "test": 20} and data["size"] == 64
    assert data["pairs_per_abs_yaw"] == {"0": 240, **{str(y): 480 for y in (15, 30, 45, 60, 75, 90)}}
    assert (tmp_path / "synthpie_preview.png").stat().st_size > 0
    assert (tmp_path / "teachers_preview.png").stat().st_size > 0
    table = (tmp_path / "teachers_table.md").read_text()
    assert table.startswith("| method | ±90°") and "| raw profiles |" in table and "| tpgan |" in table
    assert summary["compress"]["live"]["macs_ratio"] >= 5
    assert (tmp_path / "compress-resnet9" / "report.md").exists()
    assert (tmp_path / "compressed_table.md").read_text().strip()
