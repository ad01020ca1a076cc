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


# -- the same rules, read from the source ---------------------------------------------------
#
# Importing a module runs only its top level: an import inside a function (a lazy import,
# or one put there to dodge a circle) slips past test_layer_imports. Here every import
# statement of every module is read with ast, wherever it sits. Imports under
# ``if TYPE_CHECKING:`` do not count: they never execute, so they cannot pull textual into
# a notebook (the ``else:`` branch of such an ``if`` does execute, and counts).

LAYERED = ("features", "steering", "tui", "prompts")
"""The packages read; tui and prompts have no rule today, a rule added to FORBIDDEN for
them is checked at once."""


def _type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``, nothing that merely contains it."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(source: str, module: str, is_package: bool = False
                    ) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import statement in ``source`` that can
    execute: at any depth (functions, classes, try/except), relative ones resolved against
    ``module``, those in the body of ``if TYPE_CHECKING:`` left out."""
    found: list[tuple[int, str]] = []
    base = module.split(".") if is_package else module.split(".")[:-1]
    todo: list[ast.AST] = [ast.parse(source)]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and _type_checking(node.test):
            todo.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = ".".join(base[:len(base) - node.level + 1])
                names = [f"{parent}.{node.module}"] if node.module else \
                    [f"{parent}.{a.name}" for a in node.names]
            else:
                names = [str(node.module)]
            found += [(node.lineno, n) for n in names]
        todo.extend(ast.iter_child_nodes(node))
    return sorted(found)


def layer_violations(path: str, source: str) -> list[str]:
    """``path:line: imports name`` for each import in ``source`` (the module at ``path``,
    relative to the project root) that its package's FORBIDDEN entry rules out."""
    parts = Path(path).with_suffix("").parts
    is_package = parts[-1] == "__init__"
    module = ".".join(parts[:-1] if is_package else parts)
    bad = FORBIDDEN.get(parts[0], ())
    return [f"{path}:{line}: imports {name}"
            for line, name in runtime_imports(source, module, is_package)
            if name.split(".")[0] in bad]


def test_layer_rules_hold_for_every_import_statement() -> None:
    files = sorted(f for package in LAYERED for f in (ROOT / package).rglob("*.py"))
    assert {p for p in LAYERED if (ROOT / p / "__init__.py") in files} == set(LAYERED)
    # The walk sees imports inside functions: steering.ask.tools reads the schema lazily.
    tools = (ROOT / "steering" / "ask" / "tools.py").read_text(encoding="utf-8")
    nested = [i for f in ast.walk(ast.parse(tools)) if isinstance(f, ast.FunctionDef)
              for i in ast.walk(f) if isinstance(i, ast.ImportFrom)
              and i.module == "features.query"]
    assert nested and {(i.lineno, "features.query") for i in nested} <= \
        set(runtime_imports(tools, "steering.ask.tools"))
    found = [v for f in files
             for v in layer_violations(f.relative_to(ROOT).as_posix(),
                                       f.read_text(encoding="utf-8"))]
    assert not found, "layer rule broken (features never imports " + \
        ", ".join(FORBIDDEN["features"]) + "; steering never imports " + \
        ", ".join(FORBIDDEN["steering"]) + "):\n" + "\n".join(found)


def test_the_static_layer_check_sees_what_an_import_would_miss() -> None:
    source = (
        "from __future__ import annotations\n"                     # 1
        "from typing import TYPE_CHECKING\n"                       # 2
        "import numpy\n"                                           # 3
        "if TYPE_CHECKING:\n"                                      # 4
        "    from textual.app import App\n"                        # 5: never runs
        "else:\n"                                                  # 6
        "    import openai\n"                                      # 7
        "def show():\n"                                            # 8
        "    import textual\n"                                     # 9
        "class Report:\n"                                          # 10
        "    def paint(self):\n"                                   # 11
        "        try:\n"                                           # 12
        "            from rich.text import Text\n"                 # 13
        "        except ImportError:\n"                            # 14
        "            pass\n"                                       # 15
        "        from . import other\n"                            # 16
        "        from ..steering import steerer\n"                 # 17
    )
    assert layer_violations("features/sub/report.py", source) == [
        "features/sub/report.py:7: imports openai",
        "features/sub/report.py:9: imports textual",
        "features/sub/report.py:13: imports rich.text",
    ]
    # Relative imports resolve from the module's package (an __init__ is its own).
    assert (16, "features.sub.other") in runtime_imports(source, "features.sub.report")
    assert (17, "features.steering") in runtime_imports(source, "features.sub.report")
    assert (16, "features.sub.other") in runtime_imports(source, "features.sub", True)
    # steering may import academy and openai, not textual; tui has no rule.
    assert layer_violations("steering/x.py", source) == ["steering/x.py:9: imports textual",
                                                         "steering/x.py:13: imports rich.text"]
    assert layer_violations("tui/x.py", source) == []


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
