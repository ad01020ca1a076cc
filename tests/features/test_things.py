"""Things and analyses on the real sample pools, checked against expectations computed
independently from the raw lines with the standard json module."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from features import analyses, things
from features.events import Events
from features.fmt import fmt_s
from features.run import Run
from features.table import Table
from features.things import CLEAN_END_MSGS, msg_rows


def raw_records(pool: Path) -> list[dict[str, str]]:
    out = []
    for f in sorted(pool.glob("*.jsonlog")):
        for ln in f.read_bytes().splitlines():
            try:
                d = json.loads(ln)
            except ValueError:
                continue
            d["@file"] = f.name
            out.append(d)
    return out


def open_(pool: Path) -> Run:
    run = Run(pool)
    run.load()
    return run


@pytest.mark.parametrize("name", ["thread", "redis", "exception", "agent_driver", "http",
                                  "pairs", "big_records"])
def test_actions_join_both_sides_by_tag(sample, name: str) -> None:  # type: ignore[no-untyped-def]
    pool = sample(name)
    recs = raw_records(pool)
    states: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
    for d in recs:
        tag, st = d.get("academy.action_tag"), d.get("academy.action_state")
        if tag and st and tag != "None":
            states[tag].setdefault(st, d)
    acts = open_(pool).actions()
    assert len(acts) == len(states)
    by_tag = {r["tag"]: r for r in acts.records()}
    for tag, st in states.items():
        r = by_tag[tag]
        if "execute_start" in st and "execute_success" in st:
            want = float(st["execute_success"]["created"]) - float(st["execute_start"]["created"])
            assert r["exec_s"] == pytest.approx(want, abs=1e-6)
            assert r["agent_file"] == st["execute_start"]["@file"]
        if "start" in st:
            assert r["caller_file"] == st["start"]["@file"]
            assert r["agent_id"] == st["start"]["academy.agent_id"]
            assert r["action"] == st["start"]["academy.action"]
        if "success" in st:
            assert r["status"] == "ok"
            want = float(st["success"]["created"]) - float(st["start"]["created"])
            assert r["total_s"] == pytest.approx(want, abs=1e-6)
        if "exception" in st:
            assert r["status"] == "exception"


def test_exception_action_and_error_record(sample) -> None:  # type: ignore[no-untyped-def]
    run = open_(sample("exception"))
    acts = run.actions()
    failed = acts.where(acts["status"] == "exception")
    assert len(failed) == 1
    r = failed.row(0)
    assert r["action"] == "next_item" and r["agent_class"] == "GeneratorAgent"
    ev = run.events()
    # The evidence rows are the real records of that tag on both sides.
    assert ev.record(r["row_exec"])["academy.action_state"] == "execute_start"
    assert ev.record(r["row_end"])["academy.action_state"] == "exception"
    assert ev.record(r["row_end"])["academy.action_tag"] == r["tag"]


def test_agents_identity_and_lifecycle(sample) -> None:  # type: ignore[no-untyped-def]
    pool = sample("http")
    recs = raw_records(pool)
    launched = {d["academy.agent_id"]: d for d in recs if d["msg"] == "Launched agent (%s; %s)"}
    ag = open_(pool).agents()
    assert sorted(ag["agent_id"]) == sorted(launched)
    for r in ag.records():
        assert r["uuid"][:8] == r["agent_id"][len("AgentId<"):-1]
        assert r["uuid"] in launched[r["agent_id"]]["args"]
        assert r["status"] == "shut down" and not r["crashed"]
        assert r["t_launched"] <= r["t_running"] <= r["t_shutdown"]
    assert set(ag["class"]) == {"FibonacciLauncher", "GeneratorAgent"}
    # Both agents ran in the spawned worker, not in the driver's file.
    driver = next(d["@file"] for d in recs if d["message"].startswith("workflow start"))
    assert all(f != driver for f in ag["file"])


def test_agent_identities_are_read_once_and_their_records_not_kept(
        sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An agent's uuid, name and expected shutdown are read from its records once per
    store and remembered as those values; the records themselves are not kept (16k
    agents' launch records were 46 MB of dicts): with the files gone, the next
    snapshot's agents still know them."""
    import shutil

    pool = tmp_path / "pool"
    shutil.copytree(sample("http"), pool)
    run = open_(pool)
    first = things.agents(run.events())
    assert not run.store.kept_records
    assert all(u is not None for u in first["uuid"])
    for f in pool.glob("*.jsonlog"):
        f.rename(f.with_suffix(".gone"))
    again = things.agents(Events(run.store))
    assert again["uuid"].tolist() == first["uuid"].tolist()
    assert again["name"].tolist() == first["name"].tolist()
    assert again["status"].tolist() == first["status"].tolist()


