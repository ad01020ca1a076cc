"""Export tables as CSV (a spreadsheet opens it), JSON Lines (for jq) or SQLite (one
table per kind of thing).

Log records are untrusted input (SECURITY.md R7): any key and any value can appear. An
export never fails as a whole because of one odd key or value; every record goes out.

CSV: a field holding a comma, a quote or a line break of any kind (a bare carriage return
too) is quoted, so each record is exactly one row. Text that a spreadsheet would take for
a formula (its first non-blank character is ``=``, ``+``, ``-`` or ``@``, or it starts
with a tab or a carriage return, and it is not a number like ``-3``) gets a leading ``'``,
which spreadsheets hide. Header names get the same guard, except plain location names
such as ``@file``.

JSON Lines and SQLite keep every value as it is, except what the format cannot hold:
NaN is null, and in SQLite bytes, integers beyond 64 bits and other objects are text.

SQLite: each table gets one column per key, named after the key, except that

- characters SQLite cannot take are replaced (NUL becomes ``␀``);
- a name equal, ignoring ASCII case as SQLite does, to an earlier column or to ``rowid``,
  ``oid`` or ``_rowid_`` gets a suffix: ``Key``, ``key`` -> ``Key``, ``key__2``;
- a table keeps at most :data:`MAX_COLUMNS` columns (SQLite allows 2,000), in the table's
  own order (well-known columns first). A wider table starts with an ``_row`` INTEGER
  column, and the cells of the remaining keys that are not missing go to the side table
  ``<table>__kv`` (``row`` = ``_row``, ``key``, ``value``), one row per cell.

The ``_columns`` table (``table``, ``column``, ``key``) lists every column of every
exported table with the key it holds (``_row`` with a NULL key), and every key kept in a
side table as (``<table>__kv``, ``value``, key): ``select "table", "column" from _columns
where key = 'rowid'`` finds any key."""

from __future__ import annotations

import json
import math
import re
import sqlite3
import string
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

import numpy as np
import orjson

from features.table import Table

FORMATS = ("csv", "jsonl", "sqlite")

MAX_COLUMNS = 1900
"""Columns per SQLite table at most (a margin below SQLite's default limit of 2,000)."""

# -- text ------------------------------------------------------------------------------


def _utf8(s: str) -> str:
    """``s``, with what UTF-8 cannot encode (lone surrogates) as ``\\udXXX`` escapes."""
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s


