"""The package's layers: imports point one way, and no module imports itself back.

tools -> course -> methods -> engine -> core -> data -> base (``settings``, ``atomic``); the
façade ``umm_helpers/__init__.py`` and ``__main__`` may import anything. Function-local imports
count too: a lazy import that points the wrong way is still a wrong dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "umm_helpers"
RANK = {"settings": 0, "atomic": 0, "data": 1, "core": 2, "engine": 3, "methods": 4,
        "course": 5, "tools": 6}
FACADE = {"__init__", "__main__"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """``(imported umm_helpers module, at module level?)`` for every import in ``path``."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            target = _layer_file(name) if name.startswith("umm_helpers.") else None
            if target is not None and (target, id(node) in top) not in out:
                out.append((target, id(node) in top))
    return out


def _layer_file(name: str) -> str | None:
    """The module a dotted name refers to, if it is a module of the package."""
    rel = name.split(".")[1:]
    while rel:
        path = PACKAGE.joinpath(*rel)
        if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
            return "umm_helpers." + ".".join(rel)
        rel = rel[:-1]
    return None


def _layer(module: str) -> str:
    return module.split(".")[1]


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module):
    if module == "umm_helpers" or module.split(".")[-1] in FACADE:
        return
    mine = RANK[_layer(module)]
    wrong = sorted({target for target, _ in _imports(MODULES[module])
                    if target != "umm_helpers" and RANK[_layer(target)] > mine})
    assert not wrong, f"{module} ({_layer(module)}) imports higher layers: {wrong}"


def test_no_import_cycles_between_modules():
    graph = {m: {t for t, top in _imports(p) if top and t != m and t in MODULES}
             for m, p in MODULES.items() if m.split(".")[-1] not in FACADE and m != "umm_helpers"}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_checker_sees_a_wrong_import(tmp_path):
    """The rule can fail: an engine module importing the methods layer is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from umm_helpers.methods.run import run_method\n")
    assert _imports(bad) == [("umm_helpers.methods.run", False)]
    assert RANK[_layer("umm_helpers.methods.run")] > RANK["engine"]