def test_processes_and_clean_ends(sample) -> None:  # type: ignore[no-untyped-def]
    pool = sample("http")
    recs = raw_records(pool)
    per_file = Counter(d["@file"] for d in recs)
    pr = open_(pool).processes()
    assert dict(zip(pr["file"], pr["records"], strict=True)) == per_file
    assert set(pr["end"]) == {"clean"}
    assert set(pr["processName"]) == {"MainProcess", "SpawnProcess-2"}


def test_a_process_is_the_pid_its_records_name_not_their_missing_one(
        tmp_path: Path, sample) -> None:  # type: ignore[no-untyped-def]
    from features.report import build

    src = next(sample("thread").glob("*.jsonlog"))
    recs = [json.loads(ln) for ln in src.read_text().splitlines()]
    pid = int(recs[0]["process"])
    for r in recs[: len(recs) * 2 // 3]:  # most records name no process
        del r["process"]
    (tmp_path / "a.jsonlog").write_text("".join(json.dumps(r) + "\n" for r in recs))
    for r in recs:
        r.pop("process", None)
    (tmp_path / "b.jsonlog").write_text("".join(json.dumps(r) + "\n" for r in recs))
    run = open_(tmp_path)
    pr = run.processes()
    assert dict(zip(pr["file"], pr["pid"].tolist(), strict=True)) == {"a.jsonlog": pid,
                                                                  "b.jsonlog": -1}
    rows = next(s for s in build(run, anomalies=False) if s.title == "Processes").table
    assert sorted(rows["pid"], key=str) == [pid, None]  # missing, not -1, for a reader


def test_messages_group_by_tag_and_direction(sample) -> None:  # type: ignore[no-untyped-def]
    pool = sample("redis")
    recs = raw_records(pool)
    want = Counter((d["academy.message_tag"], d["academy.src"], d["academy.dest"])
                   for d in recs if d.get("academy.message_tag", "None") != "None")
    ms = open_(pool).messages()
    got = Counter({(r["academy.message_tag"], r["academy.src"], r["academy.dest"]): r["count"]
                   for r in ms.records()})
    assert got == want
    # On Redis the receiver logs type 'dict': the type comes from the sender.
    assert "dict" not in set(ms["type"])
    assert {"ActionRequest", "ActionResponse"} <= set(ms["type"])


def test_generic_things_by_any_keys(sample) -> None:  # type: ignore[no-untyped-def]
    pool = sample("pairs")
    recs = raw_records(pool)
    want = Counter(d["academy.agent_id"] for d in recs
                   if d.get("academy.agent_id", "None") != "None")
    t = open_(pool).things(["academy.agent_id"])
    assert dict(zip(t["academy.agent_id"], t["count"], strict=True)) == want
    assert (t["duration_s"] >= 0).all()
    t2 = open_(pool).things(["academy.agent_id", "fib.iteration"])
    want2 = Counter((d["academy.agent_id"], int(d["fib.iteration"])) for d in recs
                    if d.get("academy.agent_id", "None") != "None" and "fib.iteration" in d)
    got2 = {(a, int(i)): c for a, i, c in zip(t2["academy.agent_id"], t2["fib.iteration"],
                                              t2["count"], strict=True)}
    assert got2 == want2


def test_where_the_time_went_adds_up_and_matches_the_sleeps(sample) -> None:  # type: ignore[no-untyped-def]
    # 16 iterations x (0.1 s in the agent + 0.1 s in the driver): naive 3.2 s.
    run = open_(sample("thread"))
    tb = run.where_time_went(expected_s=3.2)
    assert sum(tb.seconds.values()) == pytest.approx(tb.wall_s, abs=1e-6)
    assert tb.seconds["execution"] == pytest.approx(1.6, abs=0.1)
    assert tb.seconds["caller"] == pytest.approx(1.6, abs=0.1)
    assert tb.excess_s == pytest.approx(tb.wall_s - 3.2)
    for c in tb.callers:
        assert c["span_s"] == pytest.approx(c["in_calls_s"] + c["between_calls_s"], abs=1e-6)


def test_startup_dominates_when_the_agent_process_is_slow_to_start(sample) -> None:  # type: ignore[no-untyped-def]
    # On the HTTP/process sample the first call waits ~0.45 s for the spawned worker.
    run = open_(sample("http"))
    acts = run.actions()
    first = acts.row(0)
    assert first["action"] == "calc_fibs" and first["queue_s"] > 0.3
    tb = run.where_time_went(expected_s=1.0)
    # That wait is the agent's start-up, not messaging (issue 13): the agent ran only when
    # its worker process had started, and the call waited for it.
    assert tb.seconds["agent_startup"] >= first["queue_s"] * 0.9
    assert tb.seconds["queue"] + tb.seconds["reply"] < tb.seconds["agent_startup"] / 2
    (su,) = [s for s in tb.startups if s["agent_id"] == first["agent_id"]]
    assert su["process_kind"] == "a worker process" and su["calls"] == 1
    from features.report import answer

    text = answer(tb)
    assert f"agent start-up {fmt_s(su['waited_s'])}: FibonacciLauncher " \
        f"{first['agent_id']} ran {fmt_s(su['startup_s'])} after its launch" in text
    assert "in a worker process" in text


def test_concurrency_counts_overlap(sample) -> None:  # type: ignore[no-untyped-def]
    run = open_(sample("pairs"))
    times, counts = run.concurrency("executing")
    stats = analyses.concurrency_stats(times, counts)
    assert 2 <= stats["max"] <= 8
    assert counts.min() >= 0 and counts[-1] == 0
    assert analyses.sample_steps(times, counts, np.array([times[0] - 1]))[0] == 0
    t, c = analyses.concurrency(np.array([0.0, 1.0, 2.0]), np.array([3.0, 2.0, np.nan]), 5.0)
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0, 5.0] and c.tolist() == [1, 2, 2, 1, 0]


