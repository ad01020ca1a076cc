"""How the filter evaluator (:mod:`features.query_eval`) sees a key's values: as numbers
(a float per row, NaN where missing) or as a factorisation (a code per row and the
distinct values), cached per store and extended as it grows; and the message tests, whose
results are kept per store (a byte per row) and extended likewise."""

from __future__ import annotations

import math
import operator
import re
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice, repeat
from typing import Any

import numpy as np

from features.columns import Messages
from features.normalize import scalar
from features.store import EventStore

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
_REGEX_META = frozenset(".^$*+?{}[]\\|()")
_MSG_CACHE = 16
"""Message test results kept per store (1 byte per row each)."""


class _StoreCache:
    """What is worth keeping between evaluations on one store."""

    def __init__(self) -> None:
        self.lazy: dict[str, _Col] = {}
        """Keys read from the files, factorised (valid for any snapshot up to .n rows)."""
        self.floats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        """Categorical key -> per distinct value (is a number, its float), grown lazily."""
        self.msg: OrderedDict[tuple[Any, ...], tuple[int, np.ndarray]] = OrderedDict()
        """Message test -> (rows covered, mask)."""


_CACHES: weakref.WeakKeyDictionary[EventStore, _StoreCache] = weakref.WeakKeyDictionary()


def _cache_for(store: EventStore) -> _StoreCache:
    c = _CACHES.get(store)
    if c is None:
        c = _CACHES[store] = _StoreCache()
    return c


