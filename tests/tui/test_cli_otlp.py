"""``academy-tui export RUN --format otlp [--otlp-endpoint URL]`` as a user runs it (a
subprocess), against a loopback OTLP/HTTP receiver on 127.0.0.1 in this process: every
action's span arrives; a refused connection, an HTTP 500, a partial success and a bad URL
are each one line on stderr and exit status 2."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from otlpkit import attrs, parse, spans
from test_cli import cli

from features.run import Run


class Receiver:
    """A collector's OTLP/HTTP endpoint: records each POST, answers from ``replies``
    (status, headers, body) in turn, then 200 with an empty ``ExportTraceServiceResponse``."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.replies: list[tuple[int, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append({"path": self.path, "body": body,
                                    "type": self.headers["Content-Type"]})
                code, headers, reply = outer.replies.pop(0) if outer.replies else \
                    (200, {}, b"{}")
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_the_collector_receives_every_action(samples_home: Path, sample: Any,
                                             receiver: Receiver) -> None:
    res = cli("export", "f56a", "--format", "otlp", "--otlp-endpoint", receiver.url,
              home=samples_home)
    assert res.stdout == ""
    run = Run(sample("pairs"))
    run.load()
    tags = set(run.actions()["tag"].tolist())
    assert len(receiver.posts) == 1
    post = receiver.posts[0]
    assert post["path"] == "/v1/traces" and post["type"] == "application/json"
    got = spans(parse(post["body"]))
    calls = [attrs(s.attributes)["academy.action_tag"] for _, s in got
             if attrs(s.attributes)["academy.span"] == "call"]
    assert len(calls) == len(tags) == 656 and set(calls) == tags
    assert f"sent {len(got)} spans (656 actions" in res.stderr
    assert "in 1 request" in res.stderr


def test_stdout_and_file_are_the_request_that_is_posted(samples_home: Path,
                                                        tmp_path: Path,
                                                        receiver: Receiver) -> None:
    out = cli("export", "2ecb", "--format", "otlp", home=samples_home).stdout
    assert parse(out.encode()).resource_spans
    path = tmp_path / "trace.json"
    res = cli("export", "2ecb", "--format", "otlp", "-o", str(path), "--otlp-endpoint",
              receiver.url + "/custom/path", home=samples_home)
    # The absolute path it wrote (a relative -o lands in the current directory).
    assert (f"wrote {path.resolve()}: OTLP/JSON, one trace, 21 spans (9 actions)"
            in res.stderr)
    assert receiver.posts[0]["path"] == "/custom/path"
    assert path.read_bytes() == receiver.posts[0]["body"] == out.rstrip("\n").encode()
    # --where keeps the actions whose records match.
    where = cli("export", "2ecb", "--format", "otlp", "--where",
                "academy.action_state=exception", home=samples_home).stdout
    kinds = [attrs(s.attributes)["academy.span"] for _, s in spans(parse(where.encode()))]
    assert kinds.count("call") == 1


def test_retryable_answers_are_retried(samples_home: Path, receiver: Receiver) -> None:
    receiver.replies = [(503, {"Retry-After": "0"}, b'{"message": "busy"}')]
    cli("export", "2ecb", "--format", "otlp", "--otlp-endpoint", receiver.url,
        home=samples_home)
    assert len(receiver.posts) == 2 and receiver.posts[0]["body"] == receiver.posts[1]["body"]


def one_line_error(res: Any) -> str:
    assert res.returncode == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("academy-tui: error: "), res.stderr
    return lines[0]


def test_http_500_is_one_line(samples_home: Path, receiver: Receiver) -> None:
    receiver.replies = [(500, {}, json.dumps({"code": 13, "message": "disk\nfull"}).encode())]
    line = one_line_error(cli("export", "2ecb", "--format", "otlp", "--otlp-endpoint",
                              receiver.url, home=samples_home, check=False))
    assert "answered HTTP 500" in line and "disk full" in line
    assert len(receiver.posts) == 1  # a 500 is not retried (OTLP: not retryable)


def test_partial_success_is_an_error(samples_home: Path, receiver: Receiver) -> None:
    body = {"partialSuccess": {"rejectedSpans": "3", "errorMessage": "too old"}}
    receiver.replies = [(200, {}, json.dumps(body).encode())]
    line = one_line_error(cli("export", "2ecb", "--format", "otlp", "--otlp-endpoint",
                              receiver.url, home=samples_home, check=False))
    assert "rejected 3 spans" in line and "too old" in line


def test_connection_refused_is_one_line(samples_home: Path) -> None:
    with socket.socket() as s:  # a port that was just free: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = one_line_error(cli("export", "2ecb", "--format", "otlp", "--otlp-endpoint",
                              f"http://127.0.0.1:{port}", home=samples_home, check=False))
    assert f"cannot reach the collector at http://127.0.0.1:{port}/v1/traces" in line
    assert "refused" in line.lower()


def test_a_run_without_records_sends_nothing(tmp_path: Path, receiver: Receiver) -> None:
    (tmp_path / "logs" / "11111111-2222-4333-8444-555555555555").mkdir(parents=True)
    res = cli("export", "11111111", "--format", "otlp", "--otlp-endpoint", receiver.url,
              home=tmp_path)
    assert "nothing sent" in res.stderr and not receiver.posts
    out = cli("export", "11111111", "--format", "otlp", home=tmp_path).stdout
    assert json.loads(out) == {"resourceSpans": []}


@pytest.mark.parametrize(("args", "says"), [
    (["--format", "otlp", "--otlp-endpoint", "collector:4318"], "bad --otlp-endpoint"),
    (["--format", "otlp", "--otlp-endpoint", "http://[::1"], "bad --otlp-endpoint"),
    (["--otlp-endpoint", "http://127.0.0.1:4318"], "use it with --format otlp"),
    (["--format", "otlp", "--what", "events"], "exports actions"),
])
def test_bad_options_fail_before_the_run_is_read(args: list[str], says: str) -> None:
    # The run does not exist: the options are judged first.
    line = one_line_error(cli("export", "no-such-run", *args, check=False))
    assert says in line
