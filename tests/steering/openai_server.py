"""A scripted OpenAI chat-completions server on 127.0.0.1, for testing real client stacks.

The far end of the protocol, nothing more: tests talk to it through the real ``openai`` client
(httpx, retries, SSE parsing), so what is tested is what runs. Queue replies, make calls, then
look at :attr:`FakeOpenAI.requests`::

    with FakeOpenAI() as server:
        server.script(completion("hi"), error(500), completion("ok"))
        ...  # base_url=server.base_url
        assert len(server.requests) == 3

A reply built by :func:`completion` is sent as SSE chunks when the request says
``"stream": true`` (content split into word deltas, tool-call arguments into pieces, a usage
chunk when ``stream_options.include_usage``), so one script serves both paths. When the script
runs out, every request gets ``completion("ok")``.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeOpenAI", "Recorded", "Reply", "completion", "error", "hang", "malformed",
           "slow", "tool_call"]


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    body: Any = None
    """A dict (sent as JSON, or as SSE chunks to a streaming request) or raw ``bytes``."""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    """Wait this long before answering (cut short when the server stops)."""


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: Any
    """Parsed JSON, or the raw text when it was not JSON."""
    at: float = field(default_factory=time.monotonic)


def tool_call(name: str, arguments: str | dict[str, Any], id: str = "call_1") -> dict[str, Any]:
    """A tool call entry for :func:`completion` (``arguments`` may be any text)."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": id, "type": "function", "function": {"name": name, "arguments": args}}


def completion(content: str | None = "ok", tool_calls: list[dict[str, Any]] | None = None,
               finish_reason: str | None = None, prompt_tokens: int = 11,
               completion_tokens: int = 7, model: str = "fake-model") -> Reply:
    """A successful chat completion."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return Reply(body={
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message,
                     "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop")}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    })


def error(status: int, message: str = "scripted failure", **headers: str) -> Reply:
    """An OpenAI-style error body; ``retry_after="1"`` becomes the ``retry-after`` header."""
    return Reply(status=status, headers={k.replace("_", "-"): v for k, v in headers.items()},
                 body={"error": {"message": message, "type": "server_error", "code": status}})


def malformed(body: bytes = b'{"id": "chatcmpl-x", "choices": [{"index": 0, "mess') -> Reply:
    """A 200 whose JSON body is cut off (or any other bytes)."""
    return Reply(body=body)


def slow(delay_s: float, then: Reply | None = None) -> Reply:
    """``then`` (default ``completion()``), after ``delay_s`` seconds of silence."""
    reply = then or completion()
    return Reply(reply.status, reply.body, reply.headers, delay_s)


def hang() -> Reply:
    """A request that is read and never answered while the server runs: a model server
    that stopped responding (its handler is released when the server stops)."""
    return Reply(delay_s=24 * 3600.0)


def _sse_chunks(body: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """A completion as the chunks a streaming server sends."""
    choice = body["choices"][0]
    message = choice["message"]
    base = {"id": body["id"], "object": "chat.completion.chunk", "created": body["created"],
            "model": body["model"]}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": w}) for w in re.findall(r"\s*\S+", message.get("content") or "")]
    for i, tc in enumerate(message.get("tool_calls") or ()):
        args = tc["function"]["arguments"]
        chunks.append(chunk({"tool_calls": [{"index": i, "id": tc["id"], "type": "function",
                                             "function": {"name": tc["function"]["name"],
                                                          "arguments": ""}}]}))
        step = max(1, len(args) // 3)
        chunks += [chunk({"tool_calls": [{"index": i,
                                          "function": {"arguments": args[j:j + step]}}]})
                   for j in range(0, len(args), step)]
    chunks.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": body["usage"]})
    return chunks


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked SSE, as real servers do
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        self.server.owner._record(self, None)
        if self.path in ("/health", "/v1/health"):
            self._send(Reply(body={"status": "ok"}))
        elif self.path == "/v1/models":
            self._send(Reply(body={"object": "list", "data": [{"id": "fake-model",
                                                               "object": "model"}]}))
        else:
            self._send(error(404, "not found"))

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.server.owner._record(self, body)
        if self.path != "/v1/chat/completions":
            self._send(error(404, f"no route {self.path}"))
            return
        reply = self.server.owner._next()
        if reply.delay_s and self.server.owner.stopping.wait(reply.delay_s):
            return
        streaming = isinstance(body, dict) and body.get("stream") and reply.status == 200 \
            and isinstance(reply.body, dict)
        try:
            if streaming:
                usage = bool((body.get("stream_options") or {}).get("include_usage"))
                self._send_sse(reply, _sse_chunks(reply.body, usage))
            else:
                self._send(reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a time-out test): nothing to tell it

    def _send(self, reply: Reply) -> None:
        data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _send_sse(self, reply: Reply, chunks: list[dict[str, Any]]) -> None:
        self.send_response(reply.status)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        for event in [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]:
            data = event.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler still sleeping in a slow reply must not block close
    owner: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client closing a kept-alive connection is normal; anything else is a bug here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeOpenAI:
    """The server; a context manager that starts it on a free port and stops it."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        """Every request received, in order."""
        self.stopping = threading.Event()
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, for ``LLMConfig(base_url=...)``."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def chat_requests(self) -> list[Recorded]:
        """The ``POST /v1/chat/completions`` requests."""
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        with self._lock:
            self._script.extend(replies)

    def _next(self) -> Reply:
        with self._lock:
            return self._script.popleft() if self._script else completion("ok")

    def _record(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        with self._lock:
            self.requests.append(Recorded(handler.command, handler.path,
                                          {k.lower(): v for k, v in handler.headers.items()},
                                          body))

    def start(self) -> FakeOpenAI:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release sleeping handlers and close the socket."""
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
