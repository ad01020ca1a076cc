"""OTLP/JSON on the wire: ids, times, attribute values and request bodies, as the OTLP
specification's "JSON Protobuf Encoding" writes them (lowerCamelCase keys; trace and span
ids as hex, not the base64 of the plain protobuf JSON mapping; enums as integers; 64-bit
integers, such as unix-nanosecond times and ``intValue``, as decimal strings). Pure data;
:mod:`features.otlp` gives a run this form."""

from __future__ import annotations

import hashlib
import math
import uuid
from typing import Any

import numpy as np
import orjson

MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""Bytes of one request body at most when posting: the OTLP spec recommends HTTP clients
stay under 20 MiB and gRPC servers take 4 MiB by default (a collector that forwards over
gRPC). Spans measured 1.03-1.17 KB on the samples; 142,865 spans of a 1M-record pool
went out as 36 requests of at most 4,194,241 bytes."""


# -- ids, times, values ----------------------------------------------------------------


def trace_id(pool: str) -> str:
    """The run's trace id: the pool uuid's 32 hex digits (a name that is no uuid, or the
    nil uuid, which OTLP forbids: SHA-256 of the name)."""
    try:
        u = uuid.UUID(pool)
        if u.int:
            return u.hex
    except ValueError:
        pass
    return hashlib.sha256(b"academy-tui trace\0" + pool.encode("utf-8", "replace")
                          ).hexdigest()[:32]


def span_id(pool: str, kind: str, key: str) -> str:
    """16 hex digits, stable for (pool, kind, key); never all zeros (invalid in OTLP)."""
    raw = f"{pool}\0{kind}\0{key}".encode("utf-8", "backslashreplace")
    digest = hashlib.sha256(raw).digest()[:8]
    return (digest if any(digest) else b"\0" * 7 + b"\1").hex()


def nanos(t: float) -> str:
    """Unix seconds as unix nanoseconds, a decimal string (int64 in the JSON mapping);
    whole seconds and the fraction apart, so the float's ~0.2 us is all that is lost."""
    whole = math.floor(t)
    return str(whole * 1_000_000_000 + int((t - whole) * 1e9 + 0.5))


def number(v: Any) -> float | None:
    """A time or duration from a table cell; None for missing or NaN."""
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def text(v: Any) -> str:
    s = v if isinstance(v, str) else str(v)
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a hostile record: escaped, kept
        s = s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s


def value(v: Any) -> dict[str, Any] | None:
    """An ``AnyValue``; None for a missing value (the attribute is left out). Dispatched
    on the exact type first: 11 attributes a span, 1.5 million calls for 71k actions."""
    t = type(v)
    if t is str:
        return {"stringValue": v if v.isascii() else text(v)}
    if t is float:
        return {"doubleValue": v} if v - v == 0 else None  # NaN and inf: left out
    if v is None:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        if -(2**63) <= v < 2**63:
            return {"intValue": str(v)}
        return {"stringValue": str(v)}
    if isinstance(v, float):
        return value(v)
    return {"stringValue": text(v)}


def attributes(items: dict[str, Any]) -> list[dict[str, Any]]:
    """``KeyValue`` list of the items that have a value, in the given order."""
    out = []
    for k, v in items.items():
        val = value(v)
        if val is not None:
            out.append({"key": k, "value": val})
    return out


# -- bytes -----------------------------------------------------------------------------


def dumps(request: dict[str, Any]) -> bytes:
    return orjson.dumps(request)


def span_count(request: dict[str, Any]) -> int:
    return sum(len(ss["spans"]) for rs in request["resourceSpans"] for ss in rs["scopeSpans"])


def batches(request: dict[str, Any], max_bytes: int = MAX_REQUEST_BYTES) -> list[bytes]:
    """The request split into bodies of at most ``max_bytes`` each (a span larger than
    that goes alone), each a whole ``ExportTraceServiceRequest``; spans keep their
    resource. One body when it fits."""
    whole = dumps(request)
    if len(whole) <= max_bytes:
        return [whole]
    out: list[bytes] = []
    current: list[dict[str, Any]] = []
    size = 32
    for rs in request["resourceSpans"]:
        res = rs["resource"]
        head = len(orjson.dumps(res)) + 96
        for ss in rs["scopeSpans"]:
            group: list[dict[str, Any]] = []
            for span in ss["spans"]:
                n = len(orjson.dumps(span)) + 1
                if current or group:
                    extra = n + (0 if group else head)
                    if size + extra > max_bytes:
                        _flush_group(current, res, ss["scope"], group)
                        out.append(dumps({"resourceSpans": current}))
                        current, group, size = [], [], 32
                if not group:
                    size += head
                group.append(span)
                size += n
            _flush_group(current, res, ss["scope"], group)
    if current:
        out.append(dumps({"resourceSpans": current}))
    return out


def _flush_group(current: list[dict[str, Any]], res: dict[str, Any], scope: dict[str, Any],
                 group: list[dict[str, Any]]) -> None:
    if group:
        current.append({"resource": res, "scopeSpans": [{"scope": scope,
                                                         "spans": list(group)}]})
        group.clear()
