"""`gancomp-lite run`: the main job, end to end, for one preset and seed.

Stages (re-running is cheap: the data stage reuses the rendered cache, the teachers stage only reads
the shipped weights, the compression resumes or returns its finished report):

1. data       render (or reuse) the SynthPIE set, check it, write a preview grid and counts per yaw.
2. teachers   the shipped teachers (``gancomp_lite/weights``): frontalize test profiles at every
              |yaw| into a preview, and write Table 1 (rank-1 per |yaw|, L1, SSIM, ID-FID, MACs).
3. compress   a short live compression of the quick ResNet-9 teacher (every stage of
              `gancomp-lite compress`, with a few steps each: it shows the pipeline, not its quality),
              then the table of the shipped compressed students (trained with the full quick schedule).

The summary of every stage goes to ``<out>/summary.json``.
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from data_tools.check import check_tree
from data_tools.synthpie import ensure_synthpie, preview_grid, save_png
from gancomp_lite.checkpoint import atomic_write_bytes
from gancomp_lite.presets import get_preset


def data_stage(out: Path, preset: str, seed: int) -> dict[str, Any]:
    """Render the preset's SynthPIE set into the cache, check it, and preview it under `out`."""
    root = ensure_synthpie(preset=preset, seed=seed)
    report = check_tree("multipie", root)
    if not report.ok:
        raise RuntimeError(f"the rendered SynthPIE set at {root} failed its check:\n{report.format()}")
    grid = save_png(preview_grid(root, ids=6, landmarks=True), out / "synthpie_preview.png")
    meta = json.loads((root / "synthpie.json").read_text())
    return {
        "root": str(root),
        "preview": str(grid),
        "identities": {"train": len(meta["train_ids"]), "test": len(meta["test_ids"])},
        "size": meta["size"],
        "illuminations": meta["illuminations"],
        "pairs": report.pairs,
        "pairs_per_abs_yaw": _per_abs_yaw(report.per_yaw),
    }


def _per_abs_yaw(per_yaw: dict[int, int]) -> dict[int, int]:
    merged: Counter = Counter()
    for yaw, count in per_yaw.items():
        merged[abs(int(yaw))] += count
    return dict(sorted(merged.items()))


def teachers_stage(out: Path, preset: str, seed: int) -> dict[str, Any]:
    """Frontalize one neutral-light test profile per |yaw| with every shipped teacher; write Table 1."""
    import matplotlib.pyplot as plt
    import torch

    from torch.utils.data import default_collate

    from data_tools.dataset import load_splits
    from gancomp_lite.evaluate import frontalize_batch
    from gancomp_lite.teachers import QUICK_TEACHERS, load_teacher, teachers_table
    from gancomp_lite.viz import plot_image_rows

    if preset != "quick":
        return {"skipped": f"no shipped {preset} teachers; only the quick ones are trained and shipped so far"}
    root = ensure_synthpie(preset=preset, seed=seed)
    _, test = load_splits(root, "multipie", size=get_preset(preset).image_size)
    picks = {}
    for index, record in enumerate(test.records):
        if record.illumination == "07" and record.yaw >= 0 and record.yaw not in picks:
            picks[record.yaw] = index
    samples = [test[picks[yaw]] for yaw in sorted(picks, reverse=True)]
    batch = default_collate(samples)
    rows = {"profile": batch["profile"], "ground truth": batch["frontal"]}
    with torch.no_grad():
        for arch in QUICK_TEACHERS:
            rows[arch] = frontalize_batch(load_teacher(arch, preset)[0], batch)   # as the evaluation does
    figure = plot_image_rows(rows, n=len(samples), titles=[f"yaw {s['yaw']}" for s in samples])
    figure.savefig(out / "teachers_preview.png", dpi=100)
    plt.close(figure)
    table = teachers_table(preset)
    atomic_write_bytes(out / "teachers_table.md", (table + "\n").encode())
    return {"preview": str(out / "teachers_preview.png"), "table": str(out / "teachers_table.md")}


DEMO_COMPRESSION = {"teacher": "resnet9", "ratio": 5.0, "steps_supernet": 20, "steps_finetune": 20,
                    "candidates": 8, "val_limit": 60, "metric": "l1"}


def compress_stage(out: Path, preset: str, seed: int) -> dict[str, Any]:
    """A few-step live compression (`DEMO_COMPRESSION`) and the shipped students' table."""
    from gancomp_lite.compress.pipeline import CompressSettings, compress, shipped_table

    if preset != "quick":
        return {"skipped": f"the live demo compression runs on the quick preset; use `gancomp-lite compress --preset {preset}`"}
    settings = CompressSettings(**DEMO_COMPRESSION, preset=preset, seed=seed)
    report = compress(settings, out / "compress-resnet9", progress=False)
    table = shipped_table(preset)
    atomic_write_bytes(out / "compressed_table.md", (table + "\n").encode())
    return {"live": {"dir": str(out / "compress-resnet9"), "config": report["table3"]["student"]["config"],
                     "macs_ratio": round(report["table3"]["macs_ratio"], 2),
                     "note": "a few steps per stage: a demonstration of the pipeline; see the shipped table for results"},
            "shipped_table": str(out / "compressed_table.md")}


def run(out: Path, preset: str = "quick", seed: int = 0) -> dict[str, Any]:
    """Run every stage for `preset` into `out`; return (and write) the summary."""
    get_preset(preset)   # validates the name
    out.mkdir(parents=True, exist_ok=True)
    summary = {"preset": preset, "seed": seed, "data": data_stage(out, preset, seed),
               "teachers": teachers_stage(out, preset, seed), "compress": compress_stage(out, preset, seed)}
    atomic_write_bytes(out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="the main job: every stage for one preset, resumable")
    parser.add_argument("--preset", choices=["quick", "full"], default="quick")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=lambda args: print(json.dumps(run(args.out, args.preset, args.seed), indent=2)))
