"""The shipped teachers and compressed students on a test split of 500 identities.

    OMP_NUM_THREADS=1 python benchmarks/large_test.py [--identities 500] [--only tpgan,pim] \
        [--cache runs/large_test] [--md docs/large_test.md]

The standard quick test split has 20 identities: a mean rank-1 carries an interval of +-8 to +-12
points and a paired difference one of +-4 to +-10, too wide for the issues' targets (a drop of at
most 2 points; a teacher above the raw profiles at every |yaw| >= 45). `teachers.large_test_split`
keeps the 60 training identities byte-identical and renders 500 test identities, so nothing is
retrained; its gallery holds 500 faces, so every rank-1 is lower than on 20 and the two are not
comparable.

Each model is evaluated once per split and its per-probe result cached under `--cache` (keyed by the
file's sha256), so the command resumes, and two processes with disjoint `--only` share the work; a
last call without `--only` reads every cached result and writes the tables (and `--md`).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from gancomp_lite.checkpoint import atomic_write_bytes, sha256_file
from gancomp_lite.compress.pipeline import SHIPPED_FILE, shipped_reports
from gancomp_lite.compress.report import face_rows, faces_figure
from gancomp_lite.evaluate import compare, evaluate, json_safe, load_generator
from gancomp_lite.figures import save_figure
from gancomp_lite.teachers import (JUDGE_FILE, QUICK_TEACHERS, REPORT_TEST_IDENTITIES, TEACHER_FILE, WEIGHTS_DIR,
                                   large_test_split, load_judge)

COLUMNS = ("90", "75", "60", "45", "30", "15")


def cached_evaluation(name: str, path: Path, test, judge, cache: Path, identities: int) -> dict[str, Any]:
    """`evaluate(..., per_probe=True)` of the generator in `path`, read from or written to the cache."""
    key = cache / f"{name}-{sha256_file(path)[:12]}-{identities}ids.json"
    if key.is_file():
        return json.loads(key.read_text())
    generator = load_generator(path)
    started = time.perf_counter()
    result = json_safe(evaluate(test, judge, generator, per_probe=True, progress=True))
    result["seconds"] = round(time.perf_counter() - started, 1)
    key.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(key, json.dumps(result).encode())
    return result


def raw_as_generator(result: dict[str, Any]) -> dict[str, Any]:
    """The raw profiles of an evaluation as a result `compare` can pair with a generator's."""
    probes = result["probes"]
    return {"probes": {"identity": probes["identity"], "yaw": probes["yaw"], "correct": probes["correct_raw"]}}


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def signed(diff: dict[str, Any], column: str) -> str:
    low, high = diff["ci"][column]
    return f"{100 * diff['diff'][column]:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def teachers_table(results: dict[str, dict[str, Any]]) -> list[str]:
    """Rank-1 per |yaw| with intervals, raw profiles first; then each teacher minus the raw profiles, paired."""
    first = next(iter(results.values()))
    lines = ["| method | " + " | ".join(f"±{c}°" for c in COLUMNS) + " | mean [95% CI] | L1 | SSIM | seconds |",
             "|---|" + "---|" * (len(COLUMNS) + 4)]
    rows = {"raw profiles": (first["rank1_raw"], first["rank1_raw_ci"], None, None, None)}
    rows |= {arch: (r["rank1"], r["rank1_ci"], r["l1"], r["ssim"], r["seconds"]) for arch, r in results.items()}
    for name, (rank1, ci, l1, ssim, seconds) in rows.items():
        cells = [pct(rank1[c]) for c in COLUMNS]
        mean = f"{pct(rank1['mean'])} [{pct(ci['mean'][0])}, {pct(ci['mean'][1])}]"
        extra = ["–"] * 3 if l1 is None else [f"{l1:.4f}", f"{ssim:.3f}", f"{seconds:.0f}"]
        lines.append(f"| {name} | " + " | ".join(cells + [mean] + extra) + " |")
    lines += ["", "Teacher minus raw profiles, paired (same probes), [95% CI]:", "",
              "| teacher | " + " | ".join(f"±{c}°" for c in COLUMNS) + " | mean |", "|---|" + "---|" * (len(COLUMNS) + 1)]
    for arch, result in results.items():
        diff = compare(raw_as_generator(result), result)
        lines.append(f"| {arch} | " + " | ".join(signed(diff, c) for c in COLUMNS + ("mean",)) + " |")
    return lines