def _text(v: Any) -> str:
    """Any value as text that every output can take."""
    if isinstance(v, str):
        return _utf8(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return _utf8(bytes(v).decode("utf-8", "backslashreplace"))
    if isinstance(v, np.generic):
        v = v.item()
    try:
        return _utf8(str(v))
    except Exception:  # an object whose __str__ fails still goes out
        return f"<{type(v).__name__}>"


# -- CSV -------------------------------------------------------------------------------

_NEEDS_QUOTES = re.compile('[",\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]')
"""The delimiter, the quote, and every character some reader takes for a line break."""
_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*\Z", re.ASCII)
_LOCATION_NAME = re.compile(r"@[A-Za-z_][A-Za-z0-9_.]*\Z")
_FORMULA = ("=", "+", "-", "@")


def _is_formula(s: str) -> bool:
    # A spreadsheet skips leading blanks (and a CR/LF a lenient reader took for the
    # start of a line) before it looks for '=', so the guard must too.
    starts = s.startswith(("\t", "\r")) or s.lstrip().startswith(_FORMULA)
    return starts and not _NUMBER.match(s)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    s = _text(v)
    # A spreadsheet would run '=== phase 2' or '@sum(...)' as a formula: a leading quote
    # keeps it text (and is not shown).
    return "'" + s if _is_formula(s) else s


def _header(name: str) -> str:
    s = _text(name)
    return "'" + s if _is_formula(s) and not _LOCATION_NAME.match(s) else s


def _line(fields: Sequence[str]) -> str:
    # Written by hand: the csv module leaves a bare CR unquoted with lineterminator="\n".
    out = ['"' + f.replace('"', '""') + '"' if _NEEDS_QUOTES.search(f) else f
           for f in fields]
    if out == [""]:
        out = ['""']  # a lone empty field would read back as an empty row
    return ",".join(out) + "\n"


def write_csv(table: Table, out: IO[str]) -> int:
    """Write ``table`` as CSV with a header row; returns the number of rows."""
    cols = table.columns
    out.write(_line([_header(c) for c in cols]))
    n = 0
    for rec in table.iter_records():
        out.write(_line([_cell(rec[c]) for c in cols]))
        n += 1
    return n


# -- JSON Lines ------------------------------------------------------------------------


def _default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return _text(v)


def write_jsonl(records: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    """One JSON object per line; NaN (and infinity) become null."""
    n = 0
    for rec in records:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in rec.items()}
        try:
            line = orjson.dumps(clean, default=_default, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError:
            # Integers beyond 64 bits, lone surrogates, very deep nesting: the slower
            # encoder takes the first two; the last goes out as text.
            try:
                line = json.dumps(clean, default=_default).encode() + b"\n"
            except (TypeError, ValueError, RecursionError):
                plain = {_text(k): v if isinstance(v, int | float | str) else _text(v)
                         for k, v in clean.items()}
                line = json.dumps(plain).encode() + b"\n"
        out.write(line)
        n += 1
    return n


# -- SQLite ----------------------------------------------------------------------------

_RESERVED = ("rowid", "oid", "_rowid_")
"""Names SQLite gives the hidden row id: a column so named would hide it."""
_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
"""SQLite compares names ignoring ASCII case only."""


def _ident(name: str) -> str:
    """``name`` as SQLite can take it (not yet quoted)."""
    return _text(name).replace("\x00", "␀")


def _quote(name: str) -> str:
    return '"' + _ident(name).replace('"', '""') + '"'


def _column_names(keys: Sequence[str], taken: set[str]) -> list[str]:
    """Distinct column names for ``keys``; ``taken`` (folded) is updated."""
    out = []
    for k in keys:
        base = _ident(k)
        name, i = base, 1
        while name.translate(_FOLD) in taken:
            i += 1
            name = f"{base}__{i}"
        taken.add(name.translate(_FOLD))
        out.append(name)
    return out


def _column_limit(con: sqlite3.Connection) -> int:
    cols = con.getlimit(sqlite3.SQLITE_LIMIT_COLUMN)
    variables = con.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return max(2, min(MAX_COLUMNS, cols - 100, variables - 1))


def _sql_type(arr: np.ndarray) -> str:
    if arr.dtype.kind in "iub":
        return "INTEGER"
    if arr.dtype.kind == "f":
        return "REAL"
    return ""  # no affinity: numbers stay numbers, text stays text


def _sql_value(v: Any) -> Any:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, str):
        return _utf8(v)
    if isinstance(v, float):
        return None if math.isnan(v) else v
    if isinstance(v, int):
        return v if -(2**63) <= v < 2**63 else str(v)
    if isinstance(v, np.generic):
        return _sql_value(v.item())
    return _text(v)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def write_sqlite(tables: Iterable[Table], path: str) -> dict[str, int]:
    """Write each table (by its ``name``) into an SQLite database, replacing tables of the
    same name, and list their columns in ``_columns`` (see the module docstring). Returns
    rows written per table."""
    con = sqlite3.connect(path)
    written: dict[str, int] = {}
    try:
        con.execute('CREATE TABLE IF NOT EXISTS _columns ("table" TEXT, "column" TEXT, '
                    '"key" TEXT)')
        limit = _column_limit(con)
        for t in tables:
            name = t.name or "data"
            _write_table(con, t, _ident(name), limit)
            written[name] = len(t)
        con.commit()
    finally:
        con.close()
    return written


def _write_table(con: sqlite3.Connection, t: Table, name: str, limit: int) -> None:
    kv = name + "__kv"
    keys = t.columns
    spill = keys[limit - 1:] if len(keys) > limit else []
    kept = keys[: len(keys) - len(spill)]
    taken = set(_RESERVED) | ({"_row"} if spill else set())
    cols = _column_names(kept, taken)
    decl = [f"{_quote(c)} {_sql_type(t[k])}".rstrip() for c, k in zip(cols, kept, strict=True)]
    if spill:
        decl.insert(0, '"_row" INTEGER PRIMARY KEY')
    for table in (name, kv):
        con.execute(f"DROP TABLE IF EXISTS {_quote(table)}")
        con.execute('DELETE FROM _columns WHERE "table" = ?', (table,))
    con.execute(f"CREATE TABLE {_quote(name)} ({', '.join(decl)})")
    listed: list[tuple[str, str, str | None]] = [
        (name, c, k) for c, k in zip(cols, kept, strict=True)]
    if spill:
        listed.insert(0, (name, "_row", None))
    con.executemany('INSERT INTO _columns VALUES (?, ?, ?)',
                    [(a, b, None if c is None else _utf8(c)) for a, b, c in listed])
    marks = ", ".join("?" for _ in decl)
    con.executemany(f"INSERT INTO {_quote(name)} VALUES ({marks})",
                    _main_rows(t.iter_records(), kept, numbered=bool(spill)))
    if not spill:
        return
    con.execute(f'CREATE TABLE {_quote(kv)} ("row" INTEGER, "key" TEXT, "value")')
    con.execute(f"CREATE INDEX {_quote(kv + '_by_row')} ON {_quote(kv)} (\"row\")")
    con.executemany("INSERT INTO _columns VALUES (?, 'value', ?)",
                    [(kv, _utf8(k)) for k in spill])
    con.executemany(f"INSERT INTO {_quote(kv)} VALUES (?, ?, ?)",
                    _side_rows(Table({k: t[k] for k in spill}).iter_records(), spill))


def _main_rows(records: Iterable[dict[str, Any]], keys: Sequence[str],
               numbered: bool) -> Iterator[list[Any]]:
    for i, r in enumerate(records):
        row = [_sql_value(r[k]) for k in keys]
        yield [i, *row] if numbered else row


def _side_rows(records: Iterable[dict[str, Any]],
               keys: Sequence[str]) -> Iterator[tuple[int, str, Any]]:
    texts = [_utf8(k) for k in keys]
    for i, r in enumerate(records):
        for k, text in zip(keys, texts, strict=True):
            v = r[k]
            if not _missing(v):
                yield i, text, _sql_value(v)
