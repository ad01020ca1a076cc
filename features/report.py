"""The run report: the seed's question ("I expected 16 s, it took 24 s: where did the
time go?") answered with numbers and evidence, as sections (:mod:`features.render`
renders them as text, Markdown or JSON)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from features import analyses
from features.causes import Cause, causes, excess_sentence, per_call
from features.fmt import count, fmt_s, histogram_lines, short_file
from features.render import Section
from features.run import Run
from features.status import status_of
from features.table import Table


def answer(tb: analyses.TimeBreakdown, found: list[Cause] | None = None,
           cite: Callable[[int], str] | None = None) -> str:
    """The one-paragraph answer to "where did the time go?": the categories, then the
    excess named by its causes (:mod:`features.causes`; from ``tb`` alone when ``found``
    is not given, which names agents waited for but no slow calls)."""
    s = tb.seconds
    parts = []
    if tb.expected_s is not None and tb.excess_s is not None:
        pct = tb.excess_s / tb.expected_s * 100 if tb.expected_s else float("nan")
        sign = "+" if tb.excess_s >= 0 else "-"
        parts.append(f"The run took {fmt_s(tb.wall_s)} against {fmt_s(tb.expected_s)} "
                     f"expected ({sign}{fmt_s(abs(tb.excess_s))}, {sign}{abs(pct):.0f}%).")
    else:
        parts.append(f"The run took {fmt_s(tb.wall_s)}.")
    if tb.actions == 0:
        parts.append("No action was called, so all of it is start-up or idle time.")
        return " ".join(parts)
    msg = s["queue"] + s["reply"]
    waits = []
    if s["agent_startup"] > 0:
        waits.append(f"calls waited {fmt_s(s['agent_startup'])} for their agents to start")
    if s["stalled"] > 0:
        waits.append(f"{fmt_s(s['stalled'])} on agents that had crashed or never started")
    parts.append(f"Run start-up before the first call took {fmt_s(s['startup'])}, "
                 + "".join(w + ", " for w in waits)
                 + f"messages were in transit for {fmt_s(msg)} (not overlapped by any "
                 f"execution) and shutdown after the last call took {fmt_s(s['shutdown'])}.")
    parts.append(f"Actions were executing for {fmt_s(s['execution'])} and callers were "
                 f"between calls (their own work or sleep) for {fmt_s(s['caller'])}.")
    why = excess_sentence(tb, causes(tb) if found is None else found, cite)
    if why:
        parts.append(why)
    return " ".join(parts)


def build(run: Run, expected_s: float | None = None, top: int = 10,
          anomalies: bool = True, expected_calls: dict[str, float] | None = None,
          ranking: bool = True) -> list[Section]:
    """Compute every section of the report (``anomalies=False`` leaves out the slowdown
    detection, the one part whose cost grows with a model fit; ``expected_calls`` gives
    an expected duration per call of some actions, ``{"next_item": 0.5}``;
    ``ranking=False`` leaves out the detector's multivariate forest, which never decides
    what is slow and only scores calls as context (``mv_score`` of an incident's calls in
    the JSON): the text and Markdown reports never show it, and it costs scikit-learn's
    import (1-2 s) and a fit)."""
    ev = run.events()
    head = _run_section(run)
    if ev.n == 0:
        head.lines.append("The pool holds no records yet.")
        return [head]
    secs = [head]
    tb = run.where_time_went(expected_s)
    detection = _detection(run, ranking) if anomalies else None
    found = causes(tb, run, detection)
    if expected_calls:
        # Compared like with like: these replace the detector's "slow call" guesses.
        found = per_call(run, expected_calls) + [c for c in found if c.kind != "slow call"]
    secs.append(_where_section(run, tb, found))
    if expected_calls:
        secs.append(_expected_section(run, found, expected_calls))
    if tb.callers:
        secs.append(_callers_section(tb))
    secs.append(_processes_section(run))
    secs.extend(_agents_sections(run, tb))
    slurm = _slurm_section(run)
    if slurm is not None:
        secs.append(slurm)
    acts = run.actions()
    if len(acts):
        secs.extend(_actions_sections(run, acts, top, detection))
    errors = _errors_section(run, acts, top)
    if errors is not None:
        secs.append(errors)
    steer = steering_section(run, top)
    if steer is not None:
        secs.append(steer)
    return secs


def _run_section(run: Run) -> Section:
    ev = run.events()
    stats = run.store.stats
    st, rule = status_of(run, run.last_write())
    head = Section("Run", [
        f"pool      {run.uuid}",
        f"path      {run.path}",
        f"status    {st} ({rule})",
        f"records   {ev.n} in {count(len(ev.file_names), 'file')}"
        + (f"; {count(stats.bad_lines, 'bad line')} ({count(stats.recovered, 'record')} "
           "recovered from them)" if stats.bad_lines else ""),
    ], data={"pool": run.uuid, "path": str(run.path), "status": st, "rule": rule,
             "records": ev.n, "files": len(ev.file_names), "bad_lines": stats.bad_lines,
             "recovered": stats.recovered, "other_files": stats.other_files,
             "notes": list(run.notes)})
    if stats.other_files:
        head.lines.append(f"ignored   {stats.other_files} other entries in the pool directory")
    for note in run.notes[:10]:
        head.lines.append(f"note      {note}")
    return head


def _where_section(run: Run, tb: analyses.TimeBreakdown, found: list[Cause]) -> Section:
    data = tb.as_dict()
    data["causes"] = [c.as_dict() for c in found]
    wt = Section("Where the time went",
                 [answer(tb, found, lambda r: run.events().cite(r)), ""], data=data)
    rows = []
    for cat in analyses.CATEGORIES:
        v = tb.seconds[cat]
        rows.append({"category": tb.words(cat), "seconds": round(v, 6),
                     "share": f"{v / tb.wall_s * 100:.1f}%" if tb.wall_s else "-",
                     "meaning": analyses.CATEGORY_HELP[cat]})
    rows.append({"category": "wall", "seconds": round(tb.wall_s, 6), "share": "100%",
                 "meaning": "first record to last record"})
    wt.table = Table({k: [r[k] for r in rows] for k in rows[0]}, name="time")
    return wt


def _expected_section(run: Run, found: list[Cause], expected_calls: dict[str, float]
                      ) -> Section:
    return Section("Expected per call", [
        c.text + (f" [{run.events().cite(c.row)}]" if c.row >= 0 else "")
        for c in found if c.kind == "expected per call"],
        data={k: v for k, v in expected_calls.items()})


def _callers_section(tb: analyses.TimeBreakdown) -> Section:
    return Section("Callers", table=Table({
        "caller": [c["caller"] for c in tb.callers],
        "calls": [c["calls"] for c in tb.callers],
        "span_s": [round(c["span_s"], 6) for c in tb.callers],
        "in_calls_s": [round(c["in_calls_s"], 6) for c in tb.callers],
        "between_calls_s": [round(c["between_calls_s"], 6) for c in tb.callers],
    }, name="callers"))


def _processes_section(run: Run) -> Section:
    ev = run.events()
    # Processes by when they started and agents by when they were launched: the order
    # the run happened in, the same however the pool was read (a file that appeared
    # while it was followed is numbered after the others).
    procs = run.processes()
    procs = procs.take(np.lexsort((np.asarray(procs["file"], dtype=str),
                                   np.nan_to_num(procs["t_first"], nan=np.inf))))
    return Section("Processes", table=Table({
        "file": [short_file(f) for f in procs["file"]],
        # -1: its records name no process; a reader sees it as missing, not as a pid.
        "pid": [int(p) if p >= 0 else None for p in procs["pid"]],
        "processName": procs["processName"],
        "records": procs["records"], "errors": procs["errors"],
        "bad_lines": procs["bad_lines"],
        "start_s": np.round(procs["t_first"] - ev.t0, 3),
        "end_s": np.round(procs["t_last"] - ev.t0, 3), "end": procs["end"],
    }, name="processes"))


def _agents_sections(run: Run, tb: analyses.TimeBreakdown) -> list[Section]:
    ev = run.events()
    out: list[Section] = []
    ag = run.agents()
    if len(ag):
        ag = ag.take(np.lexsort((np.asarray(ag["agent_id"], dtype=str),
                                 np.nan_to_num(ag["t_launched"], nan=np.inf))))
        waited = {d["agent_id"]: d["waited_s"] for d in tb.startups}
        out.append(Section("Agents", table=Table({
            "agent_id": ag["agent_id"], "class": ag["class"],
            "process": [short_file(f) if f else "-" for f in ag["file"]],
            "launched_s": np.round(ag["t_launched"] - ev.t0, 3),
            "startup_s": np.round(ag["t_running"] - ag["t_launched"], 3),
            "waited_for_s": [round(waited.get(a, 0.0), 3) for a in ag["agent_id"]],
            "shutdown_s": np.round(ag["t_shutdown"] - ev.t0, 3),
            "status": ag["status"],
        }, name="agents")))
        pst = _parsl_startup_section(run)
        if pst is not None:
            out.append(pst)
    return out


def _actions_sections(run: Run, acts: Table, top: int, detection: Any) -> list[Section]:
    ev = run.events()
    out: list[Section] = []
    gs = run.action_stats()
    out.append(Section("Actions by agent class", table=gs))
    slow = analyses.slowest(acts, top)
    out.append(Section(f"Slowest {count(len(slow), 'action')}", table=Table({
        "tag": [t[:8] for t in slow["tag"]], "action": slow["action"],
        "agent": slow["agent_id"], "status": slow["status"],
        "start_s": np.round(slow["t_start"] - ev.t0, 3),
        "total_s": np.round(slow["total_s"], 4), "queue_s": np.round(slow["queue_s"], 4),
        "exec_s": np.round(slow["exec_s"], 4), "reply_s": np.round(slow["reply_s"], 4),
        "evidence": [run.events().cite(int(r)) for r in slow["row_start"]],
    }, name="slowest")))
    if detection is not None:
        out.append(anomalies_section(run, top, result=detection))
    times, counts = run.concurrency("executing")
    cs = analyses.concurrency_stats(times, counts)
    hist_lines = []
    for name in _top_actions(acts):
        m = acts["action"] == name
        lines = histogram_lines(acts["exec_s"][m], bins=8)
        if lines:
            hist_lines.append(f"{name} execution time ({count(int(m.sum()), 'call')}):")
            hist_lines.extend(lines)
    out.append(Section("How many at once", [
        f"at most {count(int(cs['max']), 'action')} executing at once "
        f"(at +{cs['t_max'] - ev.t0:.3f} s); on average {cs['mean']:.2f}",
        "", *hist_lines], data=cs))
    return out


def _errors_section(run: Run, acts: Table, top: int) -> Section | None:
    ev = run.events()
    err_rows = np.flatnonzero(ev.ints["levelno"] >= 40)
    if not (len(err_rows) or (len(acts) and (acts["status"] == "exception").any())):
        return None
    lines = []
    failed = acts.where(acts["status"] == "exception") if len(acts) else acts
    for r in failed.records()[:top]:
        where = r["row_exec"] if r["row_exec"] >= 0 else r["row_end"]
        lines.append(f"action {r['action']} {r['tag'][:8]} raised on {r['agent_id']}"
                     f" at +{(r['t_start'] or ev.t0) - ev.t0:.3f} s "
                     f"[{run.events().cite(where)}]")
    order = err_rows[np.argsort(ev.created[err_rows], kind="stable")]
    for r in order[:top]:
        lines.append(f"{(ev.ints['levelno'][r] >= 50 and 'CRITICAL') or 'ERROR'} "
                     f"+{ev.created[r] - ev.t0:.3f} s {ev.message[r][:160]} "
                     f"[{run.events().cite(int(r))}]")
    if len(order) > top:
        lines.append(f"... {len(order) - top} more ERROR records")
    return Section("Errors", lines, data={"error_records": len(err_rows)})


def steering_section(run: Run, top: int = 10) -> Section | None:
    """The steering agent's trail, from its verified records only (:mod:`features.trail`):
    counts by kind, the suggestions, approvals, applied calls, checks and reverts in time
    order, each steering agent's state, and how many records were not counted."""
    from features.trail import read_trail

    trail = read_trail(run)
    if not trail.records and not trail.unverified:
        return None
    ev = run.events()
    kinds = list(trail.kinds.values())
    names = sorted(set(kinds))
    by_kind = {n: kinds.count(n) for n in names}
    lines = ["records by kind: " + (", ".join(f"{n} {by_kind[n]}" for n in names) or "none")]
    for st in trail.sessions.values():
        lines.append(f"steering agent {st.short}: {st.state}" + (f" ({st.why})" if st.why
                                                                  else ""))
    keep = {"suggestion", "approval", "rejection", "denied", "apply", "check", "revert",
            "escalation", "conflict"}
    shown = [r for r, k in trail.kinds.items() if k in keep]
    for r in shown[:top]:
        lines.append(f"+{ev.created[r] - ev.t0:8.3f} s  {ev.message[r][:160]} "
                     f"[{run.events().cite(r)}]")
    if len(shown) > top:
        lines.append(f"... {len(shown) - top} more")
    if trail.unverified:
        r, why = trail.unverified[0]
        lines.append(f"not counted: {count(len(trail.unverified), 'record')} with steering "
                     f"keys that are not a steering agent's own (first: {why} "
                     f"[{run.events().cite(r)}])")
    return Section("Steering", lines, data={
        "records": trail.records, "by_kind": by_kind, "counts": trail.counts(),
        "agents": {st.session: st.state for st in trail.sessions.values()},
        "unverified": len(trail.unverified)})


