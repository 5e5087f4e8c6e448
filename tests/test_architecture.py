"""The shape of the code base: imports flow one way (no circles), no hub modules, no private
names borrowed across modules. Built from the source with ``ast``, so it needs no imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "prunetui"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def type_checking_nodes(tree: ast.AST) -> set[int]:
    """Ids of nodes under ``if TYPE_CHECKING:`` (imports for annotations only: exempt)."""
    exempt: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            exempt.update(id(n) for n in ast.walk(node))
    return exempt


def imported(name: str, path: Path, node: ast.Import | ast.ImportFrom
             ) -> list[tuple[str, str | None]]:
    """(module, name taken from it or None) for each prunetui module ``node`` imports.

    ``from pkg import sub`` where ``sub`` is a module depends on ``pkg.sub`` only; the parent
    packages Python runs on the way are not counted (every module would depend on them)."""
    if isinstance(node, ast.Import):
        return [(a.name, None) for a in node.names]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    if node.level:
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    found = []
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        found.append((sub, None) if sub in MODULES else (source, alias.name))
    return found


def owning_module(target: str) -> str | None:
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def import_graph() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """Edges between prunetui modules, and (importer, source, name) for private names."""
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    private = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exempt = type_checking_nodes(tree)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in exempt:
                continue
            for target, taken in imported(name, path, node):
                owner = owning_module(target) if target.startswith("prunetui") else None
                if owner and owner != name:
                    edges[name].add(owner)
                    if taken and taken.startswith("_") and not taken.startswith("__"):
                        private.append((name, owner, taken))
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle() -> None:
    found = cycles(import_graph()[0])
    assert not found, "import circles (imports inside functions count):\n" + "\n".join(
        " <-> ".join(c) for c in found)


def test_the_checker_finds_a_circle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]


def test_no_private_name_imported_across_modules() -> None:
    found = import_graph()[1]
    assert not found, "\n".join(f"{a} imports {n} from {b}" for a, b, n in found)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_hub_module(name: str) -> None:
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by concept"


def test_engine_imports_no_front_end() -> None:
    """The engine imports neither the CLI nor the app; the app does not import the CLI."""
    edges = import_graph()[0]
    for name, deps in edges.items():
        if name.startswith(("prunetui.cli", "prunetui.app")) or name == "prunetui.__main__":
            continue
        assert not {d for d in deps if d.startswith(("prunetui.cli", "prunetui.app"))}, name
    for name, deps in edges.items():
        if name.startswith("prunetui.app"):
            assert not {d for d in deps if d.startswith("prunetui.cli")}, name