def test_group_stats_and_histogram(sample) -> None:  # type: ignore[no-untyped-def]
    run = open_(sample("exception"))
    gs = run.action_stats()
    row = next(r for r in gs.records() if r["action"] == "next_item")
    assert row["count"] == 8 and row["errors"] == 1 and row["ok"] == 7
    vals = run.actions().where(run.actions()["action"] == "next_item")["total_s"]
    assert row["p50_s"] == pytest.approx(float(np.median(vals)))
    counts, edges = analyses.histogram(vals, bins=4)
    assert counts.sum() == 8 and len(edges) == 5


def test_histogram_text_reads_distinct_edges_and_folds_equal_values() -> None:
    from features.fmt import count, fmt_edges, histogram_lines

    tight = np.array([0.50100, 0.50112, 0.50125, 0.50137])  # 0.37 ms apart at 0.5 s
    lines = histogram_lines(tight, bins=3)
    assert len(lines) == 3
    edges = [tuple(x.strip() for x in ln.split("  ")[1].split(" - ")) for ln in lines]
    assert edges[0][0] == "0.5010 s" and edges[-1][1] == "0.5014 s"
    assert all(a != b for a, b in edges) and [e[1] for e in edges[:-1]] == \
        [e[0] for e in edges[1:]]
    assert histogram_lines(np.array([0.0005]), bins=8) == ["  all 1 took 0.5 ms"]
    assert histogram_lines(np.array([2.0, 2.0, np.nan]), bins=8) == ["  all 2 took 2.00 s"]
    assert histogram_lines(np.array([np.nan]), bins=8) == []
    assert fmt_edges([0.001, 0.002, 0.05]) == ["1.0 ms", "2.0 ms", "50.0 ms"]
    assert fmt_edges([120.0, 180.0, 300.0]) == ["2.0 min", "3.0 min", "5.0 min"]
    assert fmt_edges([1.0, 1.0]) == ["1.0000000 s", "1.0000000 s"]  # gives up, no loop
    assert (count(1, "call"), count(0, "call"), count(3, "action")) == \
        ("1 call", "0 calls", "3 actions")
    from features.fmt import fmt_bytes
    assert [fmt_bytes(x) for x in (512, 1536, 10**9, 5 * 2**40)] == \
        ["512 B", "1.5 KB", "953.7 MB", "5120.0 GB"]


def test_the_answer_names_what_covers_the_excess(sample) -> None:  # type: ignore[no-untyped-def]
    import re

    from features.report import answer

    run = open_(sample("thread"))
    tb0 = run.where_time_went()
    s = tb0.seconds
    overhead = s["startup"] + s["shutdown"] + s["queue"] + s["reply"] + s["idle"]
    wall = tb0.wall_s
    small = run.where_time_went(expected_s=wall - overhead / 4)  # overhead is 4x the excess
    text = answer(small)
    assert "Of the excess of" in text and "%)" not in text.split("Of the excess")[1]
    assert "more than the excess" in text  # and no shares past 100%
    big = run.where_time_went(expected_s=(wall - overhead) / 2)
    text = answer(big)
    tail = text.split("Of the excess of")[1]
    assert "is execution, caller time and messaging beyond" in tail
    assert not re.search(r"\(\d+%\)", tail)

def test_widen_by_function_and_by_join(sample) -> None:  # type: ignore[no-untyped-def]
    run = open_(sample("http"))
    acts = run.actions().widen("slow", lambda r: (r["exec_s"] or 0) > 0.05)
    assert acts["slow"].sum() == 16
    joined = acts.join(run.agents(), on="agent_id", fields=["class", "pid"], prefix="agent_")
    assert joined["agent_class"].tolist() == acts["agent_class"].tolist()
    assert set(joined["agent_pid"][~np.isnan(joined["agent_pid"])]) == set(run.agents()["pid"])
    ev_agents = run.event_agents()
    ev = run.events()
    # Agent-side execute_* records carry no agent id: the join fills it from the action.
    states = ev.strings("academy.action_state")
    rows = [i for i in range(ev.n) if states[i] == "execute_start"]
    assert rows and all(ev_agents[i] is not None for i in rows)


