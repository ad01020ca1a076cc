"""Layer rules: features/ never imports a UI, an LLM client or academy; steering/ never
imports the UI. Each module is imported in a fresh interpreter and sys.modules checked."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def modules(package: str) -> list[str]:
    """Every module of ``package``, subpackages included: without the prefix,
    walk_packages cannot import a subpackage to walk it, and steering.demo.* and
    steering.ask.* were never checked."""
    pkg_dir = ROOT / package
    return [m.name for m in pkgutil.walk_packages([str(pkg_dir)], prefix=f"{package}.")
            if not m.name.rsplit(".", 1)[-1].startswith("_")] + [package]


def test_the_walk_reaches_subpackages() -> None:
    mods = modules("steering")
    assert {"steering.demo.workflow", "steering.ask.engine", "steering.agent"} <= set(mods)


FORBIDDEN = {
    # The layers run one way: features <- steering <- tui.
    "features": ("textual", "rich", "openai", "academy", "httpx", "steering", "tui"),
    "steering": ("textual", "rich", "tui"),
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_imports(package: str) -> None:
    mods = modules(package)
    code = (
        "import importlib, sys\n"
        f"bad = {FORBIDDEN[package]!r}\n"
        f"for m in {mods!r}:\n"
        "    before = set(sys.modules)\n"
        "    importlib.import_module(m)\n"
        "    hit = [x for x in sys.modules if x.split('.')[0] in bad]\n"
        "    if hit:\n"
        "        print(m, sorted(set(x.split('.')[0] for x in hit)))\n"
        "        sys.exit(1)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, f"{package} imports a forbidden module: {res.stdout}{res.stderr}"


# -- import circles ---------------------------------------------------------------------


def import_graph(packages: tuple[str, ...] = ("features", "steering", "tui", "prompts"),
                 root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the project's modules it imports anywhere in its text: at the top, inside
    a function (an import put there to dodge a circle still ties the two) or for types
    only (a reader follows it all the same). ``from pkg import mod`` names the module."""
    files = {}
    for package in packages:
        for f in (root / package).rglob("*.py"):
            name = ".".join(f.relative_to(root).with_suffix("").parts)
            files[name.removesuffix(".__init__")] = f
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, f in files.items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                subs = [f"{node.module}.{a.name}" for a in node.names]
                targets = [s for s in subs if s in files] or [node.module]
            else:
                continue
            graph[mod].update(t for t in targets if t in files and t != mod)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_round_a_circle() -> None:
    graph = import_graph()
    assert {"features.run", "steering.steerer", "tui.app"} <= set(graph)  # the walk works
    assert "features.source_kinds" in graph["features.run"]
    found = circles(graph)
    assert not found, "import circles (each module reaches the others and itself): " + \
        "; ".join(" <-> ".join(g) for g in found)


def test_the_circle_check_sees_imports_inside_functions_and_for_types(tmp_path: Path
                                                                     ) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                "    from pkg.high import High\n")
    (pkg / "high.py").write_text("def f():\n    from pkg import low\n")
    (pkg / "apart.py").write_text("import pkg.low\n")
    graph = import_graph(("pkg",), tmp_path)
    assert graph["pkg.low"] == {"pkg.high"} and graph["pkg.high"] == {"pkg.low"}
    assert circles(graph) == [["pkg.high", "pkg.low"]]
    (pkg / "high.py").write_text("def f():\n    return 1\n")
    assert circles(import_graph(("pkg",), tmp_path)) == []
