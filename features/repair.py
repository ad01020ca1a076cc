"""Bad lines: recorded with why, and what can be recovered from them recovered.

Two writers sharing one file (``fork``) interleave records; a write cut short leaves a
torn line; a process may write invalid UTF-8. Every such line is counted as bad, with
the records recovered from it (see :func:`repair`)."""

from __future__ import annotations

from typing import Any, Protocol

from features.batch import BadLine
from features.file_values import loads_object
from features.record_keys import MAX_LINE


class Recovering(Protocol):
    """What :func:`repair` needs of the block being built (``features.parse``)."""

    file: int
    bad: list[BadLine]

    def add(self, d: dict[str, Any], offset: int) -> None: ...


def _preview(raw: bytes, n: int = 200) -> str:
    return raw[:n].decode("utf-8", "replace")


def repair(
    b: Recovering,
    raw: bytes,
    offset: int,
    pending: tuple[bytes, int, BadLine] | None,
) -> tuple[bytes, int, BadLine] | None:
    """Record a bad line and recover what can be recovered from it.

    Two writers sharing one file (``fork``) interleave a long record A with a whole
    record B: line i is ``A[:k] + B`` and line i+1 is ``A[k:]``. B is recovered from
    the tail of line i and A by joining the held prefix with line i+1. Invalid UTF-8
    is recovered by decoding with replacement characters. Every such line is still
    counted as bad, with the number of records recovered from it.
    """
    if len(raw) > MAX_LINE:
        b.bad.append(BadLine(b.file, 0, offset, len(raw), "line too long", _preview(raw)))
        return None
    if pending is not None:
        prefix, p_off, p_bad = pending
        d = loads_object(prefix + raw)
        if d is not None:
            b.add(d, p_off)
            p_bad.recovered += 1
            b.bad.append(BadLine(b.file, 0, offset, len(raw),
                                 "interleaved write (the tail of a torn record)", _preview(raw)))
            return None
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "replace")
        d = loads_object(text.encode())
        why = "invalid UTF-8" if d is not None else "not JSON (invalid UTF-8)"
        bad = BadLine(b.file, 0, offset, len(raw), why, _preview(raw))
        if d is not None:
            b.add(d, offset)
            bad.recovered = 1
        b.bad.append(bad)
        return None
    # Look for a whole record embedded after a torn prefix.
    start = 1
    for _ in range(16):
        k = raw.find(b'{"', start)
        if k < 0:
            break
        d = loads_object(raw[k:])
        if d is not None:
            bad = BadLine(b.file, 0, offset, len(raw), "interleaved write", _preview(raw),
                          recovered=1)
            b.add(d, offset + k)
            b.bad.append(bad)
            if raw.startswith(b"{"):
                return (raw[:k], offset, bad)
            return None
        start = k + 1
    reason = "not JSON" if not raw.lstrip().startswith(b"{") else "truncated or corrupt JSON"
    bad = BadLine(b.file, 0, offset, len(raw), reason, _preview(raw))
    b.bad.append(bad)
    return (raw, offset, bad) if raw.startswith(b"{") else None
