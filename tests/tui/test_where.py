"""The "where the time went" view's histogram: of the most common action, counted from
the per-class call counts of the same actions."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
from pilotkit import until
from textual.widgets import Static

from features import analyses
from features.table import Table
from tui.app import AcademyApp
from tui.screens.run import RunScreen
from tui.widgets.where import WhereView


def _histogram_title(actions: Table) -> str:
    a = SimpleNamespace(actions=actions, stats=analyses.group_stats(actions))
    return WhereView._histogram(None, a).plain.strip().splitlines()[0]  # type: ignore[arg-type]


def test_the_most_common_action_first_by_name_among_equals() -> None:
    names = ["b"] * 3 + ["a"] * 3 + ["c"] * 2 + [None]
    classes = ["X", "Y", "X", "X", "Y", "Y", "X", "X", "X"]
    n = len(names)
    actions = Table({
        "agent_class": np.array(classes, dtype=object),
        "action": np.array(names, dtype=object),
        "status": np.array(["ok"] * n, dtype=object),
        **{c: np.linspace(0.1, 1.0, n) for c in ("total_s", "queue_s", "exec_s", "reply_s")},
    })
    counts = Counter(x or "" for x in names)
    assert counts["a"] == counts["b"] == 3  # spread over two classes each
    assert _histogram_title(actions) == "a: duration histogram (3 calls)"
    assert _histogram_title(actions.take(np.arange(0, 3))) == \
        "b: duration histogram (3 calls)"


async def test_the_view_names_the_runs_most_common_action(sample) -> None:  # type: ignore[no-untyped-def]
    app = AcademyApp(str(sample("agent_driver")))
    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen)
                    and app.screen.model.analysis is not None)
        scr = app.screen
        await pilot.press("w")
        hist = scr.query_one("#where-hist", Static)
        await until(pilot, lambda: "histogram" in str(hist.render()))
        acts = scr.model.analysis.actions  # type: ignore[union-attr]
        (name, n), = Counter(acts["action"].tolist()).most_common(1)
        assert str(hist.render()).strip().startswith(f"{name}: duration histogram ({n} calls)")
