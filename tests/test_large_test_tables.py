"""benchmarks/large_test.py: the paired tables it writes from cached per-probe results."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from gancomp_lite.evaluate import rank1_interval

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
YAWS = (90, 75, 60, 45, 30, 15)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(correct: list[bool], correct_raw: list[bool], identities: list[int], yaws: list[int]) -> dict:
    """An `evaluate(..., per_probe=True)` result as the cache holds it (JSON types)."""
    def rank1(hits: list[bool]) -> dict[str, float]:
        columns = {str(y): sum(h for h, v in zip(hits, yaws) if v == y) / yaws.count(y) for y in YAWS}
        return columns | {"mean": sum(columns.values()) / len(columns)}

    return {"rank1": rank1(correct), "rank1_ci": rank1_interval(correct, identities, yaws),
            "rank1_raw": rank1(correct_raw), "rank1_raw_ci": rank1_interval(correct_raw, identities, yaws), "l1": 0.03, "ssim": 0.8, "seconds": 1.0,
            "probes": {"identity": identities, "yaw": yaws, "correct": correct, "correct_raw": correct_raw}}


def test_teacher_minus_raw_and_student_minus_teacher_are_paired_on_the_same_probes():
    large_test = _load("large_test")
    identities = [i for i in range(4) for _ in YAWS]
    yaws = [y for _ in range(4) for y in YAWS]
    raw = [y <= 30 for y in yaws]                       # the raw profiles fail at every |yaw| >= 45
    teacher = _result([True] * len(yaws), raw, identities, yaws)
    student = _result([y != 90 for y in yaws], raw, identities, yaws)   # loses the +-90 column only

    lines = large_test.teachers_table({"pim": teacher})
    assert lines[2].startswith("| raw profiles | 0.0 | 0.0 | 0.0 | 0.0 | 100.0 | 100.0 | 33.3 [33.3, 33.3]")
    paired = next(line for line in lines if line.startswith("| pim |") and "[" in line.split("|")[2])
    assert paired.split("|")[2].strip() == "+100.0 [+100.0, +100.0]"          # +-90: every probe gained
    assert paired.split("|")[6].strip() == "+0.0 [+0.0, +0.0]"                # +-30: nothing to gain

    report = {"table3": {"macs_ratio": 10.0}, "paired_difference": {"diff": {"mean": -0.1}, "ci": {"mean": [-0.2, 0.0]}}}
    row = large_test.students_table({"pim": teacher}, {"pim": student}, {"pim": report})[2]
    cells = [c.strip() for c in row.split("|")]
    assert cells[1:5] == ["pim", "10.0x", "100.0", "83.3"]
    assert cells[5] == "**-16.7 [-16.7, -16.7]**" and cells[6] == "-10.0 [-20.0, +0.0]"
    assert cells[7] == "-100.0" and cells[8:13] == ["+0.0"] * 5
