"""The README's action join in SQL, for runs too big for one machine's memory, run on the
SQLite export of real sample runs: it must give our join's times exactly (a paper claim
kept honest)."""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from features.run import Run

ROOT = Path(__file__).resolve().parents[2]


def readme_sql() -> str:
    text = (ROOT / "README.md").read_text()
    [sql] = [b for b in re.findall(r"```sql\n(.*?)```", text, re.S)
             if '"academy.action_tag" AS tag' in b]
    return sql


@pytest.mark.parametrize("name", ["pairs", "exception", "http"])
def test_the_readme_action_join_is_ours(sample: Callable[[str], Path], tmp_path: Path,
                                        name: str) -> None:
    from tui.cli import main

    db = tmp_path / "run.db"
    assert main(["export", str(sample(name)), "--format", "sqlite", "--what", "events",
                 "-o", str(db)]) == 0
    run = Run(sample(name), cache=False)
    run.load()
    got = {r[0]: r for r in sqlite3.connect(db).execute(readme_sql())}
    acts = run.actions()
    assert len(got) == len(acts) > 0
    for rec in acts.records():
        row = got[rec["tag"]]
        assert row[1] == rec["action"]
        for i, key in enumerate(("t_start", "t_exec_start", "t_exec_end", "t_end"), 2):
            want = rec[key]
            if isinstance(want, float) and math.isnan(want):
                assert row[i] is None, (rec["tag"], key)
            else:
                assert row[i] == pytest.approx(want, abs=1e-6), (rec["tag"], key)
