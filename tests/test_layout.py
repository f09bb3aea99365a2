"""The package's layout: subpackages import one way (issue 14, item 5). Every import counts,
also those inside functions and under TYPE_CHECKING, so a cycle cannot hide in a lazy import."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "rillet"
# Bottom to top; a module may import its own layer's modules and those of layers below it.
LAYERS = [
    {"_errors", "_time", "_clock", "_interrupt", "_progress", "_loss", "_core", "_codec"},
    {"plan"},
    {"sources"},
    {"views"},
    {"runtime"},
    {"sinks"},
    {"query"},
    {"sql"},
    {"cli", "demo", "__main__", "__init__"},
]


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rillet"):
                names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for n in names:
                if n in mods and n not in (m, "rillet"):
                    graph[m].add(n)
    return graph


def _layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else "__init__"
    return next(i for i, layer in enumerate(LAYERS) if part in layer)


def test_no_module_imports_a_module_of_a_layer_above_it() -> None:
    upward = [(m, t) for m, ts in _graph().items() for t in ts if _layer(t) > _layer(m)]
    assert not upward, f"imports that go up the layers: {upward}"


def test_there_is_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(t):], t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
