"""academy-tui's data core: read Academy run pools (live), normalise, store, relate and
analyse their events. Pure Python + numpy/orjson: no UI, no LLM, no academy import.

Start here::

    from features import open_run
    run = open_run("latest")          # a pool path, uuid, unique prefix or 'latest'
    run.actions()                     # a Table: one row per action, both sides joined
    run.where_time_went(expected_s=16).seconds
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from features.catalog import catalog
    from features.pools import RunError, academy_home, resolve
    from features.run import Run, open_run
    from features.table import Table

__all__ = ["Run", "RunError", "Table", "academy_home", "catalog", "open_run", "resolve"]

_WHERE = {"Run": "features.run", "open_run": "features.run", "RunError": "features.pools",
          "academy_home": "features.pools", "catalog": "features.catalog",
          "resolve": "features.pools", "Table": "features.table"}


def __getattr__(name: str) -> Any:
    # Lazy: `import features.catalog` (the CLI's fast path) must not pull in the whole core.
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'features' has no attribute {name!r}")
