"""The house stays layered: every import of the package points down (docs/architecture.md, "Layers").

Reads every module's imports with ``ast`` (lazy ones inside functions included) and fails on an
import from a lower layer to a higher one, between two packages of one layer, or on a cycle
between packages, naming the file and line. ``STILL_UPWARD`` lists the imports that are known to
point the wrong way and are still to be moved; an entry that no longer occurs fails too, so the
list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.core
ROOT = Path(__file__).resolve().parent.parent / "rta"

# Lower numbers are lower layers. Packages of one layer may not import each other.
LAYERS: dict[str, int] = {
    "errors": 0, "sdk": 0, "periodic": 0,
    "dsl": 1,
    "compiler": 2,
    "contract": 3,
    "store": 4, "project": 4,
    "flows": 5, "query": 5, "ingest": 5,
    "dash": 6, "alerts": 6,
    "workspace": 7, "testing": 7,
    "cli": 8, "__init__": 8,
}  # fmt: skip
# Within one layer, these pairs may import (the first from the second).
PEERS = {("store", "project"), ("project", "store")}

# (file, imported package) known to point the wrong way, each still to be moved (issue 16).
STILL_UPWARD: set[tuple[str, str]] = set()


def _unit(module: str) -> str:
    """The layer unit of a dotted module name under ``rta``: its package, or the top-level module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "rta"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "rta":
            if node.module == "rta":  # `from rta import x`: x may be a subpackage
                found += [(node.lineno, f"rta.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def _edges() -> list[tuple[str, int, str, str]]:
    """(file, line, from unit, to unit) of every import between two layer units."""
    edges = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT.parent)
        source = _unit(".".join(relative.with_suffix("").parts))  # rta/x/__init__.py is x's; rta/__init__.py is "__init__"
        for line, target in _imports(path):
            unit = _unit(target)
            if unit in LAYERS and unit != source:
                edges.append((str(relative), line, source, unit))
    return edges


def test_every_module_belongs_to_a_layer():
    units = {_unit(".".join(p.relative_to(ROOT.parent).with_suffix("").parts)) for p in ROOT.rglob("*.py")}
    assert not units - set(LAYERS), f"give these a layer in LAYERS: {sorted(units - set(LAYERS))}"


def test_imports_point_down():
    wrong = []
    seen = set()
    for file, line, source, target in _edges():
        upward = LAYERS[target] > LAYERS[source]
        sideways = LAYERS[target] == LAYERS[source] and (source, target) not in PEERS
        if upward or sideways:
            seen.add((file, target))
            if (file, target) not in STILL_UPWARD:
                wrong.append(f"{file}:{line} imports rta.{target} ({'up' if upward else 'across'}: {source} is layer "
                             f"{LAYERS[source]}, {target} is layer {LAYERS[target]})")  # fmt: skip
    assert not wrong, "imports that point the wrong way:\n" + "\n".join(wrong)
    stale = STILL_UPWARD - seen
    assert not stale, f"these were moved: remove them from STILL_UPWARD: {sorted(stale)}"


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for _, _, source, target in _edges():
        graph.setdefault(source, set()).add(target)
    cycles = []
    for start in graph:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    cycles.append(" -> ".join([*path, start]))
                elif nxt not in path:
                    stack.append((nxt, [*path, nxt]))
    assert not cycles, "package cycles:\n" + "\n".join(sorted(set(cycles)))