def test_table_basics() -> None:
    t = Table({"a": [3, 1, 2], "b": ["x", None, "z"]}, name="t")
    assert t.sort("a")["a"].tolist() == [1, 2, 3]
    assert t.sort("b")["b"].tolist() == ["x", "z", None]
    assert t.where(t["a"] > 1).records() == [{"a": 3, "b": "x"}, {"a": 2, "b": "z"}]
    with pytest.raises(ValueError):
        Table({"a": [1], "b": [1, 2]})
    assert "a" in t.format()


def test_message_things_name_is_not_parsed(sample) -> None:  # type: ignore[no-untyped-def]
    # Lifecycle detection uses the msg template, never the formatted text: a user record
    # whose message merely looks like one must not create an agent.
    rows = things.msg_rows(open_(sample("thread")).events(), "Launched agent (%s; %s)")
    assert len(rows) == 2


def _same_tables(a: Table, b: Table) -> None:
    assert a.columns == b.columns
    for c in a.columns:
        x, y = a[c], b[c]
        if x.dtype.kind == "f":
            assert np.array_equal(x, y, equal_nan=True), c
        else:
            assert x.tolist() == y.tolist(), c


@pytest.mark.parametrize("name", ["pairs", "fork", "http", "exception"])
def test_action_join_folded_forward_equals_a_fresh_join(sample, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                        name: str) -> None:
    """A pool that arrives in seven uneven goes, each file cut at its own points (one
    side of a call often lands a poll before the other): after every refresh, the join
    the run keeps up to date equals a join of the same snapshot from scratch."""
    src = sample(name)
    dst = tmp_path / src.name
    dst.mkdir()
    parts = {f.name: f.read_bytes().splitlines(keepends=True) for f in src.glob("*.jsonlog")}
    run = Run(dst)
    steps = 7
    for k in range(1, steps + 1):
        for j, (fname, ls) in enumerate(sorted(parts.items())):
            # Each file its own cut points, so the two sides of a call drift apart.
            shift = (j % 3) * 0.3
            lo, hi = (int(len(ls) * (min(1.0, (i + shift) / steps) if i < steps else 1.0))
                      for i in (k - 1, k))
            with open(dst / fname, "ab") as fh:
                fh.writelines(ls[lo:hi])
        run.refresh()
        _same_tables(run.actions(), things.actions(run.events(), live=run.live,
                                                   agents_table=run.agents()))
        # Lazy columns and the rows that carry a key, extended a poll at a time, equal
        # a fresh read of the same lines.
        # (Row numbers follow the order lines were read in: compared by file and line.)
        ev, fresh = run.events(), open_(dst).events()

        def at(e: Events, rows: np.ndarray, vals: list[object]) -> dict[object, object]:
            return {(e.file_names[e.file[r]], int(e.line[r])): v
                    for r, v in zip(rows.tolist(), vals, strict=True)}

        for key in ("academy.result", "academy.action_args", "academy.message_tag",
                    "fib.iteration", "exc_info"):
            mine, theirs = run.store.rows_with_key(key, ev.n), \
                fresh.store.rows_with_key(key, fresh.n)
            assert len(mine) == len(theirs) and (np.diff(mine) > 0).all(), (k, key)
            if key in ev.store.key_shapes:
                assert at(ev, mine, ev.column(key)[mine].tolist()) == \
                    at(fresh, theirs, fresh.column(key)[theirs].tolist()), (k, key)
    assert len(run.actions()) == len(things.actions(open_(src).events()))


def test_action_join_takes_the_earliest_record_even_when_it_arrives_later(
        tmp_path: Path) -> None:
    """Two records of one call in the same state, the earlier one in a file read a poll
    later (clocks of two processes, or a resent record): the join keeps the earliest, as
    a join of everything at once does; records with no time lose to timed ones."""
    pool = tmp_path / "pool"
    pool.mkdir()

    def rec(state: str, t: str, **kw: str) -> bytes:
        d = {"created": t, "academy.action_tag": "T1", "academy.action": "step",
             "academy.action_state": state, "msg": "x", **kw}
        return (json.dumps(d) + "\n").encode()

    (pool / "a.jsonlog").write_bytes(rec("start", "10.0") + rec("execute_start", "11.0")
                                     + rec("success", "None"))
    run = Run(pool)
    run.load()
    first = run.actions()
    assert first["t_exec_start"].tolist() == [11.0] and np.isnan(first["t_end"][0])
    (pool / "b.jsonlog").write_bytes(rec("execute_start", "10.5") + rec("success", "13.0")
                                     + rec("execute_start", "10.5"))
    run.refresh()
    got = run.actions()
    _same_tables(got, things.actions(run.events(), live=run.live, agents_table=run.agents()))
    assert got["t_exec_start"].tolist() == [10.5] and got["t_end"].tolist() == [13.0]
    ev = run.events()
    # The first of the two equal-time records (the lower row) is the evidence.
    b_rows = np.flatnonzero(ev.file == ev.file_names.index("b.jsonlog"))
    assert got["row_exec"][0] == b_rows[0]


