"""A small columnar table: things, analyses and exports pass these around.

Columns are numpy arrays (numbers) or object arrays (strings, ``None`` for missing). It
is deliberately tiny: enough to filter, sort, widen by a function or by joining another
table, and hand plain records to JSON, CSV or SQLite. Notebook users who want pandas can
do ``pd.DataFrame(table.to_dict())``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np


def _plain(v: Any) -> Any:
    """A numpy scalar as a plain Python value; NaN as ``None``."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


class Table:
    """Named, equally long columns."""

    def __init__(self, columns: Mapping[str, Any] | None = None, name: str = "") -> None:
        self.name = name
        """What the rows are (``actions``, ``agents``, ...): used for export table names."""
        self._cols: dict[str, np.ndarray] = {}
        n: int | None = None
        for key, values in (columns or {}).items():
            arr = _as_array(values)
            if n is not None and len(arr) != n:
                raise ValueError(f"column {key!r} has {len(arr)} values, expected {n}")
            n = len(arr)
            self._cols[key] = arr
        self._n = n or 0

    def __len__(self) -> int:
        return self._n

    def __contains__(self, key: str) -> bool:
        return key in self._cols

    def __getitem__(self, key: str) -> np.ndarray:
        return self._cols[key]

    @property
    def columns(self) -> list[str]:
        """Column names in order."""
        return list(self._cols)

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` as a plain record."""
        return {k: _plain(v[i]) for k, v in self._cols.items()}

    def records(self) -> list[dict[str, Any]]:
        """All rows as plain records (NaN and missing values are ``None``)."""
        return list(self.iter_records())

    def iter_records(self, chunk: int = 8192) -> Iterator[dict[str, Any]]:
        """The rows as plain records (as :meth:`records`), made ``chunk`` rows at a time:
        a writer holds a few thousand records, not all of them (713k actions as dicts
        took 1.3 GB, more than the 10M-record run they came from)."""
        for a in range(0, self._n, chunk):
            cols = [(k, v[a:a + chunk].tolist()) for k, v in self._cols.items()]
            for i in range(min(chunk, self._n - a)):
                rec = {}
                for k, vals in cols:
                    v = vals[i]
                    if isinstance(v, float) and v != v:
                        v = None
                    rec[k] = v
                yield rec

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records())

    def to_dict(self) -> dict[str, np.ndarray]:
        """The columns (for ``pandas.DataFrame(table.to_dict())``)."""
        return dict(self._cols)

    # -- selecting ---------------------------------------------------------------------

    def take(self, index: np.ndarray | Sequence[int]) -> Table:
        """Rows at ``index`` (integer positions), in that order."""
        idx = np.asarray(index, dtype=np.int64)
        return Table({k: v[idx] for k, v in self._cols.items()}, self.name)

    def where(self, mask: np.ndarray) -> Table:
        """Rows where the boolean ``mask`` is true."""
        return self.take(np.flatnonzero(mask))

    def head(self, n: int = 10) -> Table:
        return self.take(np.arange(min(n, self._n)))

    def sort(self, by: str, descending: bool = False, limit: int | None = None) -> Table:
        """Rows ordered by column ``by`` (missing values last); the first ``limit`` of
        them when given (only those rows are copied: the 20 slowest of 715k calls
        copied all of them, 114 MB, to keep 20)."""
        idx = self.order(by, descending, limit)
        return self.take(idx if limit is None else idx[:limit])

    def order(self, by: str, descending: bool = False, limit: int | None = None
              ) -> np.ndarray:
        """Row positions in the order :meth:`sort` puts them (the first ``limit`` of them
        when given: of numbers, found without sorting the rest)."""
        col = self._cols[by]
        if col.dtype.kind in "fiub":
            key = col.astype(np.float64)
            key = np.where(np.isnan(key), np.inf if not descending else -np.inf, key)
            if descending:
                key = -key
            if limit is not None and 0 < limit < len(key) // 4:
                return _first_by(key, limit)
            idx = np.argsort(key, kind="stable")
        else:
            present = [i for i, v in enumerate(col) if v is not None]
            missing = [i for i, v in enumerate(col) if v is None]
            present.sort(key=lambda i: col[i], reverse=descending)
            idx = np.array(present + missing, dtype=np.int64)
        return idx

    # -- widening ----------------------------------------------------------------------

    def with_column(self, name: str, values: Any) -> Table:
        """A copy with one more (or a replaced) column."""
        cols = dict(self._cols)
        arr = _as_array(values)
        if len(arr) != self._n:
            raise ValueError(f"column {name!r} has {len(arr)} values, expected {self._n}")
        cols[name] = arr
        return Table(cols, self.name)

    def widen(self, name: str, fn: Callable[[dict[str, Any]], Any]) -> Table:
        """Widen by a function: add column ``name`` computed from each row's record."""
        return self.with_column(name, [fn(r) for r in self.records()])

    def join(
        self,
        other: Table,
        on: str | tuple[str, str],
        fields: Sequence[str] | None = None,
        prefix: str = "",
    ) -> Table:
        """Widen by joining: for each row, the first row of ``other`` whose key matches.

        ``on`` is a column name in both, or ``(my_column, other_column)``. ``fields``
        (default: all of ``other``'s columns but the key) are added with ``prefix``;
        rows without a match get ``None``/NaN."""
        mine, theirs = (on, on) if isinstance(on, str) else on
        fields = [f for f in (fields or other.columns) if f != theirs]
        lookup: dict[Any, int] = {}
        for i, v in enumerate(other[theirs].tolist()):
            if v is not None and v not in lookup:
                lookup[v] = i
        idx = np.array([lookup.get(v, -1) for v in self[mine].tolist()], dtype=np.int64)
        hit = idx >= 0
        out = self
        for f in fields:
            src = other[f]
            if src.dtype.kind in "fiub":
                vals = np.full(self._n, np.nan)
                vals[hit] = src[idx[hit]]
            else:
                vals = np.empty(self._n, dtype=object)
                vals[hit] = src[idx[hit]]
            out = out.with_column(prefix + f, vals)
        return out

    # -- display -----------------------------------------------------------------------

    def format(self, max_rows: int = 40, max_width: int = 40) -> str:
        """A plain-text rendering (for the CLI and notebooks)."""
        cols = self.columns
        rows = [[_cell(r[c], max_width) for c in cols] for r in self.head(max_rows).records()]
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
        for r in rows:
            lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        if self._n > max_rows:
            lines.append(f"... {self._n - max_rows} more rows")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Table {self.name or ''} {self._n} rows x {len(self._cols)} columns>\n" + \
            self.format(10)


def _cell(v: Any, width: int) -> str:
    if v is None:
        s = ""
    elif isinstance(v, float):
        s = f"{v:.6g}"
    else:
        s = str(v)
    s = s.replace("\n", " ")
    return s if len(s) <= width else s[: width - 1] + "…"


def _as_array(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values
    values = list(values)
    if values and all(isinstance(v, bool) for v in values):
        return np.array(values, dtype=bool)
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.float64 if any(isinstance(v, float) for v in values)
                        else np.int64)
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _first_by(key: np.ndarray, limit: int) -> np.ndarray:
    """The positions of the ``limit`` smallest keys in the order a stable sort gives them
    (equal keys by position), without sorting the rest: the 20 slowest of a 10M-record
    run's 715k calls took 69 ms of the UI thread sorted whole."""
    kth = key[np.argpartition(key, limit - 1)[:limit]].max()
    less = np.flatnonzero(key < kth)
    cand = np.concatenate([less, np.flatnonzero(key == kth)[:limit - len(less)]])
    return cand[np.argsort(key[cand], kind="stable")]
