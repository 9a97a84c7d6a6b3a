"""`gancomp-lite data check`: validate a data tree before training on it.

Loads the tree with ``strict=False`` and every pixel decoded, then reports what a training run
would see (pairs per yaw and per identity) and what it would refuse (missing pairs, bad files).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from data_tools.dataset import load_records
from data_tools.protocol import DataError

LIST_LIMIT = 20   # problems printed per kind in the text report (the JSON lists all)


@dataclass
class CheckReport:
    fmt: str
    root: Path
    pairs: int = 0
    images: int = 0
    per_yaw: dict[int, int] = field(default_factory=dict)
    per_identity: dict[str, int] = field(default_factory=dict)
    missing_pairs: list[str] = field(default_factory=list)
    bad_files: list[str] = field(default_factory=list)
    error: str | None = None     # the tree could not be read at all (wrong or empty root)

    @property
    def ok(self) -> bool:
        return self.error is None and self.pairs > 0 and not self.missing_pairs and not self.bad_files

    def to_dict(self) -> dict:
        return {"format": self.fmt, "root": str(self.root), "ok": self.ok, "error": self.error,
                "pairs": self.pairs, "images": self.images, "identities": len(self.per_identity),
                "per_yaw": {str(k): v for k, v in self.per_yaw.items()}, "per_identity": self.per_identity,
                "missing_pairs": self.missing_pairs, "bad_files": self.bad_files}

    def format(self) -> str:
        lines = [f"{self.fmt} tree at {self.root}: {'OK' if self.ok else 'PROBLEMS FOUND'}"]
        if self.error:
            return "\n".join(lines + [f"error: {self.error}"])
        lines.append(f"{self.pairs} profile/frontal pairs over {self.images} images, "
                     f"{len(self.per_identity)} identities")
        lines.append("pairs per yaw: " + ", ".join(f"{yaw:+d}: {n}" for yaw, n in self.per_yaw.items()))
        if self.per_identity:
            counts = sorted(self.per_identity.items(), key=lambda kv: (kv[1], kv[0]))
            lines.append(f"pairs per identity: min {counts[0][1]} ({counts[0][0]}), "
                         f"max {counts[-1][1]} ({counts[-1][0]})")
        for title, items in (("missing pairs", self.missing_pairs), ("bad files", self.bad_files)):
            lines.append(f"{title}: {len(items)}")
            lines += [f"  {item}" for item in items[:LIST_LIMIT]]
            if len(items) > LIST_LIMIT:
                lines.append(f"  ... and {len(items) - LIST_LIMIT} more (use --json for all)")
        return "\n".join(lines)


def check_tree(fmt: str, root: Path) -> CheckReport:
    """Validate a multipie / caspeal / folder tree; never raises for a bad tree, reports it."""
    report = CheckReport(fmt, Path(root))
    try:
        records = load_records(root, fmt, strict=False, verify="decode")
    except (DataError, OSError) as err:       # a tree that cannot be read at all (missing, no permission)
        report.error = str(err)
        return report
    report.pairs = len(records)
    report.images = len({p for r in records for p in (r.profile, r.frontal)})
    report.per_yaw = dict(sorted(Counter(r.yaw for r in records).items()))
    report.per_identity = dict(sorted(Counter(r.identity for r in records).items()))
    report.missing_pairs = [str(s) for s in records.skipped if s.kind == "missing_pair"]
    report.bad_files = [str(s) for s in records.skipped if s.kind != "missing_pair"]
    if not records and not report.error:
        report.error = "no usable pairs: every file was skipped"
    return report