def test_csv_keeps_formula_like_text_as_text_and_numbers_as_numbers(tmp_path: Path) -> None:
    import csv
    import io
    import sqlite3

    from features.export import write_csv, write_jsonl, write_sqlite

    vals = ["=== phase 2 ===", "+ worker", "-- done", "@sum(A1:A9)", "-3", "-1.5e3", "plain",
            "\tx"]
    t = Table({"message": np.array(vals, dtype=object), "n": np.arange(len(vals))},
              name="events")
    buf = io.StringIO()
    write_csv(t, buf)
    cells = [row[0] for row in csv.reader(io.StringIO(buf.getvalue()))][1:]
    assert cells == ["'=== phase 2 ===", "'+ worker", "'-- done", "'@sum(A1:A9)", "-3",
                     "-1.5e3", "plain", "'\tx"]
    out = io.BytesIO()
    write_jsonl(t.records(), out)  # JSON Lines and SQLite keep the values as they are
    assert [json.loads(x)["message"] for x in out.getvalue().splitlines()] == vals
    db = tmp_path / "t.db"
    write_sqlite([t], str(db))
    assert [r[0] for r in sqlite3.connect(db).execute("select message from events")] == vals


def _processes_reference(ev: Events, live_files: Sequence[bool] | None = None) -> Table:
    """The process table computed from every record at once, as features.things did before
    the folded index (kept here as the index's oracle). One row per pool file.

    ``end`` is ``clean`` when the file holds a closing record (``Closed manager``,
    ``Shutdown agent`` or ``Closed exchange client``) with no ERROR record after it,
    else ``live`` when the file was written recently (``live_files``), else
    ``abrupt`` (the file just stops: a crash, a kill, or a process that never closed);
    ``source`` for a file of another source's events (every record has a ``source`` key)."""
    nfiles = len(ev.file_names)
    f = ev.file
    counts = np.bincount(f, minlength=nfiles)
    created = ev.created
    first = np.full(nfiles, np.nan)
    last = np.full(nfiles, np.nan)
    ok = np.isfinite(created)
    if ok.any():
        np.fmin.at(first, f[ok], created[ok])
        np.fmax.at(last, f[ok], created[ok])
    lv = ev.ints["levelno"]
    err = np.bincount(f[lv >= 40], minlength=nfiles)
    warn = np.bincount(f[(lv >= 30) & (lv < 40)], minlength=nfiles)
    close_rows = msg_rows(ev, *CLEAN_END_MSGS)
    last_close = np.full(nfiles, np.nan)
    if len(close_rows):
        np.fmax.at(last_close, f[close_rows], created[close_rows])
    err_rows = np.flatnonzero(lv >= 40)
    last_err = np.full(nfiles, np.nan)
    if len(err_rows):
        np.fmax.at(last_err, f[err_rows], created[err_rows])
    pid = ev.ints["process"]
    pids: list[str] = []
    main_pid = np.full(nfiles, -1, dtype=np.int64)
    first_row = np.full(nfiles, -1, dtype=np.int64)
    # Each file's rows from one stable sort (ascending within a file): a mask per file
    # was files x records comparisons (828 files over 1M records: 0.3 s).
    by_file = np.split(np.argsort(f, kind="stable"), np.cumsum(counts)[:-1]) \
        if nfiles else []
    for i in range(nfiles):
        rows = by_file[i]
        if len(rows):
            u, c = np.unique(pid[rows], return_counts=True)
            main_pid[i] = u[np.argmax(c)]
            pids.append(",".join(str(x) for x in u if x >= 0))
            first_row[i] = rows[np.argmin(created[rows])] if ok[rows].any() else rows[0]
        else:
            pids.append("")
    pnames = np.empty(nfiles, dtype=object)
    good = [int(r) for r in first_row if r >= 0]
    recs = dict(zip(good, ev.records(good), strict=True)) if good else {}
    for i, r in enumerate(first_row):
        rec = recs.get(int(r))
        if rec is not None:
            pnames[i] = rec.get("processName")
    end = np.empty(nfiles, dtype=object)
    clean = ~np.isnan(last_close) & ~(last_err > last_close)
    end[:] = "abrupt"
    if live_files is not None:
        end[np.asarray(live_files, dtype=bool)[:nfiles]] = "live"
    end[clean] = "clean"
    end[counts == 0] = "empty"
    # A file every record of which names its ``source`` (Parsl's database, a process
    # sampler, Slurm: features.sources) is not a process of the run: it has no closing
    # record to miss.
    src_rows = ev.store.rows_with_key("source", ev.n)
    if len(src_rows):
        from_source = np.bincount(f[src_rows], minlength=nfiles)
        end[(from_source == counts) & (counts > 0)] = "source"
    bad = np.zeros(nfiles, dtype=np.int64)
    for b in ev.store.bad:
        if b.file < nfiles:
            bad[b.file] += 1
    return Table({
        "file": np.array(ev.file_names, dtype=object),
        "pid": main_pid,
        "pids": np.array(pids, dtype=object),
        "processName": pnames,
        "records": counts.astype(np.int64),
        "errors": err.astype(np.int64),
        "warnings": warn.astype(np.int64),
        "bad_lines": bad,
        "t_first": first,
        "t_last": last,
        "duration_s": last - first,
        "end": end,
    }, name="processes")


