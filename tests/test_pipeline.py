"""The main job (`gancomp-lite run`) on the quick preset: every stage writes what its summary names."""
from __future__ import annotations

import json

from gancomp_lite.cli import main


def test_run_writes_previews_table_and_summary(tmp_path, capsys):
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
