"""Values read back from the pool files for the keys the store holds no column of:
lines at their offsets, records parsed, and a key's raw values typed into a column
(``features.events.Events`` asks; this is how the bytes become values)."""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import orjson

from features.normalize import infer_numeric
from features.regular import open_regular
from features.typed import INT64_MAX, INT64_MIN, typed

READ_SPAN = 4 * 1024 * 1024
"""Bytes read from a file at a time when many of its lines are wanted."""

_LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL", 0: "NOTSET"}


def _levelnames(levelno: np.ndarray) -> np.ndarray:
    uniq, inv = np.unique(levelno, return_inverse=True)
    names = np.array([_LEVELS.get(int(u), f"Level {int(u)}" if u >= 0 else None)
                      for u in uniq], dtype=object)
    return names[inv]


def _fit_int64(vals: list[Any]) -> bool:
    """Every int among ``vals`` (numbers) fits in int64."""
    if int not in set(map(type, vals)):
        return True
    ints = [v for v in vals if type(v) is int]
    return min(ints) >= INT64_MIN and max(ints) <= INT64_MAX


def _big_int_texts(vals: list[Any]) -> list[Any] | None:
    """``vals`` with the integers :func:`typed` kept as text turned into floats, when
    every other value is a number; None when some text is not such an integer."""
    out: list[Any] = []
    for v in vals:
        if isinstance(v, bool):
            return None
        if isinstance(v, str):
            if _INT_TEXT.match(v) is None:
                return None
            v = float(v)
        out.append(v)
    return out


def as_numbers(vals: list[Any]) -> list[Any] | None:
    """A key's typed values (none of them null) as numbers for a float column, or None
    when the key is not numeric: some text that is no integer too long for int64."""
    if vals and infer_numeric(vals) == "str":
        return _big_int_texts(vals)
    return vals


_INT_TEXT = re.compile(r"^[+-]?[0-9]{19,}$")
"""An integer too long for int64 might be (see :func:`typed`)."""


def _scalars(vals: list[Any]) -> np.ndarray:
    """``[typed(v) for v in vals]`` as an object array, vectorised when every value is
    a number already, or a string that is exactly an integer's decimal form."""
    out = np.empty(len(vals), dtype=object)
    if not vals:
        return out
    try:
        arr = np.array(vals)
        # Typed records: numbers are their own scalar, but for integers past int64
        # (numpy makes [1, 2**64-1] floats, and 2**64-1 alone unsigned).
        if arr.dtype.kind in "bi" or (arr.dtype.kind == "f" and _fit_int64(vals)):
            out[:] = vals
            return out
        if arr.dtype.kind == "U":
            ints = arr.astype(np.int64)
            if (ints.astype(arr.dtype) == arr).all():  # "12" but not "012", "+1", " 1"
                out[:] = ints.tolist()
                return out
    except (ValueError, OverflowError, TypeError):
        pass
    out[:] = [typed(v) for v in vals]
    return out


def read_lines(path: str, offsets: np.ndarray, lengths: np.ndarray) -> list[bytes] | None:
    """The bytes at ``offsets`` (ascending) of ``lengths`` in the file at ``path``, read
    in spans of up to :data:`READ_SPAN` bytes; None when the file cannot be opened (a line
    cut short by a file that shrank comes back short)."""
    try:
        fd = open_regular(path)
    except OSError:
        return None
    out: list[bytes] = []
    try:
        offs = offsets.tolist()
        ends = (offsets + lengths).tolist()
        i, m = 0, len(offs)
        while i < m:
            lo = offs[i]
            j = max(int(np.searchsorted(offsets, lo + READ_SPAN, side="left")), i + 1)
            buf = os.pread(fd, max(ends[i:j]) - lo, lo)
            # The lines cut out in C-level passes (a slice each, then the cut): ~0.3 us a
            # line less than a generator's Python step per line.
            a = offsets[i:j] - lo
            out.extend(map(buf.__getitem__, map(slice, a.tolist(),
                                                 (a + lengths[i:j]).tolist())))
            i = j
    finally:
        os.close(fd)
    return out


def loads_object(raw: bytes) -> dict[str, Any] | None:
    """A line parsed as a JSON object (a record), or None."""
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return d if isinstance(d, dict) else None


__all__ = ["READ_SPAN", "as_numbers", "loads_object", "read_lines"]