def students_table(teachers: dict[str, dict[str, Any]], students: dict[str, dict[str, Any]],
                   reports: dict[str, dict[str, Any]]) -> list[str]:
    """Each shipped student against its teacher on the same probes, with the 20-identity figure beside it."""
    lines = ["| family | MACs ratio | teacher | compressed | paired difference [95% CI] | on 20 identities | "
             + " | ".join(f"±{c}°" for c in COLUMNS) + " | L1 teacher -> compressed |",
             "|---|---|---|---|---|---|" + "---|" * (len(COLUMNS) + 1)]
    for arch, student in students.items():
        teacher, report = teachers[arch], reports[arch]
        diff = compare(teacher, student)
        small = report["paired_difference"]
        lines.append(f"| {arch} | {report['table3']['macs_ratio']:.1f}x | {pct(teacher['rank1']['mean'])} | "
                     f"{pct(student['rank1']['mean'])} | **{signed(diff, 'mean')}** | {signed(small, 'mean')} | "
                     + " | ".join(f"{100 * diff['diff'][c]:+.1f}" for c in COLUMNS)
                     + f" | {teacher['l1']:.4f} -> {student['l1']:.4f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=REPORT_TEST_IDENTITIES)
    parser.add_argument("--only", default=",".join(QUICK_TEACHERS), help="families to evaluate (comma-separated)")
    parser.add_argument("--cache", type=Path, default=Path("runs/large_test"))
    parser.add_argument("--md", type=Path, default=None, help="write the tables here, the faces beside them")
    args = parser.parse_args()
    families = [a for a in args.only.split(",") if a]
    unknown = sorted(set(families) - set(QUICK_TEACHERS))
    if unknown:
        raise SystemExit(f"unknown families {unknown}; choose from {sorted(QUICK_TEACHERS)}")

    test = large_test_split("quick", identities=args.identities)
    judge = load_judge("quick")
    reports = shipped_reports("quick")
    teachers, students, paths = {}, {}, {}
    for arch in families:
        paths[arch] = WEIGHTS_DIR / TEACHER_FILE.format(arch=arch, preset="quick")
        teachers[arch] = cached_evaluation(arch, paths[arch], test, judge, args.cache, args.identities)
        student = WEIGHTS_DIR / SHIPPED_FILE.format(arch=arch, preset="quick")
        if arch in reports and student.is_file():
            paths[f"{arch} compressed"] = student
            students[arch] = cached_evaluation(f"{arch}-compressed", student, test, judge, args.cache, args.identities)

    first = next(iter(teachers.values()))
    header = (f"{first['n_identities']} test identities, {first['n_probes']} probes, gallery of {first['n_gallery']}; "
              f"scored by the judge `{JUDGE_FILE.format(preset='quick')}`; rank-1 (%), ±yaw merged, "
              f"[95% interval, bootstrap over identities]")
    lines = [header, "", *teachers_table(teachers), "", "Shipped compressed students against their teachers "
             "(compressed minus teacher, paired; per-|yaw| columns are paired differences):", "",
             *students_table(teachers, students, reports), "",
             f"Command: `OMP_NUM_THREADS=1 python benchmarks/large_test.py --identities {args.identities}`."]
    table = "\n".join(lines)
    print(table)
    if args.md:
        faces = args.md.parent / "img" / "large_test_faces.png"
        generators = {name: load_generator(path) for name, path in paths.items()}
        save_figure(faces_figure(face_rows(test, generators, identities=2)), faces, dpi=100)
        atomic_write_bytes(args.md, (f"# Teachers and compressed students on {args.identities} test identities\n\n"
                                     f"{table}\n\n![profile, ground truth, each teacher and compressed student per "
                                     f"|yaw|, two test identities](img/{faces.name})\n").encode())


if __name__ == "__main__":
    main()
