"""Exports of hostile data: any key and any value can appear in a pool, and an export
still writes every record (CSV rows intact and formula-safe, SQLite columns renamed and
spilled to a side table rather than failing)."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from features.export import MAX_COLUMNS, write_csv, write_jsonl, write_sqlite
from features.table import Table

ROOT = Path(__file__).resolve().parents[2]
FORMULA = ("=", "+", "-", "@")


def csv_text(table: Table) -> str:
    """The CSV of a table as a string, as ``export --format csv`` writes it."""
    buf = io.StringIO()
    write_csv(table, buf)
    return buf.getvalue()


def is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def unguarded_formula(cell: str) -> bool:
    return cell.lstrip().startswith(FORMULA) and not is_number(cell)


def spreadsheet_lines(text: str) -> list[str]:
    """Rows as a spreadsheet splits them: CR, LF or CRLF outside quotes ends a row."""
    rows, cur, quoted, i = [], [], False, 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            quoted = not quoted  # a doubled quote toggles twice
        if ch in "\r\n" and not quoted:
            rows.append("".join(cur))
            cur = []
            i += 2 if text.startswith("\r\n", i) else 1
            continue
        cur.append(ch)
        i += 1
    return rows + (["".join(cur)] if cur else [])


def mapping(con: sqlite3.Connection, table: str) -> dict[str | None, tuple[str, str]]:
    """Original key -> (table, column) from ``_columns``."""
    rows = con.execute('select "table", "column", key from _columns where "table" in (?, ?)',
                       (table, table + "__kv")).fetchall()
    return {k: (t, c) for t, c, k in rows}


# -- CSV ---------------------------------------------------------------------------------

BREAKERS = ["a\rb", "=1+1", "x\ny", 'say "hi"', "a,b", "\r\n", "end\r", "\r=1+1", "plain"]


def test_csv_quotes_every_line_break_so_each_record_is_one_row() -> None:
    vals = BREAKERS * 37  # 333 records, as the hostile tester had
    t = Table({"message": np.array(vals, dtype=object), "n": np.arange(len(vals)) - 5},
              name="events")
    text = csv_text(t)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == len(vals) + 1 and {len(r) for r in rows} == {2}
    got = [m[1:] if m.startswith("'") else m for m, _ in rows[1:]]
    assert got == vals
    assert [int(n) for _, n in rows[1:]] == list(range(-5, len(vals) - 5))
    lines = spreadsheet_lines(text)
    assert len(lines) == len(vals) + 1
    assert not any(unguarded_formula(c) for r in rows[1:] for c in r)
    assert '"a\rb",-5\n' in text  # numbers stay bare numbers


@pytest.mark.parametrize("value", [" =1+1", "\r=1+1", "\n@SUM(A1)", "\t+cmd", "  -- done",
                                   "\u00a0=cmd", "=x", "@a", "+a", "-a", "\tx", "\r"])
def test_csv_formula_guard_applies_after_leading_blanks(value: str) -> None:
    t = Table({"v": np.array([value], dtype=object)})
    rows = list(csv.reader(io.StringIO(csv_text(t), newline="")))
    assert rows == [["v"], ["'" + value]]


@pytest.mark.parametrize("value", ["-3", "-1.5e3", " -1.5e3", "+4", "3", "plain", "a=b",
                                   "|x", "%y"])
def test_csv_numbers_and_plain_text_are_left_alone(value: str) -> None:
    t = Table({"v": np.array([value], dtype=object)})
    assert csv_text(t) == f"v\n{value}\n"


def test_csv_header_from_hostile_keys_is_one_guarded_row() -> None:
    t = Table({"@file": ["a.jsonlog"], "=HYPERLINK(1)": ["x"], "a\rb": ["y"], "ok": [1]})
    rows = list(csv.reader(io.StringIO(csv_text(t), newline="")))
    assert rows == [["@file", "'=HYPERLINK(1)", "a\rb", "ok"], ["a.jsonlog", "x", "y", "1"]]


# -- SQLite ------------------------------------------------------------------------------

def test_sqlite_renames_nul_case_clashing_and_rowid_keys(tmp_path: Path) -> None:
    keys = ["message", "a\x00b", "Key", "key", "KEY", "rowid", "ROWID", "oid", "_rowid_",
            "key__2", 'q"uote', ""]
    t = Table({k: np.array([f"{i}:{k}" for i in range(3)], dtype=object) for k in keys},
              name="events")
    db = tmp_path / "t.sqlite"
    assert write_sqlite([t], str(db)) == {"events": 3}
    con = sqlite3.connect(db)
    cols = [r[1] for r in con.execute('pragma table_info("events")')]
    assert len(cols) == len(keys)
    assert len({c.lower() for c in cols}) == len(cols)
    assert not {c.lower() for c in cols} & {"rowid", "oid", "_rowid_"}
    assert not any("\x00" in c for c in cols)
    where = mapping(con, "events")
    assert set(where) == set(keys)
    assert where["message"] == ("events", "message") and where["Key"] == ("events", "Key")
    for k in keys:
        table, col = where[k]
        col_q = '"' + col.replace('"', '""') + '"'
        got = [r[0] for r in con.execute(f"select {col_q} from {table} order by rowid")]
        assert got == [f"{i}:{k}" for i in range(3)], k
    # rowid is SQLite's row id again, not a column.
    assert [r[0] for r in con.execute("select rowid from events")] == [1, 2, 3]


def test_sqlite_keys_beyond_the_column_limit_go_to_a_side_table(tmp_path: Path) -> None:
    n, nkeys = 40, 3000
    cols: dict[str, Any] = {"message": np.array([f"m{i}" for i in range(n)], dtype=object),
                            "levelno": np.arange(n), "created": np.arange(n) / 4}
    for j in range(nkeys):  # each key in one record in twenty
        vals = np.empty(n, dtype=object)
        vals[j % 20::20] = f"v{j}"
        cols[f"k{j}"] = vals
    cols["K0"] = np.array(["upper"] * n, dtype=object)  # clashes with k0, far past the limit
    t = Table(cols, name="events")
    db = tmp_path / "t.sqlite"
    assert write_sqlite([t], str(db)) == {"events": n}
    con = sqlite3.connect(db)
    info = list(con.execute('pragma table_info("events")'))
    assert len(info) <= MAX_COLUMNS
    assert [(r[1], r[2]) for r in info[:4]] == [
        ("_row", "INTEGER"), ("message", ""), ("levelno", "INTEGER"), ("created", "REAL")]
    kept = [r[1] for r in info[1:]]
    assert kept == t.columns[: len(kept)]  # the table's own order
    where = mapping(con, "events")
    assert set(where) == set(t.columns) | {None}
    spilled = [k for k in t.columns if where[k][0] == "events__kv"]
    assert spilled == t.columns[len(kept):] and where["K0"] == ("events__kv", "value")
    expect = sum(1 for k in spilled for v in t[k] if v is not None)
    assert con.execute("select count(*) from events__kv").fetchone()[0] == expect
    for i in (0, 7, n - 1):
        row = con.execute('select _row from events where message = ?', (f"m{i}",)).fetchone()
        side = dict(con.execute('select key, value from events__kv where row = ?', row))
        assert side == {k: t[k][i] for k in spilled if t[k][i] is not None}
        assert con.execute('select "k0", levelno from events where _row = ?',
                           row).fetchone() == (t["k0"][i], i)


def test_sqlite_rewrite_drops_the_old_side_table_and_mapping(tmp_path: Path) -> None:
    db = str(tmp_path / "t.sqlite")
    wide = Table({f"k{j}": [j] for j in range(2500)}, name="events")
    write_sqlite([wide, Table({"a": [1]}, name="agents")], db)
    write_sqlite([Table({"rowid": [1], "x": [2.5]}, name="events")], db)
    con = sqlite3.connect(db)
    tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
    assert tables == {"_columns", "events", "agents"}
    assert sorted(con.execute("select * from _columns")) == [
        ("agents", "a", "a"), ("events", "rowid__2", "rowid"), ("events", "x", "x")]
    assert con.execute("select * from events").fetchall() == [(1, 2.5)]


class _Odd:
    def __str__(self) -> str:
        return "odd!"


class _Broken:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def test_sqlite_odd_values_go_out_as_text(tmp_path: Path) -> None:
    odd = np.empty(7, dtype=object)
    odd[:] = [b"by\xfftes", 10**30, -(10**20), _Odd(), _Broken(), np.int64(7), "lone \udc80"]
    t = Table({"v": odd, "nan": [1.5, float("nan"), 2, 3, 4, 5, 6]}, name="odd")
    db = tmp_path / "t.sqlite"
    write_sqlite([t], str(db))
    got = sqlite3.connect(db).execute("select v, nan from odd").fetchall()
    assert [v for v, _ in got] == ["by\\xfftes", str(10**30), str(-(10**20)), "odd!",
                                   "<_Broken>", 7, "lone \\udc80"]
    assert [x for _, x in got] == [1.5, None, 2, 3, 4, 5, 6]


def test_sqlite_normal_tables_keep_columns_values_and_types(tmp_path: Path) -> None:
    t = Table({"tag": ["a", None], "n": [1, 2], "t": [0.5, float("nan")], "ok": [True, False],
               "mixed": np.array([3, "x"], dtype=object)}, name="actions")
    db = tmp_path / "t.sqlite"
    write_sqlite([t], str(db))
    con = sqlite3.connect(db)
    assert [(r[1], r[2]) for r in con.execute('pragma table_info("actions")')] == [
        ("tag", ""), ("n", "INTEGER"), ("t", "REAL"), ("ok", "INTEGER"), ("mixed", "")]
    assert con.execute("select * from actions").fetchall() == [
        ("a", 1, 0.5, 1, 3), (None, 2, None, 0, "x")]
    assert con.execute("select count(*) from _columns where key = \"column\"").fetchone() == (5,)


def test_jsonl_writes_records_orjson_cannot_encode() -> None:
    out = io.BytesIO()
    recs = [{"big": 10**30}, {"s": "lone \udc80"}, {"ok": 1, "inf": float("inf")}]
    assert write_jsonl(recs, out) == 3
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert lines == [{"big": 10**30}, {"s": "lone \udc80"}, {"ok": 1, "inf": None}]


# -- end to end, through the command line on a real pool file ---------------------------

def record(i: int, **extra: str) -> dict[str, str]:
    """A record as JSONPoolLogging writes it: every value a string."""
    msg = f"m{i}"
    return {"formatted": f"INFO academy.test {msg}", "name": "academy.test", "msg": msg,
            "args": "()", "levelname": "INFO", "levelno": "20", "pathname": "/x/w.py",
            "filename": "w.py", "module": "w", "exc_info": "None", "exc_text": "None",
            "stack_info": "None", "lineno": str(10 + i), "funcName": "work",
            "created": f"{1795839471 + i * 0.25:.4f}", "msecs": "0.0",
            "relativeCreated": "1.0", "thread": "140000", "threadName": "MainThread",
            "processName": "MainProcess", "process": "20424", "message": msg, **extra}


def write_pool(home: Path, records: list[dict[str, str]]) -> Path:
    pool = home / "logs" / str(uuid.uuid4())
    pool.mkdir(parents=True)
    with open(pool / "x.jsonlog", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return pool


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "tui.cli", "--home", str(home), *args],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    return res


def same(db: Any, raw: str) -> bool:
    if isinstance(db, int | float) and not isinstance(raw, int | float):
        return is_number(raw) and float(raw) == pytest.approx(float(db))
    return db == raw


def test_cli_sqlite_export_keeps_every_record_and_value(tmp_path: Path) -> None:
    recs = []
    for i in range(60):  # 50 new keys per record: 3,000 distinct keys in all
        extra = {f"x{i}.k{j}": f"v{i}-{j}" for j in range(50)}
        if i == 0:
            extra |= {"a\x00b": "nul", "Key": "upper", "key": "lower", "rowid": "r",
                      "ROWID": "R", "_rowid_": "rr"}
        recs.append(record(i, **extra))
    pool = write_pool(tmp_path, recs)
    db = tmp_path / "out.sqlite"
    cli(tmp_path, "export", str(pool), "--format", "sqlite", "-o", str(db), "--what", "events")
    con = sqlite3.connect(db)
    where = mapping(con, "events")
    msg_col = where["message"][1]
    assert con.execute("select count(*) from events").fetchone() == (60,)
    found = 0
    for r in recs:
        row = con.execute(f'select _row from events where "{msg_col}" = ?',
                          (r["message"],)).fetchone()
        assert row is not None, r["message"]
        for k, raw in r.items():
            if raw in ("", "None"):
                continue
            table, col = where[k]
            if table == "events":
                got = con.execute(f'select "{col}" from events where _row = ?',
                                  row).fetchone()[0]
            else:
                got = con.execute("select value from events__kv where row = ? and key = ?",
                                  (row[0], k)).fetchone()[0]
            assert same(got, raw), (k, got, raw)
            found += 1
    assert found > 3000


def test_cli_csv_export_of_line_breaks_and_formulas_is_one_row_per_record(
        tmp_path: Path) -> None:
    recs = [record(i, note=BREAKERS[i % len(BREAKERS)], quote='he said "x"\n=2')
            for i in range(333)]
    for i, r in enumerate(recs):
        if i % 3 == 0:
            r["message"] = BREAKERS[(i // 3) % len(BREAKERS)] + f" {i}"
    pool = write_pool(tmp_path, recs)
    out = tmp_path / "events.csv"
    res = cli(tmp_path, "export", str(pool), "--format", "csv", "-o", str(out),
              "--what", "events")
    assert "wrote 333 events" in res.stderr
    text = out.read_bytes().decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 334 and {len(r) for r in rows} == {len(rows[0])}
    assert len(spreadsheet_lines(text)) == 334
    assert not any(unguarded_formula(c) for r in rows[1:] for c in r)
    head = rows[0]
    notes = [r[head.index("note")] for r in rows[1:]]
    assert sorted(n.removeprefix("'") for n in notes) == sorted(r["note"] for r in recs)


def test_typed_records_are_typed_values_whatever_the_memo_learned() -> None:
    """events --format jsonl types records by key and by interned value (the Python loop,
    features.typed._typed_record_py, used when the compiled rule was not built): a key
    whose texts never repeat is typed directly after a while, long texts are kept,
    repeating ones come from the memo. Every value must still be what the rule makes of
    it, before and after a key is taken for unique."""
    from features import typed as E

    E._TYPED.clear()
    E._MISSES.clear()
    E._UNIQUE.clear()
    odd = ["None", "null", "", "20", "-7", "+3", "1e5", ".5", "inf", "NaN", "1_000", " 12",
           "99999999999999999999", "-99999999999999999999", "9" * 41,
           "0306D7CC-A49B-4A50-BE80-79C70B9B322C", "AgentId<0306d7cc>", "x" * 40, "x" * 41,
           "١٢٣", "12\n", "True"]
    for i in range(E.UNIQUE_AFTER + 300):
        rec = {"created": f"{1795839467 + i * 0.001:.3f}", "levelname": "INFO",
               "lineno": str(i % 7), "tag": f"{i:08x}-aaaa-4bbb-8ccc-{i:012x}",
               "odd": odd[i % len(odd)], "n": i, "f": 0.5, "b": True, "nil": None}
        got, want = E._typed_record_py(rec), {k: E._typed_py(v) for k, v in rec.items()}
        assert repr(got) == repr(want), rec  # repr: NaN equals itself
    assert {"created", "tag"} <= E._UNIQUE and "levelname" not in E._UNIQUE
