"""What a person sees before they have a run: an empty catalog explains where it looked,
what a run is and how to make or find one (the CLI's ``runs`` and the app's catalog say
the same)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["no_runs"]


def no_runs(home: Path | None) -> str:
    """What an empty catalog says: where it looked (and why there), where runs come from
    and how to make one."""
    from features.pools import logs_dir

    where = ("--home" if home is not None else "$ACADEMY_HOME" if os.environ.get(
        "ACADEMY_HOME") else "Academy's default home; ACADEMY_HOME or --home changes it")
    return "\n".join([
        f"0 runs under {logs_dir(home)} ({where}).",
        "",
        "A run is the pool directory Academy's JSONPoolLogging writes while a workflow runs:",
        "<home>/logs/<pool-uuid>/<process>.jsonlog, one file per process. To see one:",
        "  academy-tui demo                   run the fibonacci demo workflow on real academy-py",
        "                                     (about 20 s, no server) and watch it live",
        "  academy-tui --home DIR runs        list the runs under another Academy home",
        "  ACADEMY_HOME=DIR academy-tui       the same for every command",
        "  academy-tui PATH/TO/POOL           open one pool directory, wherever it is",
    ])
