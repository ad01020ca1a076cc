"""A block's values made into columns: times, integer and id columns, flags, tags and the
user keys' values, each in C-level passes over the block's raw values or once per
distinct value (see :mod:`features.parse`, whose loop only collects them)."""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from features.columns import intern_codes
from features.normalize import (
    NULL_STRINGS,
    canonical_id,
    canonical_str,
    text_of,
    to_float,
    to_int,
)
from features.record_keys import (
    COMBO_KEYS,
    FLAG_EXC,
    ID_KEYS,
    INT32_MAX,
    INT32_MIN,
    INT_KEYS,
    TIME_MAX,
    TIME_MIN,
    USER_CAP,
)

_NULLS = (None, "None", "")
_NULL_SET = frozenset(_NULLS)
_NUMBERS = frozenset({float, int})
_FIRST, _SECOND, _THIRD = itemgetter(0), itemgetter(1), itemgetter(2)

_CAPTURED_TYPES = frozenset({str, int, float, bool, type(None)})
_TEXT_OR_NONE = frozenset({str, type(None)})


def _capturable(col: list[Any]) -> bool:
    """Every value plain (no list or object) and every string at most :data:`USER_CAP`
    long."""
    types = set(map(type, col))
    if not types <= _CAPTURED_TYPES:
        return False
    if str not in types:
        return True
    strs = col if len(types) == 1 else [v for v in col if type(v) is str]
    return max(map(len, strs)) <= USER_CAP


def _int_or_missing(v: Any) -> int:
    """The value of an integer column: -1 when missing, and also when the column cannot
    hold it (:data:`FLAG_RAW_INT` marks those records)."""
    i = to_int(v)
    return -1 if i is None or not INT32_MIN <= i <= INT32_MAX else i


def _canon_tag(v: Any) -> str | None:
    """Canonical tag: a uuid lower-cased (fast path), anything else via canonical_id."""
    if type(v) is str and len(v) == 36 and v[8] == "-":
        return v.lower()
    return canonical_id(v)


def _exc_flags(es: list[Any]) -> np.ndarray:
    """:data:`FLAG_EXC` where ``exc_text`` is not null. Most records have none: when the
    distinct values are all null spellings, no per-record test is needed."""
    try:
        if set(es) <= _NULL_SET:
            return np.zeros(len(es), dtype=np.uint8)
    except TypeError:  # a nested value in a typed record
        pass
    nulls = np.fromiter(map(_NULLS.__contains__, es), dtype=bool, count=len(es))
    return np.where(nulls, 0, FLAG_EXC).astype(np.uint8)


_NINTH = itemgetter(8)


def _canon_tags(vals: list[Any]) -> list[Any]:
    """:func:`_canon_tag` of each value; for a table of uuid strings (the usual case) in
    three C-level passes."""
    if set(map(type, vals)) <= {str} and set(map(len, vals)) <= {36} \
            and set(map(_NINTH, vals)) <= {"-"}:
        return list(map(str.lower, vals))
    return [_canon_tag(v) for v in vals]

_NORMALISE: dict[str, Callable[[Any], Any]] = {
    k: (_int_or_missing if k in INT_KEYS else canonical_id if k in ID_KEYS else canonical_str)
    for k in COMBO_KEYS
}


def _hashable(v: Any) -> Any:
    """Typed records may hold lists or objects; intern them by their JSON text."""
    if isinstance(v, dict | list):
        try:
            return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()
        except orjson.JSONEncodeError:  # nested deeper than orjson writes (255)
            return text_of(v)
    return v


def _raw_int(present: dict[str, Any]) -> bool:
    """Whether a combo holds a value of an integer key that its column cannot hold (not
    null, and not an integer in range): the record keeps it as written."""
    for k in INT_KEYS:
        v = present.get(k)
        if v is None or (type(v) is str and v in NULL_STRINGS):
            continue
        i = to_int(v)
        if i is None or not INT32_MIN <= i <= INT32_MAX:
            return True
    return False


def _times(cs: list[Any]) -> tuple[np.ndarray, list[int]]:
    """Raw ``created`` values as float seconds, and the rows whose value is there but is
    no usable time (not a number, or outside [:data:`TIME_MIN`, :data:`TIME_MAX`]: ``1e999``,
    ``-inf``, ``NaN``): those become NaN (a missing time) and are named. One vectorised
    range check per block; only a block with such a value looks at its rows again."""
    t = _floats(cs)
    with np.errstate(invalid="ignore"):
        ok = (t >= TIME_MIN) & (t < TIME_MAX)
    if ok.all():
        return t, []
    odd = [i for i in np.flatnonzero(~ok).tolist()
           if not (cs[i] is None or (type(cs[i]) is str and cs[i] in NULL_STRINGS))]
    t[~ok] = np.nan
    return t, odd


def _floats(cs: list[Any]) -> np.ndarray:
    """Raw ``created`` values as float seconds (NaN for what is not a number, as
    :func:`~features.normalize.to_float`)."""
    types = set(map(type, cs))
    if types == {str}:
        # Number strings parse ~6x faster as one JSON array than with float() each;
        # anything else ("None", "nan", "1,2") falls through to to_float.
        try:
            got = orjson.loads("".join(("[", ",".join(cs), "]")))
        except orjson.JSONDecodeError:
            got = None
        if got is not None and len(got) == len(cs) and set(map(type, got)) <= _NUMBERS:
            return np.array(got, dtype=np.float64)
    elif types <= _NUMBERS:
        return np.array(cs, dtype=np.float64)
    return np.fromiter(map(to_float, cs), dtype=np.float64, count=len(cs))


def _intern_tags(vs: list[Any], m: dict[Any, int]) -> np.ndarray:
    """Block codes of one key set's values of one tag key (-1 where None), new values
    added to ``m`` in order of appearance (:func:`~features.columns.intern_codes`; a run
    of equal neighbours is too short here for comparing them first to pay). A value that
    is not a text (a typed record's number, bool or nested value) is interned by its
    canonical text: as a dict key ``False`` is ``0`` and ``True`` is ``1`` and ``1.0``,
    and whichever came first named them all."""
    if not set(map(type, vs)) <= _TEXT_OR_NONE:
        vs = [v if v is None or type(v) is str else _canon_tag(_hashable(v)) for v in vs]
    return np.array(intern_codes(m, vs), dtype=np.int32)