def _detection(run: Run, ranking: bool) -> Any:
    """The run's detection: the run's own (cached, shared with the app and ``ask``) with
    the ranking forest, else one fitted on the baselines alone (the same incidents)."""
    from features.anomaly import SlowdownDetector
    from features.detect import detect, detection

    if ranking:
        return detection(run)

    return detect(run, SlowdownDetector(multivariate=False))


def anomalies_section(run: Run, top: int = 10, explain_top: int = 3,
                      result: Any = None) -> Section:
    """The detector's incidents (``features.detect``; ``result``: a detection of the run,
    default :func:`features.detect.detection`): slowdowns with what differs about their calls
    (``features.explain``), level shifts, speed-ups and drift with what happened around
    them, and hangs; each with the evidence of its first record."""
    from features.detect import detection
    from features.explain import DURATIONS, explain

    res = detection(run) if result is None else result
    lines: list[str] = []
    data: dict[str, Any] = {"incidents": [], "notes": list(res.notes),
                            "too_little_data": res.too_little_data, "live": res.live}
    if not res.incidents:
        judged = int(np.isin(res.flags["flag"], ("slow", "ok")).sum()) if len(res.flags) else 0
        lines.append(f"No slowdowns, level shifts, drift or hangs found among {judged} "
                     "judged actions." if judged else "No action could be judged yet.")
    for inc in res.incidents[:top]:
        cites = [run.events().cite(int(r)) for r in inc.evidence_rows[:6]]
        cite = f" [{cites[0]}]" if cites else ""
        if inc.kind == "slowdown":
            lines.append(f"{inc.headline()}, from +{inc.start - res.t0:.3f} s{cite}")
        elif inc.kind == "hung" and len(cites) > 1 and not inc.tags:
            lines.append(f"{inc.headline()} [{', '.join(cites[:3])}]")
        else:
            lines.append(f"{inc.headline()}{cite}")
        lines.extend(f"    {'around it: ' if k == 0 else '           '}{c}"
                     for k, c in enumerate(inc.cause))
        d = inc.as_dict()
        d["evidence"] = cites
        if inc.kind == "slowdown":
            e = explain(run, inc.tags, top=explain_top, symptoms=DURATIONS, label="slow",
                        how=f"incident #{inc.id}")
            expl = e.lines()
            lines.extend("    " + ln for ln in expl[1:])
            d["explanation"] = e.as_dict()
        lines.append("")
        data["incidents"].append(d)
    if len(res.incidents) > top:
        lines.append(f"... {len(res.incidents) - top} more incidents")
    lines.extend(f"note: {n}" for n in res.notes)
    while lines and not lines[-1]:
        lines.pop()
    return Section("Anomalies", lines, data=data)


