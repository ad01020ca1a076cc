"""Growable numpy columns and categorical (dictionary-encoded) values."""

from __future__ import annotations

import bisect
import itertools
import operator
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np

from features.compiled import compiled


def insert_at(a: np.ndarray, pos: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``np.insert(a, pos, values)`` for sorted positions: the slices between them copied
    once (:func:`merge_into` a new array). ``np.insert`` builds a mask as long as the
    array: 33 ms a call on a 10M-row time order, three times what copying the slices takes."""
    out = np.empty(len(a) + len(values), dtype=np.result_type(a, values))
    merge_into(out, 0, a, pos, values)
    return out


def merge_into(dst: np.ndarray, at: int, old: np.ndarray, pos: np.ndarray,
               new: np.ndarray) -> None:
    """Write ``old`` with ``new[j]`` inserted before ``old[pos[j]]`` (``pos`` sorted) into
    ``dst[at:]``: each value written once, the slices between positions at a time
    (``dst`` must not overlap ``old``)."""
    end = at + len(old) + len(new)
    if not len(pos):
        dst[at:end] = old
        return
    if pos[0] == len(old):  # all after (into nothing: a whole load's order at once)
        dst[at:at + len(old)] = old
        dst[at + len(old):end] = new
        return
    if pos[-1] == 0:  # all before
        dst[at:at + len(new)] = new
        dst[at + len(new):end] = old
        return
    if len(pos) > 4096:  # many positions: numpy's mask beats so many slices
        dst[at:end] = np.insert(old, pos, new)
        return
    prev, o = 0, at
    for j, p in enumerate(pos.tolist()):
        dst[o:o + p - prev] = old[prev:p]
        o += p - prev
        dst[o] = new[j]
        o += 1
        prev = p
    dst[o:end] = old[prev:]


def code_dtype(top: int, bottom: int = -1) -> np.dtype[Any]:
    """The narrowest signed integer type that holds ``bottom .. top`` (codes: ``-1 ..
    top``): a key with a few values (states, loggers, actions: most of them) takes a
    byte a record, one with thousands (agents) two, the tags four; log levels a byte,
    process ids four. At 10M records each narrowed column is 10-30 MB less to map,
    page in and save."""
    for t in (np.int8, np.int16, np.int32):
        if bottom >= np.iinfo(t).min and top <= np.iinfo(t).max:
            return np.dtype(t)
    return np.dtype(np.int64)


def _intern_codes(index: dict[Any, int], vals: list[Any],
                  values: list[Any] | None = None) -> list[int]:
    """Codes of ``vals`` in ``index`` (``None`` -> -1), new values given the next codes in
    order of appearance (and appended to ``values``, before the index learns them: a
    code in the index always has its value, for readers on other threads). C-level
    passes, no Python per value: a batch brings thousands of tags. Raises TypeError for
    an unhashable value."""
    codes: list[Any] = list(map(index.get, vals))
    if None in codes:
        new = dict.fromkeys(itertools.compress(vals, map(operator.is_, codes,
                                                         itertools.repeat(None))))
        new.pop(None, None)
        if new:
            start = len(index) if values is None else len(values)
            if values is not None:
                values.extend(new)
            index.update(zip(new, itertools.count(start)))
        codes = list(map(index.get, vals, itertools.repeat(-1)))
    return codes


_parse_c = compiled("_parse_c")
intern_codes: Callable[..., list[int]] = (
    _intern_codes if _parse_c is None else _parse_c.intern_codes)
"""``intern_codes(index, vals, values=None)``: :func:`_intern_codes`, in C when
``features/_parse_c.c`` was built (the same codes and tables; ~40 against ~130 ns a value,
a tag of every record of a first reading)."""


ROOM = 64
"""A saved column keeps room for at least 1/ROOM more values, and up to 4/ROOM (a live
run's growth between saves), taken from the room its buffer has, else made."""


class Growable:
    """A 1-d numpy array with amortised O(1) appends.

    Views handed out by :meth:`view` stay valid after later appends: growth allocates a
    new buffer and leaves the old one to the views that still hold it.
    """

    __slots__ = ("_buf", "_n")

    def __init__(self, dtype: Any, capacity: int = 1024) -> None:
        self._buf = np.empty(max(capacity, 16), dtype=dtype)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def extend(self, values: np.ndarray) -> None:
        """Append ``values`` (cast to the column dtype)."""
        k = len(values)
        need = self._n + k
        if need > len(self._buf):
            cap = max(need, len(self._buf) * 2)
            buf = np.empty(cap, dtype=self._buf.dtype)
            buf[: self._n] = self._buf[: self._n]
            self._buf = buf
        self._buf[self._n : need] = values
        self._n = need

    def put(self, start: int, values: np.ndarray) -> None:
        """Overwrite the values from ``start`` (stored ones only). Views handed out see
        the new values unless the column has grown since they were taken."""
        if start < 0 or start + len(values) > self._n:
            raise IndexError("put past the stored values")
        self._buf[start:start + len(values)] = values

    def hold(self, top: int, bottom: int = -1) -> None:
        """Widen the column's integer type, when it must, to hold values from ``bottom``
        up to ``top`` (see :func:`code_dtype`); views handed out keep the narrower
        buffer."""
        info = np.iinfo(self._buf.dtype)
        if top > info.max or bottom < info.min:
            want = code_dtype(max(top, info.max), min(bottom, info.min))
            buf = np.empty(len(self._buf), dtype=want)
            buf[: self._n] = self._buf[: self._n]
            self._buf = buf

    def reserve(self, capacity: int) -> None:
        """Grow the buffer to hold ``capacity`` values without further copies."""
        if capacity > len(self._buf):
            buf = np.empty(capacity, dtype=self._buf.dtype)
            buf[: self._n] = self._buf[: self._n]
            self._buf = buf

    def view(self, n: int | None = None) -> np.ndarray:
        """The first ``n`` values (all by default) as a read-only view."""
        v = self._buf[: self._n if n is None else n]
        v.flags.writeable = False
        return v

    def __getstate__(self) -> tuple[np.ndarray, int]:
        # Saved with room to grow (what lies past the values is never read): a saved
        # reading is mapped copy-on-write, so a live run's next records are written into
        # the map and only their pages become the process's own. Saved exactly, the first
        # record after an open copied every column (10M records: 0.6 -> 2.7 GB resident,
        # 1.9 -> 4.8 s).
        n = self._n
        if len(self._buf) - n >= max(1024, n // ROOM):  # room enough as it is: no copy
            return self._buf[:n + max(4096, n // (ROOM // 4))], n
        out = np.zeros(n + max(4096, n // (ROOM // 4)), dtype=self._buf.dtype)
        out[:n] = self._buf[:n]
        return out, n

    def __setstate__(self, state: tuple[np.ndarray, int]) -> None:
        # The saved values and their room (a cache maps them): appends fill the room,
        # then copy into a buffer of their own, as any growth does.
        self._buf, self._n = state

    def replace(self, values: np.ndarray) -> None:
        """Replace the whole content (used when rows are retracted)."""
        self._buf = np.array(values, dtype=self._buf.dtype, copy=True)
        if len(self._buf) < 16:
            self._buf = np.resize(self._buf, 16)
        self._n = len(values)


class PackedTexts:
    """Texts as one block of UTF-8 bytes and each text's length in bytes: how a parse
    worker hands a batch's messages over (:func:`pack_texts`). Unpickling a million
    strings made a million objects in the process storing them; a block is one, and a
    store keeps it as it came (:meth:`Messages.extend`)."""

    __slots__ = ("blob", "lens")

    def __init__(self, blob: bytes, lens: np.ndarray) -> None:
        self.blob = blob
        self.lens = lens

    def __len__(self) -> int:
        return len(self.lens)

    def texts(self) -> list[str]:
        """The texts, decoded."""
        return _decoded(memoryview(self.blob).cast("B"), np.cumsum(self.lens), 0, len(self))

    def __getstate__(self) -> tuple[bytes, np.ndarray]:
        return self.blob, self.lens

    def __setstate__(self, state: tuple[bytes, np.ndarray]) -> None:
        self.blob, self.lens = state


def pack_texts(texts: Sequence[str]) -> PackedTexts:
    """``texts`` as a :class:`PackedTexts` (any text, lone surrogates included, round-trips)."""
    text = "".join(texts)
    if text.isascii():  # one byte per character: lengths are the texts' own
        return PackedTexts(text.encode("ascii"),
                           np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
    enc = [m.encode("utf-8", "surrogatepass") for m in texts]
    return PackedTexts(b"".join(enc), np.fromiter(map(len, enc), dtype=np.int64,
                                                  count=len(enc)))


class Messages(Sequence[str]):
    """Message texts by row: frozen parts, each held as UTF-8 bytes with end offsets (a
    saved reading maps its one part from disk; a parse worker sends a part per batch), a
    text decoded when it is asked for; then a list of the ones appended since as text
    (a live run's). Saving joins them into one part, so a reopened run of ten million
    records holds no ten million string objects (about 1 GB), only the pages of the
    texts it shows or tests."""

    __slots__ = ("_blobs", "_ends", "_n0", "_starts", "_tail")

    def __init__(self) -> None:
        self._blobs: list[memoryview] = []
        self._ends: list[np.ndarray] = []
        """Per part, each text's end in the part's bytes."""
        self._starts: list[int] = []
        """Per part, its first row."""
        self._n0 = 0
        """Rows in the frozen parts."""
        self._tail: list[str] = []

    def __len__(self) -> int:
        return self._n0 + len(self._tail)

    def extend(self, values: Iterable[str] | PackedTexts) -> None:
        if not isinstance(values, PackedTexts):
            self._tail.extend(values)
            return
        if not len(values):
            return
        if self._tail:  # keep the rows in order: what came as text goes first
            self._add(pack_texts(self._tail))
            self._tail = []
        self._add(values)

    def _add(self, part: PackedTexts) -> None:
        self._blobs.append(memoryview(part.blob).cast("B"))
        self._ends.append(np.cumsum(part.lens))
        self._starts.append(self._n0)
        self._n0 += len(part.lens)

    def _frozen(self, a: int, b: int) -> list[str]:
        """Texts of frozen rows ``a`` to ``b``."""
        out: list[str] = []
        k = bisect.bisect_right(self._starts, a) - 1
        while a < b and k < len(self._starts):
            first = self._starts[k]
            ends = self._ends[k]
            hi = min(b - first, len(ends))
            lo = a - first
            out.extend(_decoded(self._blobs[k], ends, lo, hi))
            a = first + hi
            k += 1
        return out

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        n0 = self._n0
        if isinstance(i, slice):
            a, b, step = i.indices(len(self))
            if step != 1:
                return [self[k] for k in range(a, b, step)]
            out = self._frozen(a, min(b, n0)) if a < n0 else []
            if b > n0:
                out.extend(self._tail[max(a - n0, 0):b - n0])
            return out
        if i < 0:
            i += len(self)
        if 0 <= i < n0:
            k = bisect.bisect_right(self._starts, i) - 1
            j = i - self._starts[k]
            ends = self._ends[k]
            return str(self._blobs[k][int(ends[j - 1]) if j else 0:int(ends[j])], "utf-8",
                       "surrogatepass")
        if i < 0:
            raise IndexError("message row out of range")
        return self._tail[i - n0]

    def contains(self, needle: str, a: int, b: int, fold: bool = False) -> np.ndarray | None:
        """Whether each text of rows ``a`` to ``b`` holds ``needle`` (with ``fold``, its
        text lower-cased holds it; ``needle`` is lower case), found in the packed bytes
        without decoding a text: 10x faster than testing each text. A needle's UTF-8
        bytes are found in a text's bytes exactly where the needle is found in the text
        (UTF-8 marks where each character starts). None when it cannot say that way:
        rows appended as text, with ``fold`` a needle or texts not all ASCII (lower case
        then is not a byte's), or a needle found in so many texts that a step per hit
        costs more than decoding them."""
        if not needle or b > self._n0 or (fold and not needle.isascii()):
            return None
        nb = needle.encode("utf-8", "surrogatepass")
        size = len(nb)
        out = np.zeros(max(b - a, 0), dtype=bool)
        done = a
        k = bisect.bisect_right(self._starts, a) - 1
        while done < b:
            first = self._starts[k]
            ends = self._ends[k]
            lo, hi = done - first, min(b - first, len(ends))
            start = int(ends[lo - 1]) if lo else 0
            raw = bytes(self._blobs[k][start:int(ends[hi - 1])])
            if fold:
                if not raw.isascii():
                    return None
                raw = raw.lower()
            # Every place it is found, overlapping ones too: a place across two texts
            # belongs to neither, and must not hide one just after it inside one.
            cap = (hi - lo) // 8 + 64
            hits: list[int] = []
            pos = raw.find(nb)
            while pos >= 0:
                hits.append(pos)
                if len(hits) > cap:
                    return None
                pos = raw.find(nb, pos + 1)
            if hits:
                at = np.asarray(hits, dtype=np.int64)
                rel = ends[lo:hi] - start
                row = np.searchsorted(rel, at, side="right")
                inside = at + size <= rel[row]
                out[row[inside] + (done - a)] = True
            done = first + hi
            k += 1
        return out

    def __iter__(self) -> Iterator[str]:
        for a in range(0, self._n0, 1 << 15):
            yield from self._frozen(a, min(a + (1 << 15), self._n0))
        yield from self._tail

    def __getstate__(self) -> tuple[np.ndarray, np.ndarray]:
        # One part, grown a part (or a slice of the texts) at a time into one buffer:
        # ten million texts as ten million bytes objects, then joined, took twice the
        # blob's memory and more.
        blob = bytearray()
        ends = []
        for part, e in zip(self._blobs, self._ends, strict=True):
            ends.append(e + len(blob))
            blob += part
        tail = self._tail
        for a in range(0, len(tail), 1 << 16):
            packed = pack_texts(tail[a:a + (1 << 16)])
            ends.append(np.cumsum(packed.lens) + len(blob))
            blob += packed.blob
        joined = np.concatenate(ends) if ends else np.zeros(0, dtype=np.int64)
        return np.frombuffer(blob, dtype=np.uint8), joined.astype(np.int64, copy=False)

    def __setstate__(self, state: tuple[np.ndarray, np.ndarray]) -> None:
        blob, ends = state
        self._blobs, self._ends, self._starts, self._n0 = [], [], [], 0
        self._tail = []
        if len(ends):
            self._blobs.append(memoryview(blob.data).cast("B") if len(blob) else
                               memoryview(b""))
            self._ends.append(ends)
            self._starts.append(0)
            self._n0 = len(ends)


def _decoded(blob: memoryview, ends: np.ndarray, lo: int, hi: int) -> list[str]:
    """Texts ``lo`` to ``hi`` of a part: its bytes there decoded at once and cut by
    the texts' ends (by characters when every one is a byte), else each text decoded."""
    if lo >= hi:
        return []
    start = int(ends[lo - 1]) if lo else 0
    rel = (ends[lo:hi] - start).tolist()
    raw = blob[start:start + rel[-1]]
    text = str(raw, "utf-8", "surrogatepass")
    if len(text) == len(raw):  # ASCII: a character per byte
        return [text[s:e] for s, e in zip([0, *rel[:-1]], rel, strict=True)]
    return [str(raw[s:e], "utf-8", "surrogatepass")
            for s, e in zip([0, *rel[:-1]], rel, strict=True)]


_INDEX_LOCK = threading.Lock()


class Categorical:
    """Distinct normalised values of one key; code ``-1`` is null.

    Values are only ever appended, so a code means the same value forever and a snapshot
    of :attr:`values` taken earlier stays correct for the codes it knew.
    """

    __slots__ = ("_array", "_index", "normalise", "values")

    def __init__(self, normalise: Callable[[Any], Any]) -> None:
        self.values: list[Any] = []
        """Code -> value."""
        self._index: dict[Any, int] | None = {}
        self.normalise = normalise
        """Maps a raw value to its canonical form, ``None`` for null."""
        self._array: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.values)

    def __getstate__(self) -> tuple[list[Any], Callable[[Any], Any]]:
        return self.values, self.normalise

    def __setstate__(self, state: tuple[list[Any], Callable[[Any], Any]]) -> None:
        self.values, self.normalise = state
        self._index = None  # built when first asked for: see index
        self._array = None

    @property
    def index(self) -> dict[Any, int]:
        """Value -> code. A saved reading is opened without it and it is built on first
        use: a 10M-record run's 713k action tags and 713k message tags took 100 MB of
        dicts that a report never looks at. Built under a lock: two threads building it
        at once could each keep a dict, and a value coded into the one that lost would
        be coded again."""
        idx = self._index
        if idx is None:
            with _INDEX_LOCK:
                idx = self._index
                if idx is None:
                    idx = self._index = {v: i for i, v in enumerate(self.values)}
        return idx

    def code(self, raw: Any) -> int:
        """The code of a raw value, adding it when new; -1 for null."""
        v = self.normalise(raw)
        if v is None:
            return -1
        c = self.index.get(v)
        if c is None:
            c = self.index[v] = len(self.values)
            self.values.append(v)
            self._array = None
        return c

    def intern_all(self, values: Iterable[Any]) -> np.ndarray:
        """Codes for already normalised values (``None`` -> -1), adding new ones (see
        :func:`intern_codes`)."""
        vals = values if isinstance(values, list) else list(values)
        n = len(self.values)
        codes = intern_codes(self.index, vals, self.values)
        if len(self.values) != n:
            self._array = None
        return np.array(codes, dtype=np.int32)

    def lookup(self, value: Any) -> int:
        """The code of an already normalised value, -1 when absent."""
        return self.index.get(value, -1)

    def array(self) -> np.ndarray:
        """The values as an object array, for fancy indexing by codes (code -1 indexes
        the extra last slot: null). Safe while another thread interns new values."""
        arr = self._array
        n = len(self.values)
        if arr is None or len(arr) != n + 1:
            vals = self.values[:n]  # a consistent copy: the list may grow meanwhile
            arr = np.empty(len(vals) + 1, dtype=object)
            arr[: len(vals)] = vals
            arr[-1] = None
            self._array = arr
        return arr

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """An object array of values (``None`` for null) for the given codes."""
        arr = self.array()
        return arr[codes]


class FrozenValues(Sequence[Any]):
    """The first ``n`` values of a growing list, as a fixed-length sequence.

    A snapshot hands these out instead of the live list: another thread may intern new
    values meanwhile, and numpy refuses a list that grows while it is converted."""

    __slots__ = ("_n", "_values")

    def __init__(self, values: list[Any], n: int) -> None:
        self._values = values
        self._n = n

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return self._values[: self._n][i]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._values[i]

    def __iter__(self) -> Iterator[Any]:
        return itertools.islice(self._values, self._n)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = np.empty(self._n, dtype=object)
        arr[:] = self._values[: self._n]
        return arr if dtype is None else arr.astype(dtype)

    def tolist(self) -> list[Any]:
        return self._values[: self._n]
