"""Write docs/results.md from the shipped compressed students (the paper's Tables 1 and 3, Figure 3).

    python benchmarks/compress_results.py --runs runs/compress [--rescore]

Reads each shipped report (gancomp_lite/results/compress_<arch>-quick.json, written by
`gancomp-lite compress ... --ship`), copies each run's faces.png and search.png from `--runs`
into docs/img/, and writes one section per family: the command, Table 3, Table 1 with 95% intervals
and the paired difference, the search, the faces. `--rescore` first scores every shipped student and
its teacher again on the current test split with the current judge (after the measurement changed;
the weights do not), rewriting the shipped reports.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from gancomp_lite.checkpoint import read_manifest
from gancomp_lite.compress.pipeline import (RESULTS_DIR, SHIPPED_FILE, rescore_shipped, shipped_reports,
                                            shipped_table)
from gancomp_lite.teachers import WEIGHTS_DIR
from gancomp_lite.compress.report import markdown

DOCS = Path(__file__).resolve().parents[1] / "docs"


def produced_shipped(run: Path, arch: str, preset: str) -> bool:
    """True when `run` is the folder that produced the shipped student: its search table is the shipped one
    (a re-run of the same command on another CPU can choose another student)."""
    shipped = RESULTS_DIR / f"search_{arch}-{preset}.json"
    return (run / "search.json").exists() and json.loads((run / "search.json").read_text()) == \
        json.loads(shipped.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/compress"))
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--out", type=Path, default=DOCS / "results.md")
    parser.add_argument("--rescore", action="store_true", help="score the shipped students again first")
    args = parser.parse_args()
    if args.rescore:
        for arch in shipped_reports(args.preset):
            rescore_shipped(arch, args.preset)
            print(f"rescored {arch}", flush=True)
    reports = shipped_reports(args.preset)
    lines = ["# Compressed quick teachers: results", "",
             "Every figure below comes from the `gancomp-lite compress` command given in its section (quick "
             "preset, 2-core CPU, then `--ship`) and was written by `python benchmarks/compress_results.py`. "
             "Method and design space: [compression.md](compression.md).", "", "## Summary", "",
             shipped_table(args.preset), ""]
    for arch, report in reports.items():
        manifest = read_manifest(WEIGHTS_DIR / SHIPPED_FILE.format(arch=arch, preset=args.preset))
        run = Path(manifest["command"].split("--out ")[1].split()[0]) if "--out " in manifest.get("command", "") \
            else args.runs / f"{arch}-{args.preset}"
        if produced_shipped(run, arch, args.preset):
            for name in ("faces", "search"):
                shutil.copyfile(run / f"{name}.png", DOCS / "img" / f"compress_{arch}_{name}.png")
        elif run.exists():
            print(f"{arch}: {run} did not produce the shipped student; its pictures in docs/img are kept")
        section = markdown({**report, "faces": f"img/compress_{arch}_faces.png"}).replace("# Compressed", "## Compressed", 1)
        lines += [section, f"Command: `{manifest.get('command', '?')}`", "",
                  f"![search: every candidate's MACs against its validation score](img/compress_{arch}_search.png)",
                  ""]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out} ({len(reports)} families)")


if __name__ == "__main__":
    main()
