"""`gancomp-lite data ...`: render SynthPIE, and validate a data tree before training on it."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from gancomp_lite.errors import printable


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="render SynthPIE or check a data tree")
    sub = data.add_subparsers(dest="data_command", required=True)

    synth = sub.add_parser("synthpie", help="render the synthetic multi-view face set (Multi-PIE layout)")
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--preset", choices=["quick", "full"], default="quick")
    synth.add_argument("--ids", type=int, default=None, help="number of identities (default: the preset's)")
    synth.add_argument("--size", type=int, default=None, help="image size in pixels (default: the preset's)")
    synth.add_argument("--illums", type=int, default=None, help="illuminations per view (default: the preset's)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--variety", choices=["standard", "wide"], default="standard",
                       help="identity variety: standard (the shipped set) or wide (skin tones, hair, beards, glasses)")
    synth.set_defaults(func=_synthpie)

    check = sub.add_parser("check", help="validate a tree: counts per yaw and identity, missing pairs, bad files")
    check.add_argument("--format", choices=["multipie", "caspeal", "folder"], required=True)
    check.add_argument("--root", type=Path, required=True)
    check.add_argument("--json", action="store_true", help="print a JSON report")
    check.set_defaults(func=_check)


def _synthpie(args: argparse.Namespace) -> int:
    from data_tools.synthpie import render_synthpie

    summary = render_synthpie(args.out, preset=args.preset, ids=args.ids, size=args.size,
                              illums=args.illums, seed=args.seed, variety=args.variety)
    print(json.dumps(summary, indent=2))
    return 0


def _check(args: argparse.Namespace) -> int:
    from data_tools.check import check_tree

    report = check_tree(args.format, args.root)
    print(json.dumps(report.to_dict(), indent=2) if args.json else printable(report.format()))
    return 0 if report.ok else 1
