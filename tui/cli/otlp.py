"""``academy-tui export RUN --format otlp [--otlp-endpoint URL]``: the run as an
OpenTelemetry trace (:mod:`features.otlp` builds it), written as OTLP/JSON or POSTed to an
OTLP/HTTP collector.

The POST follows the OTLP specification's OTLP/HTTP section: ``Content-Type:
application/json`` to ``/v1/traces`` (added when the URL has no path, as the SDKs do with
``OTEL_EXPORTER_OTLP_ENDPOINT``); bodies of at most 4 MiB; 429/502/503/504 are retried
(``Retry-After`` honoured up to 5 s, three attempts in all); a 200 with ``partialSuccess``
rejecting spans is an error. A refused connection is not retried: a one-shot command
should say at once that nothing listens there. Every failure is one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from features import otlp
from features.run import Run
from tui.cli.common import CliError

RETRY = (429, 502, 503, 504)
ATTEMPTS = 3
TIMEOUT_S = 10.0


def check_args(args: argparse.Namespace) -> None:
    """Before the run is read: the options fit together and the URL is one we can use."""
    if args.otlp_endpoint and args.format != "otlp":
        raise CliError("--otlp-endpoint sends OTLP: use it with --format otlp")
    if args.format == "otlp" and args.what not in (None, "actions"):
        raise CliError("--format otlp exports actions (one span each); leave out --what")
    if args.otlp_endpoint:
        endpoint(args.otlp_endpoint)


def endpoint(url: str) -> str:
    """The URL to POST to: ``http(s)://HOST[:PORT]``, ``/v1/traces`` added to a bare host."""
    try:
        u = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as e:
        raise CliError(f"bad --otlp-endpoint {url!r}: {e}") from None
    if u.scheme not in ("http", "https") or not u.host:
        raise CliError(f"bad --otlp-endpoint {url!r}: give http://HOST:PORT (a collector's "
                       "OTLP/HTTP port, usually 4318)")
    if u.path in ("", "/"):
        u = u.copy_with(path="/v1/traces")
    return str(u)


def export_otlp(run: Run, args: argparse.Namespace) -> int:
    from tui.cli.common import tell_where, thing_table

    check_args(args)
    rows = run.select(args.where) if args.where else None
    if rows is not None:
        tell_where(run, args.where, len(rows))
    actions = thing_table(run, "actions", rows)
    request = otlp.build(run, actions)
    spans = otlp.span_count(request)
    if args.output:
        with open(args.output, "wb") as out:
            out.write(otlp.dumps(request))
        sys.stderr.write(f"wrote {Path(args.output).resolve()}: OTLP/JSON, one trace, "
                         f"{spans} spans ({len(actions)} actions)\n")
    if args.otlp_endpoint and not spans:
        sys.stderr.write("academy-tui: note: the run has no records yet: nothing sent\n")
    elif args.otlp_endpoint:
        url = endpoint(args.otlp_endpoint)
        bodies = otlp.batches(request)
        post(url, bodies)
        sys.stderr.write(f"sent {spans} spans ({len(actions)} actions, trace "
                         f"{otlp.trace_id(run.uuid)}) to {url} in {len(bodies)} "
                         f"request{'s' if len(bodies) != 1 else ''}\n")
    elif not args.output:
        sys.stdout.flush()
        sys.stdout.buffer.write(otlp.dumps(request) + b"\n")
    return 0


def post(url: str, bodies: list[bytes], timeout: float = TIMEOUT_S) -> None:
    """POST each body; raise :class:`CliError` with one line on the first failure."""
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               "User-Agent": f"academy-tui/{otlp.SCOPE['version']}"}
    try:
        with httpx.Client(timeout=timeout, headers=headers) as client:
            for i, body in enumerate(bodies):
                where = f" (request {i + 1} of {len(bodies)})" if len(bodies) > 1 else ""
                _send(client, url, body, where)
    except httpx.TimeoutException:
        raise CliError(f"the collector at {url} did not answer within {timeout:g} s") \
            from None
    except httpx.ConnectError as e:
        raise CliError(f"cannot reach the collector at {url}: {_reason(e)}") from None
    except httpx.HTTPError as e:
        raise CliError(f"sending to the collector at {url} failed: "
                       f"{type(e).__name__}: {_reason(e)}") from None


def _send(client: httpx.Client, url: str, body: bytes, where: str) -> None:
    for attempt in range(1, ATTEMPTS + 1):
        resp = client.post(url, content=body)
        if resp.status_code in RETRY and attempt < ATTEMPTS:
            time.sleep(_retry_after(resp, attempt))
            continue
        if not 200 <= resp.status_code < 300:
            raise CliError(f"the collector at {url} answered HTTP {resp.status_code}"
                           f"{where}: {_said(resp)}")
        partial = _json(resp).get("partialSuccess") or {}
        rejected = int(partial.get("rejectedSpans") or 0)
        if rejected:
            raise CliError(f"the collector at {url} rejected {rejected} spans{where}: "
                           f"{_one_line(str(partial.get('errorMessage') or 'no reason given'))}")
        return


def _retry_after(resp: httpx.Response, attempt: int) -> float:
    try:
        return min(5.0, max(0.0, float(resp.headers.get("Retry-After", ""))))
    except ValueError:
        return 0.5 * 2 ** (attempt - 1)


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        got = orjson.loads(resp.content) if resp.content else {}
    except orjson.JSONDecodeError:
        return {}
    return got if isinstance(got, dict) else {}


def _said(resp: httpx.Response) -> str:
    """What a failed response says: a ``Status`` message, else its first text line."""
    msg = _json(resp).get("message")
    if not msg:
        text = resp.text.strip()
        msg = text.splitlines()[0] if text else resp.reason_phrase or "no body"
    return _one_line(str(msg))


def _reason(e: Exception) -> str:
    return _one_line(str(e) or type(e).__name__)


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
