"""Export tables as CSV (a spreadsheet opens it), JSON Lines (for jq) or SQLite (one
table per kind of thing).

In CSV, text that a spreadsheet would take for a formula (starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return, and not a number) gets a leading ``'``, which
spreadsheets hide; JSON Lines and SQLite keep every value as it is."""

from __future__ import annotations

import csv
import io
import math
import sqlite3
from collections.abc import Iterable
from typing import IO, Any

import numpy as np
import orjson

from features.table import Table

FORMATS = ("csv", "jsonl", "sqlite")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str) and v.startswith(_FORMULA_START) and not _is_number(v):
        # A spreadsheet would run '=== phase 2' or '@sum(...)' as a formula: a leading
        # quote keeps it text (and is not shown).
        return "'" + v
    return v


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def write_csv(table: Table, out: IO[str]) -> int:
    """Write ``table`` as CSV with a header row; returns the number of rows."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(table.columns)
    n = 0
    for rec in table.records():
        w.writerow([_cell(rec[c]) for c in table.columns])
        n += 1
    return n


def _default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def write_jsonl(records: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    """One JSON object per line; NaN becomes null."""
    n = 0
    for rec in records:
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                 for k, v in rec.items()}
        out.write(orjson.dumps(clean, default=_default, option=orjson.OPT_APPEND_NEWLINE))
        n += 1
    return n


def _sql_type(arr: np.ndarray) -> str:
    if arr.dtype.kind in "iub":
        return "INTEGER"
    if arr.dtype.kind == "f":
        return "REAL"
    return ""  # no affinity: numbers stay numbers, text stays text


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def write_sqlite(tables: Iterable[Table], path: str) -> dict[str, int]:
    """Write each table (by its ``name``) into an SQLite database, replacing tables of the
    same name. Returns rows written per table."""
    con = sqlite3.connect(path)
    written: dict[str, int] = {}
    try:
        for t in tables:
            name = t.name or "data"
            cols = t.columns
            con.execute(f"DROP TABLE IF EXISTS {_quote(name)}")
            decl = ", ".join(f"{_quote(c)} {_sql_type(t[c])}".rstrip() for c in cols)
            con.execute(f"CREATE TABLE {_quote(name)} ({decl})")
            marks = ", ".join("?" for _ in cols)
            rows = ([_sql_value(r[c]) for c in cols] for r in t.records())
            con.executemany(f"INSERT INTO {_quote(name)} VALUES ({marks})", rows)
            written[name] = len(t)
        con.commit()
    finally:
        con.close()
    return written


def _sql_value(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    return str(v)


def csv_text(table: Table) -> str:
    """The CSV of a table as a string (small tables, tests)."""
    buf = io.StringIO()
    write_csv(table, buf)
    return buf.getvalue()
