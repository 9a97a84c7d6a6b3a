"""Data flows one way: the compression stages never import the notebook plots (viz reads compress's results)."""
from __future__ import annotations

import ast
from pathlib import Path

import gancomp_lite

PACKAGE = Path(gancomp_lite.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (lazy imports inside functions too), as dotted names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update([node.module] + [f"{node.module}.{alias.name}" for alias in node.names])
    return names


def test_imported_modules_sees_lazy_and_from_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from gancomp_lite import viz\n    import gancomp_lite.viz.compress\n")
    assert {"gancomp_lite.viz", "gancomp_lite.viz.compress"} <= imported_modules(source)


def test_compress_never_imports_viz():
    offenders = {f"{path.relative_to(PACKAGE.parent)}: {name}"
                 for path in sorted((PACKAGE / "compress").rglob("*.py")) for name in imported_modules(path)
                 if name == "gancomp_lite.viz" or name.startswith("gancomp_lite.viz.")}
    assert not offenders, f"gancomp_lite.compress must not import gancomp_lite.viz: {sorted(offenders)}"
