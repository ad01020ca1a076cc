"""academy-tui's data core: read Academy run pools (live), normalise, store, relate and
analyse their events. Pure Python + numpy/orjson: no UI, no LLM, no academy import.

Start here::

    from features import open_run
    run = open_run("latest")          # a pool path, uuid, unique prefix or 'latest'
    run.actions()                     # a Table: one row per action, both sides joined
    run.where_time_went(expected_s=16).seconds
"""

from __future__ import annotations

from features.run import Run, open_run
from features.runs import RunError, academy_home, catalog, resolve
from features.table import Table

__all__ = ["Run", "RunError", "Table", "academy_home", "catalog", "open_run", "resolve"]
