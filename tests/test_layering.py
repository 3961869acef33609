"""Dependencies point downward only (DESIGN.md): checked on the import statements themselves.

Every package and top-level module of ``src/aeros`` has a rule naming what it must never
import, and the whole import graph (imports inside functions included) has no circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "aeros"
WEB = ("quart", "werkzeug", "flask")

# a top-level helper module that the layers and the lean path use: none of them, nor the web
HELPER = (
    "aeros.app",
    "aeros.middleware",
    "aeros.response_cache",
    "aeros.compression",
    "aeros.stores",
    "aeros.logging",
    "aeros.server",
    "aeros.fastpath",
    *WEB,
)

# part (a package or a top-level module) -> module prefixes it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "errors": ("aeros.", *WEB),
    "asgi_entry": ("aeros.", *WEB),
    "_done": ("aeros.", *WEB),
    # where asyncio tasks wait, for log lines (serve_in_thread, the response cache's close)
    "awaiting": ("aeros.", *WEB),
    "types": ("aeros.app", "aeros.middleware", "aeros.response_cache", "aeros.server", *WEB),
    "headers": HELPER,
    # one helper over a scope key of types, used by the lean connection and the response cache
    "whole_response": HELPER,
    "_validate": ("aeros.app", "aeros.middleware", "aeros.response_cache", "aeros.server", *WEB),
    "logging": (
        "aeros.app",
        "aeros.middleware",
        "aeros.response_cache",
        "aeros.stores",
        "aeros.compression",
        "aeros.server",
        "aeros.fastpath",
        *WEB,
    ),
    "stores": (
        "aeros.app",
        "aeros.middleware",
        "aeros.response_cache",
        "aeros.compression",
        "aeros.server",
        "aeros.fastpath",
        *WEB,
    ),
    "compression": (
        "aeros.app",
        "aeros.middleware",
        "aeros.response_cache",
        "aeros.stores",
        "aeros.server",
        "aeros.fastpath",
        *WEB,
    ),
    "middleware": (
        "aeros.app",
        "aeros.response_cache",
        "aeros.stores",
        "aeros.server",
        "aeros.fastpath",
        *WEB,
    ),
    "response_cache": ("aeros.app", "aeros.fastpath", "aeros.cli"),
    # routes.py is its one Quart-aware module (route lookup), as in response_cache
    "ratelimit": (
        "aeros.app",
        "aeros.response_cache",
        "aeros.stores",
        "aeros.server",
        "aeros.fastpath",
        "aeros.cli",
    ),
    "security": (
        "aeros.app",
        "aeros.middleware",
        "aeros.response_cache",
        "aeros.ratelimit",
        "aeros.stores",
        "aeros.server",
        "aeros.fastpath",
        *WEB,
    ),
    "fastpath": (
        "aeros.app",
        "aeros.response_cache",
        "aeros.stores",
        "aeros.middleware",
        "aeros.compression",
        "aeros.server",
        "aeros.cli",
    ),
    "server": ("aeros.app", "aeros.response_cache", "aeros.fastpath", "aeros.cli", *WEB),
    "cache_control": ("aeros.app", "aeros.server", "aeros.response_cache"),
    "misc": ("aeros.app", "aeros.server", "aeros.response_cache", "aeros.middleware"),
    "locate": ("aeros.app", "aeros.cli"),
    # werkzeug routing for the layers in front of Quart; knows none of them
    "route_match": (
        "aeros.app",
        "aeros.middleware",
        "aeros.response_cache",
        "aeros.ratelimit",
        "aeros.metrics",
        "aeros.server",
        "aeros.fastpath",
        "aeros.cli",
    ),
    "run_options": ("aeros.app",),
    "options": ("aeros.", *WEB),
    "metrics": ("aeros.app", "aeros.server", "aeros.response_cache", "aeros.fastpath", "aeros.cli"),
    "observability": ("aeros.app", "aeros.middleware", "aeros.server", "aeros.metrics", *WEB),
    "serving": ("aeros.app", "aeros.cli"),
    "cli": ("aeros.response_cache", "aeros.stores", "aeros.middleware", "aeros.fastpath"),
    "cli_values": ("aeros.app", "aeros.response_cache", "aeros.stores", "aeros.middleware", *WEB),
    "stack": ("aeros.cli",),
    "app": ("aeros.cli",),
    "__main__": (),
    "__init__": (),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path) -> set[str]:
    """Absolute module names ``path`` imports anywhere (``from a import b``: ``a.b``, a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                names.add(sub if sub in MODULES else node.module)
    return names


def part_of(name: str) -> str:
    rest = name.removeprefix("aeros").lstrip(".")
    return rest.split(".", 1)[0] if rest else "__init__"


def test_layering_every_part_has_a_rule() -> None:
    """A new package or top-level module gets a rule here before it lands."""
    assert sorted({part_of(name) for name in MODULES} - set(FORBIDDEN)) == []


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_layering_imports_point_downward(part: str) -> None:
    """Lower layers never import Quart or the parts above them."""
    files = [path for name, path in MODULES.items() if part_of(name) == part]
    assert files, f"no modules found for {part}"
    offending = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in files
        for name in sorted(imported_modules(path))
        if any(
            name == bad.rstrip(".") or name.startswith(bad if bad.endswith(".") else bad + ".")
            for bad in FORBIDDEN[part]
        )
    ]
    assert offending == []


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (as the modules along it), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_layering_finds_a_circle() -> None:
    """The circle finder sees a circle through three modules, and none in a chain."""
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_layering_has_no_import_circle() -> None:
    """No module of src/aeros imports, through any chain, a module that imports it back.

    A package's ``__init__`` that only re-exports its own modules is left out of the graph
    (importing ``aeros.stores.memory`` runs ``aeros.stores`` first, which is not a circle).
    """
    graph = {
        name: {
            imported
            for imported in imported_modules(path)
            if imported in MODULES and imported != name and not name.startswith(imported + ".")
        }
        for name, path in MODULES.items()
        if path.name != "__init__.py" or name == "aeros"
    }
    graph.pop("aeros", None)  # the public re-exports: every user import starts there
    for edges in graph.values():
        edges.discard("aeros")
    assert find_circle(graph) is None