def _top_actions(acts: Table, n: int = 2) -> list[str]:
    names, counts = np.unique(np.array([a or "" for a in acts["action"]], dtype=object)
                              .astype(str), return_counts=True)
    order = np.argsort(-counts)
    return [str(names[i]) for i in order[:n] if names[i]]


def _parsl_startup_section(run: Run) -> Section | None:
    """Agent start-up broken into its Parsl parts, when Parsl's monitoring database or its
    text logs are joined on."""
    if "parsl.status" not in run.events().store.key_shapes:
        return None
    from features.parsl_startup import parsl_startup, step_columns

    t = parsl_startup(run)
    if not len(t):
        return None
    lines = []
    for i in range(len(t)):
        parts = [f"{name} {fmt_s(float(t[name][i]))}" for name in step_columns(t)
                 if np.isfinite(t[name][i])]
        lines.append(f"{t['agent_id'][i]} ({t['class'][i]}, Parsl task {t['task'][i]}, "
                     f"block {t['block'][i]}): {fmt_s(float(t['total_s'][i]))} from launch "
                     f"to running: " + ", ".join(parts) + ".")
    return Section("Agent start-up on Parsl", lines, data=t)


def _slurm_section(run: Run) -> Section | None:
    """Each Slurm job joined onto the run: how long it waited in Slurm's queue, how long it
    ran and how it ended (hours in a queue are start-up the pool cannot show)."""
    if "slurm.job_id" not in run.events().store.key_shapes:
        return None
    from features.slurm import job_line, slurm_jobs

    jobs = slurm_jobs(run)
    return Section("Slurm jobs", [job_line(j) for j in jobs], data=jobs) if jobs else None
