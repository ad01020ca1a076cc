"""Things of any keys (``group``/``things``), messages and agent loops."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from features.events import Events
from features.table import Table
from features.things.common import LOOP_EXITS, LOOP_STARTS, msg_rows


def group(ev: Events, keys: Sequence[str], rows: np.ndarray | None = None) -> tuple[
        np.ndarray, list[tuple[Any, ...]], np.ndarray]:
    """Group rows by the values of ``keys`` (rows lacking any key are left out).

    Returns (rows, group key tuples, group index of each returned row)."""
    rows = np.arange(ev.n) if rows is None else np.asarray(rows, dtype=np.int64)
    parts: list[np.ndarray] = []
    decoders: list[Any] = []
    for k in keys:
        if k in ev.codes:
            c, vals = ev.cat(k)
            codes = c[rows].astype(np.int64)
            decoders.append(vals)
        else:
            col = ev.column(k)[rows]
            if col.dtype.kind == "f":
                present = ~np.isnan(col)
            elif col.dtype.kind in "iu" and k in ev.ints:
                present = col >= 0
            elif col.dtype.kind in "iub":
                present = np.ones(len(col), dtype=bool)
            else:
                present = np.fromiter((v is not None for v in col), bool, len(col))
            codes = np.full(len(rows), -1, dtype=np.int64)
            if present.any():
                vals_present = col[present]
                if col.dtype == object:
                    uniq_map: dict[Any, int] = {}
                    enc = [uniq_map.setdefault(v, len(uniq_map)) for v in vals_present]
                    codes[present] = enc
                    decoders.append(list(uniq_map))
                else:
                    u, inv = np.unique(vals_present, return_inverse=True)
                    codes[present] = inv
                    decoders.append(u.tolist())
            else:
                decoders.append([])
        parts.append(codes)
    keep = np.ones(len(rows), dtype=bool)
    for p_ in parts:
        keep &= p_ >= 0
    rows = rows[keep]
    parts = [p_[keep] for p_ in parts]
    if not len(rows):
        return rows, [], np.empty(0, dtype=np.int64)
    stacked = np.stack(parts, axis=1)
    uniq, inv = np.unique(stacked, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    key_tuples = [tuple(decoders[j][int(u[j])] for j in range(len(keys))) for u in uniq]
    return rows, key_tuples, inv


def things(ev: Events, keys: Sequence[str], rows: np.ndarray | None = None,
           name: str = "things") -> Table:
    """The generic thing: any set of key fields defines one. For each distinct value
    combination: first and last time, duration, count and the first row as evidence."""
    rows, key_tuples, inv = group(ev, keys, rows)
    g = len(key_tuples)
    t = ev.created[rows]
    first = np.full(g, np.nan)
    last = np.full(g, np.nan)
    if g:
        np.fmin.at(first, inv, t)
        np.fmax.at(last, inv, t)
    count = np.bincount(inv, minlength=g) if g else np.zeros(0, dtype=np.int64)
    first_row = np.full(g, -1, dtype=np.int64)
    if g:
        order = np.lexsort((t, inv))[::-1]
        first_row[inv[order]] = rows[order]
    cols: dict[str, Any] = {}
    for j, k in enumerate(keys):
        col = np.empty(g, dtype=object)
        col[:] = [kt[j] for kt in key_tuples]
        cols[k] = col
    cols.update({"t_first": first, "t_last": last, "duration_s": last - first,
                 "count": count.astype(np.int64), "row_first": first_row})
    table = Table(cols, name=name)
    return table.sort("t_first")


def messages(ev: Events) -> Table:
    """One row per message: ``(academy.message_tag, src, dest)`` (a response reuses its
    request's tag, in the other direction). ``type`` comes from the sender's record (on
    Redis and HTTP exchanges the receiver logs ``dict``)."""
    tag_codes, _ = ev.cat("academy.message_tag")
    rows = np.flatnonzero(tag_codes >= 0)
    table = things(ev, ["academy.message_tag", "academy.src", "academy.dest"], rows,
                   name="messages")
    mt_codes, mt_vals = ev.cat("academy.message_type")
    r2, key_tuples, inv = group(ev, ["academy.message_tag", "academy.src", "academy.dest"],
                                rows)
    types = np.empty(len(key_tuples), dtype=object)
    codes = mt_codes[r2]
    for gi, c in zip(inv.tolist(), codes.tolist(), strict=True):
        if c >= 0 and mt_vals[c] != "dict" and types[gi] is None:
            types[gi] = mt_vals[c]
    # things() sorted its rows by time; realign types through the key columns.
    pos = {kt: i for i, kt in enumerate(key_tuples)}
    keyed = zip(table["academy.message_tag"], table["academy.src"], table["academy.dest"],
                strict=True)
    aligned = np.array([types[pos[k]] for k in keyed], dtype=object)
    table = table.with_column("type", aligned)
    return table.with_column("latency_s", table["duration_s"])


def loops(ev: Events) -> Table:
    """One row per agent loop run: started/exited records keyed by ``academy.self``,
    ``academy.method`` and file. ``running`` is true when no exit was logged."""
    starts = msg_rows(ev, *LOOP_STARTS)
    exits = msg_rows(ev, *LOOP_EXITS)
    rows = np.concatenate([starts, exits])
    if not len(rows):
        return Table({"agent": [], "method": [], "file": [], "t_started": [],
                      "t_exited": [], "duration_s": [], "running": []}, name="loops")
    self_vals = ev.column("academy.self")
    method_vals = ev.column("academy.method")
    file_names = ev.file_names
    out: dict[tuple[Any, Any, int], dict[str, Any]] = {}
    exit_set = set(exits.tolist())
    for r in sorted(rows.tolist(), key=lambda r: ev.created[r]):
        key = (self_vals[r], method_vals[r], int(ev.file[r]))
        ent = out.setdefault(key, {"t_started": np.nan, "t_exited": np.nan})
        if r in exit_set:
            ent["t_exited"] = float(ev.created[r])
        elif np.isnan(ent["t_started"]):
            ent["t_started"] = float(ev.created[r])
    keys = list(out)
    started = np.array([out[k]["t_started"] for k in keys])
    exited = np.array([out[k]["t_exited"] for k in keys])
    return Table({
        "agent": [k[0] for k in keys] or np.empty(0, dtype=object),
        "method": [k[1] for k in keys] or np.empty(0, dtype=object),
        "file": [file_names[k[2]] for k in keys] or np.empty(0, dtype=object),
        "t_started": started,
        "t_exited": exited,
        "duration_s": exited - started,
        "running": np.isnan(exited),
    }, name="loops")
