"""Raw record values typed, a value or a record at a time.

:func:`typed` is the one rule (:func:`features.normalize.scalar`'s, except that an
integer no int64 holds stays text); :func:`typed_record` applies it to a whole record, as
``events --format jsonl`` does to every record of a run, and gives exactly
``{k: typed(v)}`` (a test holds it to that).

Both are the compiled ones of ``features._typed_c`` when it was built (a C compiler at
install; ``ACADEMY_TUI_PURE_PYTHON=1`` turns them off): they decide the common values (a
null spelling, digits, a plain word, a long text, a number) in C and hand the rest to the
Python rule here, ~1.7 us a record where the Python loop takes ~6 (a record's ~27 values).
The Python loop (:func:`_typed_record_py`) types a value in ~0.1-0.2 us with a memo of
repeating texts. Typing a block of records a key's column at a time, with C-level passes
(memo lookups by ``map``, number columns parsed as one JSON array), was tried and measured
slower (4.1 us a record against 3.2 us, plus 2.1 us to take the records apart and put them
together again).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from features.compiled import compiled
from features.normalize import _ID_START, _NUM_START, NULL_STRINGS, scalar, scalar_text

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

LONG = 40
"""Texts longer than this are kept as they are (no number or id is that long)."""


def _typed_py(value: Any) -> Any:
    """One raw value, typed as :func:`~features.normalize.scalar` types it, except an
    integer no int64 holds (``"99999999999999999999"``, a typed 2**64-1): that stays
    text, as written, so that no consumer (numpy, SQLite, JSON) overflows on it."""
    v = scalar(value)
    if type(v) is int and not INT64_MIN <= v <= INT64_MAX:
        return value if isinstance(value, str) else str(value)
    return v


def payload_length(value: Any) -> int:
    """The length of a value as typed (``len(str(typed(value)))``, 0 for a missing one):
    what an action's arguments and result count towards its ``args_len`` and
    ``result_len``. A text over :data:`LONG` characters is typed as it is."""
    if value.__class__ is str and len(value) > LONG:
        return len(value)
    v = typed(value)
    return 0 if v is None else len(str(v))


_TYPED: dict[str, Any] = {}
"""Text -> its typed value, for texts that repeat (bounded: cleared at :data:`MEMO_MAX`)."""
MEMO_MAX = 1 << 16
_MISS = object()
_MISSES: dict[str, int] = {}
"""Key -> texts of it typed without a memo hit."""
_UNIQUE: set[str] = set()
"""Keys whose texts hardly repeat (``created``, ``relativeCreated``, a tag): typed
directly, never memoised (each one pushed the memo towards a clear, and a clear cost every
other key its hits)."""
UNIQUE_AFTER = 4096
"""Misses after which a key is taken for one whose texts do not repeat."""


def _typed_text(v: str) -> Any:
    """:func:`typed` of a text of at most :data:`LONG` characters, without the scalar
    memo."""
    if v in NULL_STRINGS:
        return None
    if v.isascii():  # the numbers of every record (times, thread ids) without a regex
        if v.isdigit():
            i = int(v)
            return i if i <= INT64_MAX else v
        if v.replace(".", "", 1).isdigit():
            return float(v)
    t = scalar_text(v)
    if type(t) is int and not INT64_MIN <= t <= INT64_MAX:
        return v
    return t


def _remember(memo: dict[str, Any], v: str, t: Any) -> None:
    if len(memo) >= MEMO_MAX:
        memo.clear()
    memo[v] = t


def _typed_record_py(rec: dict[str, Any]) -> dict[str, Any]:
    """``{k: typed(v)}`` for one record, typed by key and by interned value: a text over
    :data:`LONG` characters is kept as it is; a key whose texts repeat (levels, loggers,
    states, names) is typed once per text (bounded memo); a key whose texts do not
    (times, tags) is typed directly."""
    memo, unique = _TYPED, _UNIQUE
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if v.__class__ is str:
            if len(v) > LONG:
                out[k] = v
            elif k in unique:
                out[k] = _typed_text(v)
            else:
                t = memo.get(v, _MISS)
                if t is _MISS:
                    t = out[k] = _typed_text(v)
                    missed = _MISSES[k] = _MISSES.get(k, 0) + 1
                    if missed >= UNIQUE_AFTER:
                        unique.add(k)
                    _remember(memo, v, t)
                else:
                    out[k] = t
        else:
            out[k] = _typed_py(v)
    return out


def _compiled() -> ModuleType | None:
    """``features._typed_c`` set up with this module's rule; None when it was not built
    or is turned off (:func:`features.compiled.compiled`)."""
    _typed_c = compiled("_typed_c")
    if _typed_c is None:  # installed without a C compiler: the Python rule alone
        return None
    try:
        _typed_c.configure(NULL_STRINGS, _typed_py, "".join(sorted(_NUM_START)),
                           "".join(sorted(_ID_START)), LONG)
    except (TypeError, ValueError):  # a build left from another version of it
        return None
    return _typed_c


COMPILED = _compiled()
"""The compiled rule in use (None: the Python one)."""
typed = _typed_py if COMPILED is None else COMPILED.typed
typed_record = _typed_record_py if COMPILED is None else COMPILED.typed_record
type_in_place = _typed_record_py if COMPILED is None else COMPILED.type_in_place
""":func:`typed_record` for a record no one else holds (one just parsed): the compiled
rule types its values in place, without a copy; use the record it returns."""
