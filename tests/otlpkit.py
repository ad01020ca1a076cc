"""Reading OTLP/JSON back through the real schema (opentelemetry-proto), for the tests of
``features.otlp`` and of ``academy-tui export --format otlp``."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

IDS = ("traceId", "spanId", "parentSpanId")


def parse(body: bytes) -> ExportTraceServiceRequest:
    """Parse with protobuf's JSON mapping. OTLP/JSON writes ids as hex where that mapping
    has base64 (the one documented deviation), so ids are re-encoded first; without that a
    32-hex trace id would read as 24 bytes of base64."""
    def fix(o: Any) -> Any:
        if isinstance(o, dict):
            return {k: base64.b64encode(bytes.fromhex(v)).decode() if k in IDS else fix(v)
                    for k, v in o.items()}
        return [fix(x) for x in o] if isinstance(o, list) else o
    return json_format.Parse(json.dumps(fix(orjson.loads(body))), ExportTraceServiceRequest())


def spans(msg: ExportTraceServiceRequest) -> list[tuple[dict[str, Any], Any]]:
    """(resource attributes, span) pairs."""
    return [(attrs(rs.resource.attributes), s) for rs in msg.resource_spans
            for ss in rs.scope_spans for s in ss.spans]


def attrs(kvs: Any) -> dict[str, Any]:
    out = {}
    for kv in kvs:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which)
    return out
