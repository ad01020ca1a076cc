"""The command line, run as a user runs it: a subprocess, exit codes, stdout, stderr."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, home: Path | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if home is not None:
        env["ACADEMY_HOME"] = str(home)
    res = subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=120)
    assert "Traceback" not in res.stderr, res.stderr
    if check:
        assert res.returncode == 0, res.stderr
    return res


def test_runs_lists_every_sample_newest_first_and_caches(samples_home: Path) -> None:
    out = cli("runs", "--format", "json", home=samples_home)
    rows = json.loads(out.stdout)
    assert len(rows) == 8
    starts = [r["start"] for r in rows]
    assert starts == sorted(starts, reverse=True)
    by = {r["pool"][:8]: r for r in rows}
    assert by["2ecb7d3e"]["status"] == "failed" and "raised" in by["2ecb7d3e"]["rule"]
    assert by["08a98d9a"]["status"] == "finished"
    assert by["f56a2ad5"]["agents"] == 16 and by["f56a2ad5"]["files"] == 9
    assert by["ab995d49"]["bad_lines"] == 10
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "academy-tui"
    assert list(cache.glob("runs-*.json"))
    again = json.loads(cli("runs", "--format", "json", home=samples_home).stdout)
    assert again == rows
    # Nothing was written into the pool directories.
    assert not list((samples_home / "logs").rglob("*.json"))
    table = cli("runs", home=samples_home).stdout
    assert "2ecb7d3e-da4b-40f9-9d11-3c78d4b53842" in table and "failed" in table


def test_report_text_markdown_json(samples_home: Path) -> None:
    text = cli("report", "08a9", "--expect", "3.2s", home=samples_home).stdout
    assert "Where the time went" in text and "against 3.20 s expected" in text
    # Into a pipe, every value whole: a cut one would be lost for good.
    assert "from the call until the agent was running\n" in text and "…" not in text
    md = cli("report", "08a9", "--format", "markdown", home=samples_home).stdout
    assert "## Where the time went" in md and "| category |" in md
    # Ids like UserId<b3edba02> would read as HTML tags and vanish once rendered: they
    # are code spans, and the raw text has no entities to read through.
    assert "| `UserId<" in md and "| `AgentId<" in md and "&lt;" not in md
    prose = re.sub(r"`[^`\n]*`", "", re.sub(r"(?ms)^```text\n.*?^```$", "", md))
    assert "<" not in prose and "```text\npool      " in md
    js = json.loads(cli("report", "08a9", "--format", "json", "--expect", "3200ms",
                        home=samples_home).stdout)
    tw = js["where_the_time_went"]["data"]
    assert abs(sum(tw["seconds"].values()) - tw["wall_s"]) < 1e-6
    assert tw["expected_s"] == pytest.approx(3.2)


def test_events_jsonl_is_time_ordered_and_complete(samples_home: Path, sample) -> None:  # type: ignore[no-untyped-def]
    pool = sample("http")
    out = cli("events", str(pool), "--format", "jsonl").stdout.splitlines()
    n = sum(len(p.read_bytes().splitlines()) for p in pool.glob("*.jsonlog"))
    assert len(out) == n
    recs = [json.loads(x) for x in out]
    times = [r["created"] for r in recs]
    assert times == sorted(times)
    assert isinstance(recs[0]["levelno"], int)  # typed, not the raw strings
    raw = [json.loads(x) for x in cli("events", str(pool), "--format", "jsonl", "--raw",
                                      "--limit", "3").stdout.splitlines()]
    assert len(raw) == 3 and isinstance(raw[0]["levelno"], str) and "@line" in raw[0]
    table = cli("events", str(pool), "--limit", "5", "--keys", "fib.iteration").stdout
    assert len(table.splitlines()) == 6 and "fib.iteration" in table.splitlines()[0]


def test_events_where_filters(samples_home: Path, sample) -> None:  # type: ignore[no-untyped-def]
    pool = sample("exception")
    out = cli("events", str(pool), "--where", "levelno>=40 or academy.action_state~exception",
              "--format", "jsonl").stdout.splitlines()
    recs = [json.loads(x) for x in out]
    assert len(recs) == 3
    assert {r.get("academy.action_state") for r in recs} == {"execute_exception", "exception",
                                                              None}


def test_a_mistyped_key_is_named_on_stderr_and_stdout_stays_clean(sample) -> None:  # type: ignore[no-untyped-def]
    pool = str(sample("exception"))
    res = cli("events", pool, "--where", "fib.iteraton>3", "--format", "jsonl")
    assert res.stdout == ""
    assert "note: no event has key 'fib.iteraton' (did you mean fib.iteration" in res.stderr
    assert "no event matches 'fib.iteraton>3' (of 209)" in res.stderr
    res = cli("events", pool, "--where", "fib.iteration>3", "--format", "jsonl")
    assert res.stdout and "note:" not in res.stderr and "no event matches" not in res.stderr
    res = cli("export", pool, "--what", "actions", "--format", "csv", "--where", "levelno>=50")
    assert res.stdout.count("\n") == 1 and "no event matches 'levelno>=50'" in res.stderr


def test_export_csv_jsonl_sqlite(tmp_path: Path, sample) -> None:  # type: ignore[no-untyped-def]
    pool = sample("http")
    csv_path = tmp_path / "actions.csv"
    res = cli("export", str(pool), "--what", "actions", "--format", "csv", "-o", str(csv_path))
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("tag,action,status") and len(lines) == 19
    ncols = len(lines[0].split(","))
    assert res.stderr == f"wrote 18 actions (CSV, {ncols} columns) to {csv_path}\n"
    # A relative -o lands in the current directory: the path written says which.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rel = subprocess.run([sys.executable, "-m", "tui.cli", "export", str(pool), "-o",
                          "here.jsonl", "--format", "jsonl"], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=120)
    assert rel.returncode == 0 and (tmp_path / "here.jsonl").exists()
    assert rel.stderr.startswith("wrote 316 events (JSONL, ")
    assert rel.stderr.endswith(f" columns) to {tmp_path.resolve() / 'here.jsonl'}\n")
    jl = cli("export", str(pool), "--what", "agents", "--format", "jsonl").stdout.splitlines()
    assert {json.loads(x)["class"] for x in jl} == {"FibonacciLauncher", "GeneratorAgent"}
    db = tmp_path / "run.sqlite"
    err = cli("export", str(pool), "--format", "sqlite", "-o", str(db)).stderr
    assert err.startswith(f"wrote {db}: SQLite, a table per kind, rows events 316, actions 18")
    con = sqlite3.connect(db)
    tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
    assert {"events", "actions", "agents", "processes", "messages", "loops",
            "bad_lines"} <= tables
    assert con.execute("select count(*) from events").fetchone()[0] == 316
    assert con.execute("select count(*) from actions where status='ok'").fetchone()[0] == 18
    ev_csv = cli("export", str(pool), "--where", "has:fib.iteration").stdout.splitlines()
    assert "fib.iteration" in ev_csv[0].split(",")


@pytest.mark.parametrize("args,needle", [
    (("report", "nope"), "no run matches 'nope'"),
    (("report", "/etc/hostname"), "is not a directory"),
    (("report", "/no/such/dir"), "no such directory"),
    (("report", "latest", "--expect", "soon"), "cannot read duration"),
    (("events", "08a9", "--where", "levelno>="), "academy-tui: error:"),
    (("events", "08a9", "--where", "message~\"(\""), "academy-tui: error:"),
    (("export", "08a9", "--format", "sqlite"), "needs -o FILE"),
    (("export", "08a9", "--what", "bogus"), "cannot export bogus"),
])
def test_bad_input_is_one_line_and_nonzero(samples_home: Path, args: tuple[str, ...],
                                           needle: str) -> None:
    res = cli(*args, home=samples_home, check=False)
    assert res.returncode != 0
    assert needle in res.stderr
    assert res.stderr.count("\n") <= 3


def test_ambiguous_prefix_lists_candidates(tmp_path: Path, sample) -> None:  # type: ignore[no-untyped-def]
    logs = tmp_path / "logs"
    for name in ("abcd0001-0000-4000-8000-000000000000", "abcd0002-0000-4000-8000-000000000000"):
        shutil.copytree(sample("thread"), logs / name)
    res = cli("report", "abcd", home=tmp_path, check=False)
    assert res.returncode == 2
    assert "ambiguous" in res.stderr and "abcd0001" in res.stderr and "abcd0002" in res.stderr
    assert cli("report", "ABCD0001", home=tmp_path).returncode == 0  # uuids ignore case


def test_latest_is_the_run_written_last_and_among_copies_the_one_started_last(
        tmp_path: Path, sample) -> None:  # type: ignore[no-untyped-def]
    from features.catalog import catalog
    from features.pools import resolve

    logs = tmp_path / "logs"
    names = {"thread": "aaaa0001-0000-4000-8000-000000000000",
             "http": "aaaa0002-0000-4000-8000-000000000000",
             "fork": "aaaa0003-0000-4000-8000-000000000000"}
    for scenario, name in names.items():
        shutil.copytree(sample(scenario), logs / name)
    # Copied pools: every file written at nearly the same moment, in copy order.
    t = 1_800_000_000.0
    for i, pool in enumerate(sorted(logs.iterdir(), key=lambda p: p.name, reverse=True)):
        for f in pool.iterdir():
            os.utime(f, (t + i * 0.5, t + i * 0.5))
    first = catalog(tmp_path)[0].pool
    assert resolve("latest", tmp_path).name == first  # the catalog's newest row
    out = cli("runs", "--format", "json", home=tmp_path)
    assert json.loads(out.stdout)[0]["pool"] == first
    assert str(resolve("latest", tmp_path)) in cli("report", "latest", home=tmp_path).stdout
    # A run written to well after the others is the latest, whenever it started.
    other = next(p for p in logs.iterdir() if p.name != first)
    for f in other.iterdir():
        os.utime(f, (t + 60, t + 60))
    assert resolve("latest", tmp_path).name == other.name


def test_empty_home_and_empty_pool(tmp_path: Path) -> None:
    res = cli("report", "latest", home=tmp_path, check=False)
    assert res.returncode == 2 and "no runs under" in res.stderr
    assert res.stderr.count("\n") == 1 and "'academy-tui demo' makes one" in res.stderr
    # A first contact: where it looked and why there, where runs come from, how to make one.
    out = cli("runs", home=tmp_path).stdout
    assert out.startswith(f"0 runs under {tmp_path}/logs ($ACADEMY_HOME).\n")
    assert "JSONPoolLogging" in out and "academy-tui demo" in out and "--home DIR" in out
    assert f"0 runs under {tmp_path}/logs (--home)." in cli("--home", str(tmp_path),
                                                            "runs").stdout
    pool = tmp_path / "logs" / "00000000-0000-4000-8000-000000000000"
    pool.mkdir(parents=True)
    out = cli("report", str(pool))
    assert "holds no records" in out.stdout


def test_bad_lines_are_reported_on_stderr(sample) -> None:  # type: ignore[no-untyped-def]
    res = cli("report", str(sample("fork")))
    assert "10 bad lines skipped (10 records recovered from them)" in res.stderr


def test_broken_pipe_is_quiet(sample) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "tui.cli", "events", str(sample("pairs"))],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(timeout=60)
    assert "Traceback" not in err


def test_follow_stops_when_every_process_closed(tmp_path: Path, sample) -> None:  # type: ignore[no-untyped-def]
    """``events -f`` on a run replayed in two halves (a real run's file, written as it
    was): it keeps following while the process is open and stops, saying why, once the
    process wrote its closing records."""
    src = next(sample("thread").glob("*.jsonlog"))
    lines = src.read_bytes().splitlines(keepends=True)
    head = lines[:min(200, next(i for i, ln in enumerate(lines) if b"Closed manager" in ln))]
    pool = tmp_path / "logs" / sample("thread").name
    pool.mkdir(parents=True)
    dst = pool / src.name
    dst.write_bytes(b"".join(head))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "tui.cli", "events", str(pool), "-f"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         cwd=ROOT)
    try:
        assert p.stdout is not None and p.stderr is not None
        shown = [p.stdout.readline() for _ in range(1 + len(head))]  # header and rows
        assert shown[-1].rstrip().endswith(json.loads(head[-1])["message"][-20:])
        assert p.poll() is None  # the process has not closed: still following
        with dst.open("ab") as f:
            f.write(b"".join(lines[len(head):]))
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert "Closed manager" in out and len(shown) + len(out.splitlines()) == 1 + len(lines)
    assert err.strip().splitlines()[-1] == ("academy-tui: every process closed cleanly "
                                            "(3 'Closed manager' records): stopped following")


def test_events_table_never_cuts_a_level_and_marks_cut_values(tmp_path: Path, sample) -> None:  # type: ignore[no-untyped-def]
    src = next(sample("thread").glob("*.jsonlog"))
    recs = [json.loads(ln) for ln in src.read_text().splitlines()]
    recs[5].update(levelname="WARNING", levelno="30")
    recs[6].update(levelname="CRITICAL", levelno="50")
    pool = tmp_path / "logs" / sample("thread").name
    pool.mkdir(parents=True)
    (pool / src.name).write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = cli("events", str(pool), "--limit", "8").stdout.splitlines()
    assert " level    logger " in out[0]
    assert " WARNING  " in out[6] and " CRITICAL " in out[7] and "WARNI " not in "\n".join(out)
    # academy.logging.configs.jsonpool: 33 characters in 24 columns, cut visibly.
    assert " academy.logging.configs… " in out[1]


def test_text_diff_formats_seconds_and_large_ratios(samples_home: Path) -> None:
    text = cli("diff", "08a9", "5cb6", home=samples_home).stdout
    # calc_fibs took 3.0 ms in A and 0.450 s in B: 149x, not +14808% or 0.00301838.
    assert "p50 0.450 s against 3.0 ms (+0.447 s, 149x)" in text
    assert not re.search(r"\d{4,}%|\d\.\d{5,}", text), text
    table = text.split("Per action and phase\n", 1)[1].splitlines()
    calc = next(ln.split() for ln in table if "calc_fibs  total" in ln)
    assert calc[6:12] == ["3.0", "ms", "0.450", "s", "+0.447", "s"] and calc[12] == "(149x)"
    md = cli("diff", "08a9", "5cb6", "--format", "markdown", home=samples_home).stdout
    assert "| +0.447 s (149x) |" in md
    js = json.loads(cli("diff", "08a9", "5cb6", "--format", "json", home=samples_home).stdout)
    row = next(r for r in js["rows"] if r["action"] == "calc_fibs" and r["phase"] == "total")
    assert row["p50_a"] == pytest.approx(0.00301838, rel=1e-4)  # JSON keeps the numbers


def test_events_table_added_columns_line_up_and_are_not_shown_twice(
        tmp_path: Path, sample) -> None:  # type: ignore[no-untyped-def]
    src = next(sample("thread").glob("*.jsonlog"))
    recs = [json.loads(ln) for ln in src.read_text().splitlines()][:6]
    for i, r in enumerate(recs):
        r["job.tag"] = "x" * (i + 1)  # widths 1..6: the column is as wide as its name
    recs[2]["job.tag"] = "y" * 60  # beyond the cap: cut visibly
    del recs[3]["process"]  # another writer's record: no process
    pool = tmp_path / "logs" / sample("thread").name
    pool.mkdir(parents=True)
    (pool / src.name).write_text("".join(json.dumps(r) + "\n" for r in recs))
    res = cli("events", str(pool), "--keys", "message,job.tag,levelname,job.tag,name")
    lines = res.stdout.splitlines()
    head = lines[0].split()
    assert head.count("message") == 1 and head.count("job.tag") == 1
    assert "levelname" not in head
    # The logger column cuts a long name; asked for, it is added whole.
    assert head[-2:] == ["name", "message"] and recs[0]["name"] in lines[1]
    assert len(recs[0]["name"]) > 24
    assert res.stderr.startswith("academy-tui: --keys message (the message column), "
                                 "levelname (the level column): shown already")
    at = lines[0].index("message")
    for r, line in zip(recs, lines[1:], strict=True):
        if r["job.tag"].startswith("x"):  # the message starts under its header
            assert line[at:].startswith(r["message"][:20]), line
    assert "y" * 39 + "…" in lines[3] and "y" * 41 not in lines[3]
    # The missing process reads as missing, not as pid -1.
    assert lines[4].split()[2] == "-" and " -1 " not in lines[4]
