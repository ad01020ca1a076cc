"""A parsed block of a pool file as columns (:class:`Batch`), what a store appends; and
several blocks of small files merged into one (:func:`merge`), so a store pays its cost per
batch once for them (:mod:`features.parse` makes batches, :mod:`features.loader` groups
them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np

from features.columns import PackedTexts, intern_codes

__all__ = ["BadLine", "Batch", "Payload", "Segment", "merge", "texts"]


Payload = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Batch rows (ascending) of the records that carry an action's arguments or result, and
per row their summed typed lengths (``args_len``; ``result_len``), NaN where the record
has none of those keys: :func:`features.featurize.lengths` takes them from here instead
of reading each call's records back from the files."""



@dataclass(slots=True)
class BadLine:
    """One line that is not a JSON object, kept so the user can see it."""

    file: int
    """Index of the file in the pool (see :class:`features.reader.PoolReader`)."""
    line: int
    """1-based line number."""
    offset: int
    """Byte offset of the line start."""
    length: int
    """Length of the line in bytes, newline excluded."""
    reason: str
    """Why it was rejected, in a few words."""
    preview: str
    """The first bytes of the line, decoded with replacement characters."""
    recovered: int = 0
    """How many records were recovered from it (interleaved writes, bad UTF-8)."""

    def as_dict(self) -> dict[str, Any]:
        """A plain record, for JSON and CSV output."""
        return {
            "file": self.file,
            "line": self.line,
            "offset": self.offset,
            "length": self.length,
            "reason": self.reason,
            "recovered": self.recovered,
            "preview": self.preview,
        }


@dataclass(slots=True)
class Batch:
    """Parsed records of one block of one file, in file order."""

    file: int
    created: np.ndarray
    line: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    flags: np.ndarray
    combo: np.ndarray
    combo_table: list[tuple[Any, ...]]
    tags: list[np.ndarray]
    tag_tables: list[list[Any]]
    shape: np.ndarray
    shape_table: list[tuple[str, ...]]
    message: list[str] | PackedTexts
    """The records' messages; packed into one block of bytes by a parse worker (see
    ``features.loader._parse_group_packed``)."""
    bad: list[BadLine] = field(default_factory=list)
    repaired: dict[int, bytes] = field(default_factory=dict)
    """Batch row -> the JSON text of a record recovered from bad lines (its bytes in the
    file are not one clean line, so a raw read must come from here)."""
    lines: int = 0
    """Lines consumed (records, bad and blank lines)."""
    blank: int = 0
    """Whitespace-only lines skipped."""
    user: dict[str, tuple[np.ndarray, list[Any]]] = field(default_factory=dict)
    """User key -> (batch rows, raw values) of every record that has it (see
    :func:`is_user_key`)."""
    user_partial: list[str] = field(default_factory=list)
    """User keys with a value too long or nested to keep: read from the files on use."""
    odd_times: list[int] = field(default_factory=list)
    """Batch rows whose ``created`` is there but is no usable time (see :func:`_times`):
    their ``created`` here is NaN."""
    segments: list[Segment] | None = None
    """For a batch of several files' blocks (:func:`merge`), each block's part in row
    order; None for one file's block (``file``, ``lines``, ``blank`` say it all)."""
    payload: Payload | None = None
    """The payload sizes of its records that carry them (:data:`Payload`); None when no
    record carries them (or a source's batch does not say)."""

    def __len__(self) -> int:
        return len(self.created)

    def parts(self) -> list[Segment]:
        """Each file's part of the batch, in row order."""
        if self.segments is not None:
            return self.segments
        return [Segment(self.file, len(self), self.lines, self.blank)]


@dataclass(frozen=True)
class Segment:
    """One file's block within a batch: its rows (the next ``rows`` of the batch), the
    lines they came from (records, bad and blank lines) and the blank ones among them."""

    file: int
    rows: int
    lines: int
    blank: int


def texts(message: list[str] | PackedTexts) -> list[str]:
    """A batch's messages as texts."""
    return message.texts() if isinstance(message, PackedTexts) else message


