"""The app's process gives freed big arrays back to the system (tui.memory): after a
pass that freed a big block, glibc served the next arrays from its heap and kept them
resident once freed (blocks freed above 32 MB do not move the threshold; 16 MB ones do)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PASS = r"""
import json, sys
import numpy as np
from tui.memory import settle
took = settle() if sys.argv[1] == "settle" else None
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("RssAnon")).split()[1])
big = np.ones(2_000_000); del big           # a pass frees a 16 MB array
base = rss()
arrays = [np.ones(400_000) for _ in range(40)]  # then 3 MB arrays, 128 MB
keep = arrays[-1]
del arrays                                  # all freed but the last
print(json.dumps({"took": took, "held_mb": (rss() - base) / 1024}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_freed_arrays_leave_the_apps_process() -> None:
    def held(mode: str) -> dict[str, float]:
        out = subprocess.run([sys.executable, "-c", PASS, mode], cwd=ROOT, check=True,
                             capture_output=True, text=True,
                             env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        return json.loads(out.stdout)

    settled = held("settle")
    if not settled["took"]:
        pytest.skip("not glibc: the threshold is the C library's own")
    assert settled["held_mb"] < 20  # the one array kept (3 MB), not the 125 MB freed
    assert held("as is")["held_mb"] > 60  # what glibc keeps when left alone