def test_process_index_folds_to_the_table_computed_from_scratch(
        sample: Callable[[str], Path], tmp_path: Path) -> None:
    """The process table kept by folding what arrived (things.ProcessIndex, as a live run
    or a watcher polls) equals processes() over the whole snapshot at every step: files
    growing a few hundred lines at a time, a file appearing late, a line without a time,
    an ERROR after the closing record."""
    from features.events import Events
    from features.reader import PoolReader
    from features.things import ProcessIndex

    src = sorted(sample("exception").glob("*.jsonlog")) + \
        sorted(sample("pairs").glob("*.jsonlog"))[:2]
    whole = [p.read_bytes().splitlines(keepends=True) for p in src]
    whole[0].insert(3, b'{"msg": "no time here", "levelno": "20", "process": "7"}\n')
    whole[1].append(b'{"created": "1795839999.5", "levelno": "40", "msg": "late %s", '
                    b'"args": "[1]", "message": "late 1", "process": "1"}\n')
    pool = tmp_path / "pool"
    pool.mkdir()
    reader = PoolReader(str(pool))
    index = ProcessIndex()
    step = 0
    while True:
        step += 1
        grew = False
        for i, (p, lines) in enumerate(zip(src, whole, strict=True)):
            if i == len(src) - 1 and step < 3:
                continue  # a process that starts late
            upto = min(len(lines), step * 150)
            out = pool / p.name
            have = out.read_bytes().count(b"\n") if out.exists() else 0
            if upto > have:
                with open(out, "ab") as fh:
                    fh.writelines(lines[have:upto])
                grew = True
        reader.poll()
        ev = Events(reader.store)
        want = _processes_reference(ev, [False] * len(ev.file_names))
        got = index.table(ev, [False] * len(ev.file_names))
        assert got.columns == want.columns
        for c in want.columns:
            a, b = got[c].tolist(), want[c].tolist()
            assert [repr(x) for x in a] == [repr(x) for x in b], (step, c)
        if not grew:
            break
    assert step > 5 and set(got["end"].tolist()) >= {"clean"}