class _Col:
    """One key's values for rows ``[0, n)``: numbers per row, or codes and distinct values
    (either can be derived from the other when needed)."""

    def __init__(self, n: int, *, num: np.ndarray | None = None, integral: bool = False,
                 codes: np.ndarray | None = None, values: Sequence[Any] = (),
                 index: Callable[[str], int | None] | None = None,
                 floats: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        self.n = n
        self.native = num is not None
        """Held as numbers (core integer keys, created, numeric pseudo keys)."""
        self._num = num
        self._integral = integral
        self._codes = codes
        self._values = values
        self.lookup = index
        """Exact value -> code, when the store keeps such an index."""
        self._floats_fn = floats
        self._floats: tuple[np.ndarray, np.ndarray] | None = None

    def head(self, n: int) -> _Col:
        """The same column for a shorter snapshot."""
        if n == self.n:
            return self
        codes, values = self.factorized()
        return _Col(n, codes=codes[:n], values=values, index=self.lookup,
                    floats=self.value_floats)

    def factorized(self) -> tuple[np.ndarray, Sequence[Any]]:
        if self._codes is None:
            assert self._num is not None
            ok = ~np.isnan(self._num)
            uniq, inv = np.unique(self._num[ok], return_inverse=True)
            codes = np.full(self.n, -1, dtype=np.int32)
            codes[ok] = inv
            self._codes = codes
            self._values = [int(u) for u in uniq.tolist()] if self._integral else uniq.tolist()
        return self._codes, self._values

    def value_floats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per distinct value: is it a number, and its float (NaN when not)."""
        if self._floats is None:
            if self._floats_fn is not None:
                self._floats = self._floats_fn()
            else:
                self._floats = _value_floats(self.factorized()[1], 0, None)
        return self._floats

    def numeric(self) -> bool:
        if self.native:
            return True
        if self._floats is None:
            # Most keys that are not numeric show it in their first values: stop there
            # rather than converting every distinct value (a tag key has ~10^5).
            values = self.factorized()[1]
            if not values or not all(map(_is_number, values)):
                return False
        isnum = self.value_floats()[0]
        return bool(len(isnum)) and bool(isnum.all())

    def floats(self) -> np.ndarray:
        """A float per row: NaN where missing, null or not a number."""
        if self._num is not None:
            return self._num
        codes, _ = self.factorized()
        f = self.value_floats()[1]
        return np.append(f, np.nan)[codes]

    def missing(self) -> np.ndarray:
        if self._num is not None:
            return np.isnan(self._num)
        return self.factorized()[0] == -1

    def decide(self, pred: Callable[[Any], bool]) -> np.ndarray:
        """Rows whose value satisfies ``pred`` (decided once per distinct value)."""
        codes, values = self.factorized()
        k = len(values)
        table = np.zeros(k + 1, dtype=bool)  # the extra slot is code -1: missing
        table[:k] = np.fromiter(map(pred, islice(values, k)), dtype=bool, count=k)
        return table[codes]

    def decide_values(self, table: np.ndarray) -> np.ndarray:
        codes, _ = self.factorized()
        return np.append(table, False)[codes]

    def non_numeric_example(self) -> Any:
        isnum = self.value_floats()[0]
        bad = np.flatnonzero(~isnum)
        return self.factorized()[1][int(bad[0])] if len(bad) else None


_LONG_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _number(v: Any) -> float | None:
    """The number a normalised value stands for (``None`` for text and booleans).

    :func:`scalar` leaves strings over 40 characters alone; a long run of digits (a
    Fibonacci number past the 190th) is still a number here, as a float (maybe inf)."""
    if isinstance(v, str):
        x = scalar(v)
        if isinstance(x, str):
            return float(x) if len(x) > 40 and _LONG_NUMBER.fullmatch(x) else None
        v = x
    if isinstance(v, int | float) and not isinstance(v, bool):
        try:
            return float(v)
        except OverflowError:  # an int beyond the float range
            return math.inf if v > 0 else -math.inf
    return None


def _is_number(v: Any) -> bool:
    return _number(v) is not None


def _value_floats(values: Sequence[Any], start: int,
                  prev: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    k = len(values)
    isnum = np.empty(k - start, dtype=bool)
    f = np.full(k - start, np.nan)
    for i, v in enumerate(islice(values, start, k)):
        x = _number(v)
        isnum[i] = x is not None
        if x is not None:
            f[i] = x
    if prev is not None:
        return np.concatenate([prev[0], isnum]), np.concatenate([prev[1], f])
    return isnum, f


_SLICE = 1 << 15


def _tested(fn: Callable[[Iterable[str]], Iterator[bool]], msgs: Sequence[str], start: int,
            n: int, sub: tuple[str, bool] | None = None) -> np.ndarray:
    """``fn`` over ``msgs[start:n]``, a slice of 32k messages at a time. A map of C-level
    callables runs without returning to the interpreter, so it never hands the GIL on:
    over a million messages that held every other thread (the app's UI among them) for
    ~100 ms; between slices (a few ms each) the others get their turn. A substring test
    (``sub``: :func:`_substring`) is first tried on the texts' packed bytes
    (:meth:`~features.columns.Messages.contains`)."""
    out = np.empty(n - start, dtype=bool)
    packed = msgs if sub is not None and isinstance(msgs, Messages) else None
    for a in range(start, n, _SLICE):
        b = min(a + _SLICE, n)
        got = None if packed is None or sub is None else packed.contains(sub[0], a, b, sub[1])
        out[a - start:b - start] = got if got is not None else \
            np.fromiter(fn(msgs[a:b]), dtype=bool, count=b - a)
    return out


def _substring(test: tuple[Any, ...]) -> tuple[str, bool] | None:
    """(needle, whether texts are lower-cased first) of a message test that is a plain
    substring test (a word; a pattern with no regex syntax); None for any other test. A
    word with nothing to fold (no letter) is tested as it is."""
    if test[0] == "text":
        needle = test[1]
        return needle, not (needle.isascii() and not any(c.isalpha() for c in needle))
    if test[0] == "match" and not any(c in _REGEX_META for c in test[1]):
        return test[1], False
    return None


def _message_test(test: tuple[Any, ...]) -> Callable[[Iterable[str]], Iterator[bool]]:
    """A function mapping message strings to booleans, the fastest exact way we measured:
    ``map`` with C-level callables (no Python frame per message)."""
    sub = _substring(test)
    if sub is not None:
        needle, fold = sub
        if not fold:  # without lower-casing each message
            return lambda it: map(operator.contains, it, repeat(needle))
        return lambda it: map(operator.contains, map(str.lower, it), repeat(needle))
    if test[0] == "match":
        search = re.compile(test[1]).search
        return lambda it: map(bool, map(search, it))
    _, op, lit = test
    if lit is None:  # a missing message is stored as ""
        return lambda it: map(operator.not_, it)
    fn = _OPS[op]
    return lambda it: map(fn, it, repeat(lit))
