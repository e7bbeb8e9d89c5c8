"""The library's layers point down: no module imports a module of a higher layer, and no modules import
each other in a circle. Read from the source (AST), so a lazy import inside a function counts as well.

The layers, bottom first (DESIGN.md draws the same picture):

0. foundations: ``world``, ``data``, the run store and launching (``runs.store``, ``runs.launch``),
   ``errors``, ``paths``, ``progress``
1. ``models``
2. ``generation``, ``training``, ``judges``
3. ``evaluation``
4. ``studies``
5. the notebook runner, sweeps, timings and comparisons (the rest of ``runs``), and ``book``
6. ``cli``
"""

import ast
import re
import sys
from pathlib import Path

import pytest

from repro import paths

SOURCE = paths.project_root() / "src"

#: Module (or package) name prefix -> layer; the longest prefix that matches a module wins.
LAYERS = {
    "repro": 0, "repro.errors": 0, "repro.paths": 0, "repro.progress": 0, "repro.world": 0, "repro.data": 0,
    "repro.shipped": 0,
    "repro.runs": 0, "repro.runs.store": 0, "repro.runs.launch": 0,
    "repro.models": 1,
    "repro.generation": 2, "repro.training": 2, "repro.judges": 2,
    "repro.evaluation": 3,
    "repro.studies": 4,
    "repro.runs.notebooks": 5, "repro.runs.ranges": 5, "repro.runs.sweep": 5, "repro.runs.parallel": 5,
    "repro.runs.timings": 5, "repro.runs.compare": 5, "repro.book": 5,
    "repro.cli": 6, "repro.gpu_check": 6,
}
#: Heavy or optional packages whose import may stay inside a function (nothing of the project's own).
LAZY_ALLOWED: set[str] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SOURCE / "repro").rglob("*.py"))}


def layer(module: str) -> int:
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[prefix]


def imports(path: Path, known: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """The project modules that ``path`` imports: (module, line, inside a function)."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    inside: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(n for n in ast.walk(node) if n is not node)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # ``from package import module`` imports the module; ``from module import name`` the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            if target == "repro" or target.startswith("repro."):
                while target not in known and "." in target:
                    target = target.rpartition(".")[0]
                out.append((target, node.lineno, node in inside))
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {t for t, _, _ in imports(path, known) if t != name} for name, path in known.items()}


def test_every_module_has_a_layer():
    for name in modules():
        assert any(name == p or name.startswith(p + ".") for p in LAYERS), f"{name} has no layer in LAYERS"


def test_no_module_imports_from_a_higher_layer():
    known = modules()
    upward = [f"{name}:{line} imports {target} (layer {layer(target)} above {layer(name)})"
              for name, path in known.items() for target, line, _ in imports(path, known)
              if layer(target) > layer(name)]
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (circle := visit(nxt)):
                return circle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (circle := visit(start)):
            pytest.fail("import circle: " + " -> ".join(circle))


def test_project_imports_sit_at_the_top_of_modules():
    known = modules()
    lazy = [f"{name}:{line} imports {target} inside a function" for name, path in known.items()
            for target, line, inside in imports(path, known) if inside and target not in LAZY_ALLOWED]
    assert not lazy, "\n".join(lazy)


def test_the_checker_sees_an_upward_import_and_a_circle(tmp_path, monkeypatch):
    """The checks can fail: a world module importing a study, and two modules importing each other."""
    root = tmp_path / "src"
    (root / "repro" / "world").mkdir(parents=True)
    (root / "repro" / "studies").mkdir()
    for folder in ("repro", "repro/world", "repro/studies"):
        (root / folder / "__init__.py").write_text("")
    (root / "repro" / "world" / "a.py").write_text("from repro.studies import b\n")
    (root / "repro" / "studies" / "b.py").write_text("def f():\n    from repro.world.a import x\n")
    monkeypatch.setattr(sys.modules[__name__], "SOURCE", root)
    with pytest.raises(AssertionError, match="repro.world.a:1 imports repro.studies.b"):
        test_no_module_imports_from_a_higher_layer()
    with pytest.raises(pytest.fail.Exception, match="import circle: repro.studies.b -> repro.world.a -> repro.studies.b"):
        test_no_import_circle()
    with pytest.raises(AssertionError, match="repro.studies.b:2 imports repro.world.a inside a function"):
        test_project_imports_sit_at_the_top_of_modules()


def test_design_names_only_what_exists():
    """Every ``src/repro/...`` path and ``repro.x`` module that DESIGN.md names exists (``NAME``: a
    placeholder)."""
    design = (paths.project_root() / "DESIGN.md").read_text()
    named = {p.rstrip("./") for p in re.findall(r"src/repro/[\w./]+", design) if not re.search(r"/[A-Z]+/", p)}
    assert named, "DESIGN.md names no package"
    missing = [p for p in sorted(named) if not (paths.project_root() / p).exists()]
    dotted = {m.rstrip(".") for m in re.findall(r"`(repro(?:\.\w+)+)", design)}
    known = modules()
    missing += [m for m in sorted(dotted) if m not in known and m.rpartition(".")[0] not in known]
    assert not missing, f"DESIGN.md names what does not exist: {missing}"