def test_kept_records_are_the_files_records_read_once(
        sample: Callable[[str], Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Events.records(keep=True), which the agents table uses on every poll, gives the
    records records() reads, and reads each once: with the files moved away, the kept
    ones still come back (records() finds none). Over its bound the store forgets them
    all, and the ones asked for are read again."""
    import shutil

    from features import events as E

    pool = tmp_path / sample("pairs").name
    shutil.copytree(sample("pairs"), pool)
    run = Run(pool, cache=False)
    run.load()
    ev = run.events()
    rows = [int(r) for r in things.msg_rows(ev, things.MSG_LAUNCHED)][:12]
    assert len(rows) == 12
    fresh = ev.records(rows)
    assert ev.records(rows, keep=True) == fresh
    assert set(run.store.kept_records) == set(rows)
    agents_before = run.agents().records()
    gone = tmp_path / "gone"
    shutil.move(str(pool), str(gone))
    assert ev.records(rows) == [None] * 12  # the files are not there
    assert ev.records(rows, keep=True) == fresh
    run._cache.clear()
    assert [a["class"] for a in run.agents().records()] == \
        [a["class"] for a in agents_before]
    shutil.move(str(gone), str(pool))
    monkeypatch.setattr(E, "KEPT_RECORDS", 4)
    assert ev.records(rows[:3], keep=True) == fresh[:3]
    assert set(run.store.kept_records) == set(rows[:3])


def test_template_rows_follow_a_growing_store_and_older_snapshots(tmp_path: Path) -> None:
    """msg_rows scans only what a store added since it last looked (a live run's agents
    table asked it on every poll); every answer equals a scan of the raw lines."""
    from features.reader import PoolReader
    from tests.features.test_reader import line

    pool = tmp_path / "p"
    pool.mkdir()
    f = pool / "a.jsonlog"
    f.write_bytes(b"".join(line(i, msg="first %s" if i % 3 else "other %s")
                           for i in range(30)))
    reader = PoolReader(str(pool))
    reader.poll()
    old = Events(reader.store)

    def raw(upto: int, *templates: str) -> list[int]:
        """Line numbers (from 1) of the raw lines with one of ``templates``."""
        lines = f.read_bytes().splitlines()[:upto]
        return [i + 1 for i, ln in enumerate(lines) if json.loads(ln)["msg"] in templates]

    def got(ev: Events, *templates: str) -> list[int]:
        return sorted(int(ev.line[r]) for r in msg_rows(ev, *templates))

    assert got(old, "first %s") == raw(30, "first %s")
    with f.open("ab") as fh:  # more of it, and a template seen for the first time
        fh.write(b"".join(line(i, msg="first %s" if i % 2 else "late %s")
                          for i in range(30, 50)))
    reader.poll()
    new = Events(reader.store)
    assert got(new, "first %s") == raw(50, "first %s")
    assert got(new, "first %s", "late %s") == raw(50, "first %s", "late %s")
    assert got(old, "first %s") == raw(30, "first %s")  # an older snapshot: as it was
    assert got(new, "late %s") == raw(50, "late %s") and got(old, "late %s") == []
    with pytest.raises(ValueError):  # shared: nobody may change it in place
        msg_rows(new, "first %s")[0] = 0


def test_event_agents_from_the_loop_owner_as_codes(tmp_path: Path) -> None:
    """Records with no agent id and no action take their loop's owner (``academy.self``),
    a nested one included; the app's coded form decodes to the same agents."""
    base = {"name": "academy.agent", "msg": "m", "levelno": "20", "process": "1",
            "message": "m", "created": "1700000000.0"}
    recs = [
        {**base, "academy.agent_id": "AgentId<aaaaaaaa>"},
        {**base, "academy.self": "AgentId<bbbbbbbb>"},
        {**base, "academy.self": {"id": "AgentId<cccccccc>"}},
        {**base},
        {**base, "academy.self": "AgentId<bbbbbbbb>"},
    ]
    (tmp_path / "a.jsonlog").write_text("".join(json.dumps(r) + "\n" for r in recs))
    run = Run(tmp_path, cache=False)
    run.load()
    got = run.event_agents()
    nested = [v for v in run.events().column("academy.self").tolist()
              if v is not None and "cccccccc" in str(v)]
    want = ["AgentId<aaaaaaaa>", "AgentId<bbbbbbbb>", *nested, None, "AgentId<bbbbbbbb>"]
    assert sorted(map(repr, got.tolist())) == sorted(map(repr, want))
    codes, table = run.event_agent_codes()
    assert table[-1] is None and table[codes].tolist() == got.tolist()
    assert codes.dtype == np.int32 and len(set(codes.tolist())) == 4  # bbbbbbbb once


def test_event_agents_of_actions_from_the_join_and_for_some_rows(tmp_path: Path) -> None:
    """An event with no agent id of its own takes its action's target as the actions
    table names it (the start record's agent id, else the destination it was sent to,
    a destination no record names as an agent included); a tag with no state is no
    action. ``event_agents_at`` gives the same agents for any rows, repeated or out of
    order, without attributing the whole run first."""
    base = {"name": "academy.handle", "msg": "m", "levelno": "20", "process": "1",
            "message": "m"}

    def rec(t: float, **kv: object) -> dict:
        return {**base, "created": str(1700000000.0 + t), **kv}

    tag = "00000000-0000-4000-8000-00000000000{}".format
    recs = [
        rec(0, **{"academy.action_tag": tag(1), "academy.action_state": "start",
                  "academy.agent_id": "AgentId<aaaaaaaa>", "academy.action": "f"}),
        rec(1, **{"academy.action_tag": tag(1), "academy.action_state": "execute_start"}),
        rec(2, **{"academy.action_tag": tag(2), "academy.action_state": "sending",
                  "academy.dest": "AgentId<dddddddd>", "academy.action": "g"}),
        rec(3, **{"academy.action_tag": tag(2), "academy.action_state": "execute_start"}),
        rec(4, **{"academy.action_tag": tag(3)}),  # no state: not an action
        rec(5, **{"academy.action_tag": tag(4), "academy.action_state": "start"}),
        rec(6, **{"academy.action_tag": tag(3), "academy.self": "AgentId<bbbbbbbb>"}),
        rec(7, **{"academy.action_tag": tag(2), "academy.action_state": "success"}),
        rec(8, **{"academy.agent_id": "AgentId<eeeeeeee>"}),
    ]
    (tmp_path / "a.jsonlog").write_text("".join(json.dumps(r) + "\n" for r in recs))
    run = Run(tmp_path, cache=False)
    run.load()
    got = [None if a is None else str(a) for a in run.event_agents().tolist()]
    assert [g and g[8:16] for g in got] == ["aaaaaaaa", "aaaaaaaa", "dddddddd", "dddddddd",
                                            None, None, "bbbbbbbb", "dddddddd", "eeeeeeee"]
    ev = run.events()
    by_tag = dict(zip(run.actions()["tag"].tolist(), run.actions()["agent_id"].tolist(),
                      strict=True))
    tags = ev.column("academy.action_tag").tolist()
    aids = ev.column("academy.agent_id").tolist()
    for r, (t, a) in enumerate(zip(tags, aids, strict=True)):
        if a is None and t in by_tag and by_tag[t] is not None:
            assert got[r] == str(by_tag[t])
    want = run.event_agents()
    for rows in ([8, 0, 8, 3], [4, 6], [5], list(range(9))[::-1], []):
        fresh = Run(tmp_path, cache=False)
        fresh.load()
        assert fresh.event_agents_at(np.array(rows, dtype=np.int64)).tolist() == \
            want[rows].tolist()
        assert "event_agent_codes" not in fresh._cache  # the whole run not attributed
        assert run.event_agents_at(np.array(rows, dtype=np.int64)).tolist() == \
            want[rows].tolist()


def test_values_of_a_key_read_from_the_files_for_some_rows(tmp_path: Path) -> None:
    """``values_at`` of a key kept in the files reads only the rows asked for and gives
    what the whole column gives: repeated rows, rows without the key, a nested value, a
    column read earlier and a run that grew since."""
    from features.reader import PoolReader
    from features.typed import typed

    f = tmp_path / "a.jsonlog"

    def write(lo: int, hi: int) -> None:
        with f.open("a") as fh:
            for i in range(lo, hi):
                r = {"name": "x", "msg": "m", "message": "m", "created": 1700000000.0 + i}
                if i % 3:
                    r["academy.thing"] = {"n": i} if i % 7 == 0 else str(i)
                fh.write(json.dumps(r) + "\n")

    write(0, 200)
    reader = PoolReader(str(tmp_path))
    reader.poll()
    ev = Events(reader.store)
    rows = np.array([5, 5, 0, 199, 3, 14, 100], dtype=np.int64)
    assert ev.values_at("academy.thing", rows).tolist() == \
        Events(reader.store).column("academy.thing")[rows].tolist()
    write(200, 400)
    reader.poll()
    new = Events(reader.store)
    more = np.array([398, 5, 249, 14, 14, 3, 259], dtype=np.int64)
    got = new.values_at("academy.thing", more).tolist()  # the first 200 cached above
    assert got == new.column("academy.thing")[more].tolist()
    assert got[:3] == [398, 5, None] and got[-1] == typed({"n": 259})  # nested: its text


def test_group_stats_groups_as_a_row_at_a_time_does() -> None:
    """Groups found at C level are the groups of each row's key tuple, in order of first
    appearance, with every statistic of their rows: checked against grouping a row at a
    time on calls of three classes and actions, missing names among them."""
    from features.analyses import group_stats
    from features.table import Table

    rng = np.random.default_rng(5)
    n = 3000
    cls = np.array([rng.choice(["A", "B", None]) for _ in range(n)], dtype=object)
    act = np.array([rng.choice(["x", "y", "z", None]) for _ in range(n)], dtype=object)
    total = rng.exponential(1.0, n)
    total[rng.random(n) < 0.05] = np.nan
    t = Table({"agent_class": cls, "action": act,
               "status": np.array([rng.choice(["ok", "exception", "in flight"])
                                   for _ in range(n)], dtype=object),
               "total_s": total, "queue_s": total / 3, "exec_s": total / 2,
               "reply_s": total / 6})
    got = group_stats(t).records()
    groups: dict[tuple[object, ...], list[int]] = {}
    for i in range(n):
        groups.setdefault((cls[i], act[i]), []).append(i)
    assert [(r["agent_class"], r["action"]) for r in got] == \
        sorted(groups, key=lambda k: -float(np.nansum(total[groups[k]])))
    for r in got:
        idx = groups[(r["agent_class"], r["action"])]
        assert r["count"] == len(idx)
        assert r["ok"] == sum(t["status"][i] == "ok" for i in idx)
        assert r["p50_s"] == np.nanpercentile(total[idx], 50)
        assert r["sum_s"] == float(np.nansum(total[idx]))
    assert group_stats(t.take(np.arange(0))).records() == []
