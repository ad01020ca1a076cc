"""The compiled loops (``features/_typed_c.c``, ``features/_parse_c.c``): which are there.

Each is built at install when a C compiler and Python's headers are there
(``pyproject.toml``: optional) and stands in for a Python loop with the same results. A
module that was not built, or every one of them when ``ACADEMY_TUI_PURE_PYTHON`` is set,
is None here, and its Python loop runs."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

PURE = "ACADEMY_TUI_PURE_PYTHON"
"""Set (to anything but empty): the Python loops run, the compiled ones are not loaded."""


def compiled(name: str) -> ModuleType | None:
    """``features.<name>``, a compiled loop; None when it was not built or :data:`PURE`
    is set."""
    if os.environ.get(PURE):
        return None
    try:
        return importlib.import_module(f"features.{name}")
    except ImportError:
        return None


__all__ = ["PURE", "compiled"]
