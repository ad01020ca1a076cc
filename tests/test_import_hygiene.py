"""Layer rules: features/ never imports a UI, an LLM client or academy; steering/ never
imports the UI. Each module is imported in a fresh interpreter and sys.modules checked."""

from __future__ import annotations

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
