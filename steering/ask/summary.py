"""A compact text summary of a run: what a model reads before it asks for more.

Sections in priority order (run, where the time went, actions, errors, incidents,
concurrency, agents, processes, keys); when the text would exceed ``max_chars`` the
later sections are shortened, then dropped, so the numbers that answer most questions
survive. Log-derived strings (messages, names, values) are clipped and quoted with
``«`` ``»`` (:func:`steering.ask.refs.quote`); the prompt templates fence the whole
summary as untrusted data as well. Numbers are in seconds, rounded to 4 decimals: the
same figures the tool results give, so an answer can be checked against either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from features.fmt import count
from steering.ask import insights as A
from steering.ask import lookups as L
from steering.ask.refs import act_ref, quote

if TYPE_CHECKING:
    from features.run import Run

__all__ = ["STANDARD_KEYS", "summarize"]

STANDARD_KEYS = frozenset({
    "formatted", "name", "msg", "args", "levelname", "levelno", "pathname", "filename",
    "module", "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created", "msecs",
    "relativeCreated", "thread", "threadName", "processName", "process", "message",
    "taskName", "asctime"})
"""Keys every Python log record has: not worth a line of the summary."""


def _s(x: object) -> str:
    v = L.num(x)
    return "-" if v is None else f"{v:g} s"


Lines = list[tuple[int, str]]
"""``(priority, line)``: when the summary is too long the lowest priority goes first."""


def summarize(run: Run, expected_s: float | None = None, max_chars: int = 4000) -> str:
    """The summary of ``run`` (see the module docstring), at most ``max_chars`` long."""
    ev = run.events()
    if ev.n == 0:
        return f"Run {run.uuid}: no records yet."
    lines: Lines = [*_head(run), *_time(run, expected_s), *_actions(run), *_errors(run),
                    *_incidents(run), *_concurrency(run), *_agents(run), *_processes(run),
                    *_keys(run)]
    while True:
        text = "\n".join(line for _, line in lines)
        if len(text) <= max_chars:
            return text
        lowest = min(p for p, _ in lines)
        if lowest >= 100:
            return text[: max_chars - 16] + "\n…(summary cut)"
        drop = max(i for i, (p, _) in enumerate(lines) if p == lowest)
        del lines[drop]


def _head(run: Run) -> Lines:
    from features.status import status_of

    ev = run.events()
    status, rule = status_of(run, run.last_write())
    st = run.store.stats
    bad = f"; {count(st.bad_lines, 'bad line')}" if st.bad_lines else ""
    first, last = L.ev_at(run, ev.order[0]), L.ev_at(run, ev.order[-1])
    return [(100, f"Run {run.uuid}: {status} ({rule}); {count(ev.n, 'record')} in "
            f"{count(len(ev.file_names), 'file')}{bad}; wall time {_s(ev.t1 - ev.t0)} from "
            f"the first record [{first}] "
            f"to the last [{last}].")]


def _time(run: Run, expected_s: float | None) -> Lines:
    from features.analyses import CATEGORIES

    d = A.where_time_went(run, expected_s)
    parts = ", ".join(f"{c} {_s(d['seconds'][c])} ({d['share_pct'][c]}%)" for c in CATEGORIES)
    line = f"Where the time went (categories add up to the wall time {_s(d['wall_s'])}): {parts}."
    if expected_s is not None:
        line += f" Expected {_s(expected_s)}: excess {_s(d['excess_s'])}."
    if d.get("first_action_s") is not None:
        line += (f" First action at +{_s(d['first_action_s'])}, last action ended at "
                 f"+{_s(d['last_action_end_s'])}.")
    return [(100, line)]


def _actions(run: Run) -> Lines:
    acts = run.actions()
    if not len(acts):
        return [(90, "Actions: none.")]
    out: Lines = [(90, f"Actions ({count(len(acts), 'call')}), per agent class and action:")]
    g = L.group_stats(run, "class_action", "total_s", limit=8)
    for i, grp in enumerate(g["groups"]):
        slow = grp["slowest"]
        cite = f" slowest [{slow['act']}] {_s(slow['total_s'])}" if slow else ""
        name = f"{quote(grp['agent_class'], 60)}.{quote(grp['action'], 60)}"
        out.append((80 if i < 3 else 50, f"- {name}: "
                   f"{grp['count']} calls, {grp['errors']} raised, {grp['unfinished']} "
                   f"unfinished; total p50 {_s(grp['p50_s'])}, p95 {_s(grp['p95_s'])}, "
                   f"max {_s(grp['max_s'])}, sum {_s(grp['sum_s'])};{cite}"))
    return out


def _errors(run: Run) -> Lines:
    ev = run.events()
    lv = ev.ints["levelno"]
    err_rows = np.flatnonzero(lv >= 40)
    warn = int(((lv >= 30) & (lv < 40)).sum())
    acts = run.actions()
    failed = acts.where(acts["status"] == "exception") if len(acts) else acts
    out: Lines = [(90, f"Errors: {count(len(err_rows), 'ERROR/CRITICAL record')}, "
                       f"{count(warn, 'warning')}, "
                       f"{count(len(failed), 'action')} raised.")]
    for r in failed.head(3).records():
        item = L.action_item(run, r)
        out.append((70, f"- action {quote(r['action'], 60)} [{act_ref(r['tag'])}] raised on "
                   f"{quote(r['agent_id'], 60)} at +{_s(item['start_s'])} [{item['ev']}]"))
    order = err_rows[np.argsort(ev.created[err_rows], kind="stable")]
    for r in order[:3]:
        out.append((70, f"- ERROR at +{_s(ev.created[r] - ev.t0)}: {quote(ev.message[r])} "
                   f"[{L.ev_at(run, r)}]"))
    return out


def _incidents(run: Run) -> Lines:
    res = L.detection(run)
    if not res.incidents:
        judged = int(np.isin(res.flags["flag"], ("slow", "ok")).sum()) if len(res.flags) \
            else 0
        return [(85, f"Slowdowns: none found among {judged} judged actions.")]
    out: Lines = [(85, f"Slowdowns and hung calls: {len(res.incidents)} incident(s).")]
    for inc in res.incidents[:4]:
        cites = " ".join(f"[{act_ref(t)}]" for t in inc.tags[:3])
        out.append((60, f"- {quote(inc.describe(), 200)}, from +{_s(inc.start - run.events().t0)}"
                   f" {cites}"))
    return out


def _concurrency(run: Run) -> Lines:
    c = A.concurrency(run, "executing")
    f = A.concurrency(run, "in flight")
    a = A.concurrency(run, "agents")
    return [(75, f"How many at once: at most {count(c['max'], 'action')} executing (at "
            f"+{_s(c['at_s'])}; mean {c['mean']}), {count(f['max'], 'call')} in flight, "
            f"{count(a['max'], 'agent')} alive.")]


def _agents(run: Run) -> Lines:
    ag = run.agents()
    if not len(ag):
        return [(65, "Agents: none.")]
    classes: dict[str, int] = {}
    for c in ag["class"].tolist():
        classes[str(c)] = classes.get(str(c), 0) + 1
    counts = ", ".join(f"{quote(c, 60)} x{n}" for c, n in classes.items())
    out: Lines = [(65, f"Agents ({len(ag)}): {counts}.")]
    ev = run.events()
    for r in ag.head(12).records():
        up = r["t_running"] - r["t_launched"] if r["t_running"] and r["t_launched"] else None
        out.append((30, f"- [agent:{r['agent_id']}] {quote(r['class'], 60)} in process "
                   f"{str(r['file'] or '?')[:8]}, {r['status']}, launched "
                   f"+{_s((r['t_launched'] or ev.t0) - ev.t0)}, start-up {_s(up)}"))
    return out


def _processes(run: Run) -> Lines:
    p = L.list_things(run, "processes", "start_s", descending=False, limit=12)
    ends: dict[str, int] = {}
    for end in run.processes()["end"].tolist():
        ends[str(end)] = ends.get(str(end), 0) + 1
    how = ", ".join(f"{n} ended {e}" for e, n in ends.items())
    out: Lines = [(40, f"Processes ({p['matching']}): {how}.")]
    for it in p["items"]:
        out.append((20, f"- {it['process']} pid {it['pid']} {quote(it['processName'], 40)}: "
                   f"{it['records']} records, {it['errors']} errors, from +{_s(it['start_s'])}"
                   f" to +{_s(it['end_s'])}, ended {it['end']} [{it['ev']}]"))
    return out


def _keys(run: Run) -> Lines:
    keys = L.key_counts(run, STANDARD_KEYS, limit=40)
    if not keys:
        return []
    return [(10, "Keys beyond the standard log record keys (events carrying each): "
            + ", ".join(f"{quote(k, 60)} {c}" for k, c in keys) + ".")]