def merge(batches: list[Batch]) -> Batch:
    """Several blocks (of different files) as one batch, in the order given: rows
    concatenated, the per-key tables united in order of first appearance (so a store
    that appends it interns every value with the code it would have given appending the
    blocks one by one) and each block's part kept in ``segments``. A store's cost per
    batch is paid once for all of them: a pool of many small files (one process each,
    ~1 MB) was stored ~3x slower per record than one of a few big ones."""
    if len(batches) == 1:
        return batches[0]
    starts = np.cumsum([0] + [len(b) for b in batches[:-1]]).tolist()

    combo_table, combo_luts = _united([b.combo_table for b in batches])
    shape_table, shape_luts = _united([b.shape_table for b in batches])
    tag_tables, tags = [], []
    for j in range(len(batches[0].tag_tables)):
        table, luts = _united([b.tag_tables[j] for b in batches])
        tag_tables.append(table)
        tags.append(np.concatenate([lut[b.tags[j]] for lut, b in zip(luts, batches,
                                                                      strict=True)]))
    partial = sorted({k for b in batches for k in b.user_partial})
    user = _merged_user(batches, starts, set(partial))
    return Batch(
        file=batches[0].file,
        created=np.concatenate([b.created for b in batches]),
        line=np.concatenate([b.line for b in batches]),
        offset=np.concatenate([b.offset for b in batches]),
        length=np.concatenate([b.length for b in batches]),
        flags=np.concatenate([b.flags for b in batches]),
        combo=np.concatenate([lut[b.combo] for lut, b in zip(combo_luts, batches,
                                                              strict=True)]),
        combo_table=combo_table,
        tags=tags,
        tag_tables=tag_tables,
        shape=np.concatenate([lut[b.shape] for lut, b in zip(shape_luts, batches,
                                                              strict=True)]),
        shape_table=shape_table,
        message=list(chain.from_iterable(texts(b.message) for b in batches)),
        bad=list(chain.from_iterable(b.bad for b in batches)),
        repaired={s + i: raw for b, s in zip(batches, starts, strict=True)
                  for i, raw in b.repaired.items()},
        lines=sum(b.lines for b in batches),
        blank=sum(b.blank for b in batches),
        user=user,
        user_partial=partial,
        odd_times=[s + i for b, s in zip(batches, starts, strict=True) for i in b.odd_times],
        segments=[Segment(b.file, len(b), b.lines, b.blank) for b in batches],
        payload=_merged_payload(batches, starts),
    )


def _merged_payload(batches: list[Batch], starts: list[int]) -> Payload | None:
    have = [(b.payload, s) for b, s in zip(batches, starts, strict=True)
            if b.payload is not None]
    if not have:
        return None
    return (np.concatenate([p[0].astype(np.int64) + s for p, s in have]),
            np.concatenate([p[1] for p, _ in have]), np.concatenate([p[2] for p, _ in have]))


def _united(tables: list[list[Any]]) -> tuple[list[Any], list[np.ndarray]]:
    """One table of the values of ``tables`` (first appearance first), and per table the
    codes of its values in it (-1 for a null value; the last entry -1 for code -1)."""
    index: dict[Any, int] = {}
    luts = [np.append(np.asarray(intern_codes(index, t), dtype=np.int32), np.int32(-1))
            for t in tables]
    return list(index), luts


def _merged_user(batches: list[Batch], starts: list[int], partial: set[str]
                 ) -> dict[str, tuple[np.ndarray, list[Any]]]:
    """The user keys' (rows, values) of ``batches`` one after the other (``starts``: each
    batch's first row), leaving out the keys too long to keep in one of them."""
    user: dict[str, tuple[np.ndarray, list[Any]]] = {}
    for key in dict.fromkeys(k for b in batches for k in b.user):
        if key in partial:
            continue
        have = [(b.user[key], s) for b, s in zip(batches, starts, strict=True)
                if key in b.user]
        user[key] = (np.concatenate([r.astype(np.int64) + s for (r, _), s in have]
                                    ).astype(np.int32),
                     list(chain.from_iterable(v for (_, v), _ in have)))
    return user

