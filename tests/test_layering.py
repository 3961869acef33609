"""Dependencies point downward only (DESIGN.md): checked on the import statements themselves."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "aeros"

# part -> module prefixes it must never import
FORBIDDEN = {
    "middleware": ("quart", "werkzeug", "aeros.app", "aeros.caching", "aeros.server"),
    "cache": (
        "quart",
        "werkzeug",
        "aeros.app",
        "aeros.caching",
        "aeros.middleware",
        "aeros.server",
    ),
    "compression": ("quart", "werkzeug", "aeros.app", "aeros.caching", "aeros.server"),
    "server": ("quart", "aeros.app", "aeros.caching"),
    # the lean path is Quart-aware but sits below the app: no circle back into app.py
    "fastpath": (
        "aeros.app",
        "aeros.caching",
        "aeros.cache",
        "aeros.middleware",
        "aeros.server",
    ),
}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_layering_imports_point_downward(part: str) -> None:
    """Lower layers never import Quart or the parts above them."""
    files = sorted((PACKAGE / part).glob("*.py"))
    assert files, f"no modules found in {part}/"
    offending = [
        f"{path.name} imports {name}"
        for path in files
        for name in sorted(imported_modules(path))
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[part])
    ]
    assert offending == []
