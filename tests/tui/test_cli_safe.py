"""No command writes a raw control character to the terminal, whatever the pool holds.

A real pool (the thread sample) is rewritten so that messages, logger names, an action
name, extra keys and values, steering records, a traceback and the pool directory's own
name hold ESC/BEL/NUL/DEL, C1, bidi, zero-width and U+2028 sequences; then every command
runs as a user runs it (a subprocess; under a pty where a terminal matters) and its
bytes are searched. JSON stays valid and its strings exact; CSV into a pipe stays exact."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import pty
import re
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069"
                       "\u200b-\u200f\u2028\u2029\ufeff\u061c]")
"""C0 but tab and newline, DEL, C1, bidi controls, zero-width characters, separators."""

HOSTILE = [
    "clear\x1b[2J\x1b[H screen",
    "title\x1b]0;pwned\x07 set",
    "link \x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\ here",
    "report \x1b[6n cursor",
    "nul\x00 bel\x07 del\x7f c1\x9b31m nel\x85",
    "bidi \u202egnp.exe\u202c \u2066iso\u2069 \u2067x\u2068y\u2069 \u202a\u202b\u202d",
    "zero\u200bwidth\u200c\u200d\u2060 \ufeffbom \u200e\u200f\u061c",
    "line\u2028separator\u2029paragraph",
    "fake\nrow 0.0000 f03f8efc 1 INFO\rcarriage",
]
ACTION = "next\x1b]0;act\x07_item\u202e"
LOGGER = "fib\x1b[2Jagents\u200b"
KEY = "evil\x1b[6n.key\u2028"
POOL_NAME = "00000000-0000-4000-8000-0000000000e1\x1b]0;dir\x07\u202e"
BARE_NAME = "00000000-0000-4000-8000-0000000000e2\x1b[2J\u2066"
"""Pool directory names: the pools' names are written by the CLI too."""


def forbidden(data: bytes) -> list[str]:
    """The forbidden characters in ``data`` (UTF-8), with their surroundings."""
    text = data.decode("utf-8", "replace")
    return [repr(text[max(0, m.start() - 20): m.end() + 20]) for m in FORBIDDEN.finditer(text)]


def hostile_records(sample_pool: Path, steering: bool) -> list[dict[str, str]]:
    src = next(sample_pool.glob("*.jsonlog"))
    out = []
    for i, line in enumerate(src.read_text().splitlines()):
        d: dict[str, str] = json.loads(line)
        if d.get("academy.action") == "next_item":
            d["academy.action"] = ACTION
        if d["name"] == "fibagents":
            d["name"] = LOGGER
            d[KEY] = HOSTILE[i % len(HOSTILE)]
        if d["name"] == "fib_workflow" or i % 7 == 0:
            d["message"] = d["formatted"] = d["msg"] = HOSTILE[i % len(HOSTILE)]
        out.append(d)
    last = out[-1]
    # An ERROR with a traceback: the report's errors section shows it.
    out.append({**last, "levelname": "ERROR", "levelno": "40", "message": HOSTILE[0],
                "msg": HOSTILE[0], "formatted": HOSTILE[0],
                "exc_text": "Traceback (most recent call last):\n  " + "\n  ".join(HOSTILE)})
    if steering:
        for j, kind in enumerate(("incident", "suggestion", "approval", "apply")):
            out.append({**last, "name": "academy_tui.steering", "steering.kind": kind,
                        "steering.id": f"s1\x1b[6n{HOSTILE[j]}", "steering.phase": "after",
                        "steering.result": "ok\u202e", "steering.action": ACTION,
                        "steering.args": "{'weight': '\x1b]0;w\x07'}",
                        "message": HOSTILE[j + 1], "msg": HOSTILE[j + 1],
                        "formatted": HOSTILE[j + 1],
                        "created": str(float(last["created"]) + 0.01 * (j + 1))})
    return out


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, sample) -> Path:  # type: ignore[no-untyped-def]
    """An ACADEMY_HOME with two hostile pools: with and without steering records."""
    root = tmp_path_factory.mktemp("hostile")
    for name, steering in ((POOL_NAME, True), (BARE_NAME, False)):
        pool = root / "logs" / name
        pool.mkdir(parents=True)
        recs = hostile_records(sample("thread"), steering)
        (pool / "f03f8efc-3fd4-4e8a-8941-035ef13374bc.jsonlog").write_text(
            "".join(json.dumps(r) + "\n" for r in recs))
    return root


def pool(home: Path, name: str = POOL_NAME) -> str:
    return str(home / "logs" / name)


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACADEMY_HOME": str(home)}
    res = subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True,
                         env=env, cwd=ROOT, timeout=180)
    assert b"Traceback" not in res.stderr, res.stderr.decode(errors="replace")
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    return res


def run_in_pty(home: Path, *args: str) -> bytes:
    """The command with stdout and stderr on a real terminal (a pty); all it wrote."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACADEMY_HOME": str(home),
           "COLUMNS": "200", "LINES": "50"}
    master, slave = pty.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.OPOST  # bytes as written: no "\n" -> "\r\n" on the way out
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "tui.cli", *args], stdin=slave,
                                stdout=slave, stderr=slave, env=env, cwd=ROOT,
                                close_fds=True)
    finally:
        os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        assert proc.wait(timeout=180) == 0
    return b"".join(chunks)


PROGRESS = re.compile(rb"\rreading +\d+\.\d% of \d+ MB|\r\x1b\[K")
"""The CLI's own progress line on a terminal (digits only; never record text)."""


def shown(out: bytes) -> bytes:
    """What a terminal was sent, less the progress line's own redraws."""
    return PROGRESS.sub(b"", out)


# -- text outputs ------------------------------------------------------------------------

TEXT_COMMANDS = {
    "events table": ("events", "{pool}", "--keys", KEY),
    "report text": ("report", "{pool}", "--expect", "2s"),
    "report markdown": ("report", "{pool}", "--format", "markdown"),
    "runs table": ("runs",),
    "diff text": ("diff", "{pool}", "{pool}"),
    "ask text": ("ask", "{pool}", "where did the time go?", "--builtin"),
    "steer trail": ("steer", "{pool}"),
    "steer no trail": ("steer", "{bare}"),
    "export sqlite": ("export", "{pool}", "--format", "sqlite", "-o", "{tmp}/x\x1b[2J.db"),
}


@pytest.mark.parametrize("name", sorted(TEXT_COMMANDS))
def test_text_output_shows_controls_visibly(home: Path, tmp_path: Path, name: str) -> None:
    args = [a.format(pool=pool(home), bare=pool(home, BARE_NAME), tmp=tmp_path)
            for a in TEXT_COMMANDS[name]]
    res = run_cli(home, *args)
    out = res.stdout + res.stderr
    assert not forbidden(out), forbidden(out)[:5]
    text = out.decode()
    assert "\\x1b" in text or "\\u202e" in text  # the hostile text was there, escaped


def test_events_table_keeps_one_line_per_event(home: Path) -> None:
    out = run_cli(home, "events", pool(home), "--keys", KEY).stdout.decode()
    lines = out.splitlines()
    n = next(Path(pool(home)).glob("*.jsonlog")).read_bytes().count(b"\n")
    assert len(lines) == n + 1  # the header and one line per event: no fake rows
    assert any("fake⏎row 0.0000 f03f8efc 1 INFO\\rcarriage" in ln for ln in lines)
    assert any("title\\x1b]0;pwned\\x07 set" in ln for ln in lines)
    assert "\\u202egnp.exe\\u202c" in out and "line\\u2028separator\\u2029" in out


def test_events_table_on_a_terminal(home: Path) -> None:
    out = run_in_pty(home, "events", pool(home), "--keys", KEY)
    assert b"clear\\x1b[2J" in out and b"report \\x1b[6n cursor" in out
    assert not forbidden(shown(out)), forbidden(shown(out))[:5]


# -- JSON outputs: valid, exact, terminal-safe -------------------------------------------


def _raw_json(res: subprocess.CompletedProcess[bytes]) -> str:
    assert not forbidden(res.stdout + res.stderr), forbidden(res.stdout + res.stderr)[:5]
    return res.stdout.decode()


def test_events_jsonl_round_trips_exactly(home: Path) -> None:
    recs = [json.loads(ln) for ln in
            _raw_json(run_cli(home, "events", pool(home), "--format", "jsonl")).splitlines()]
    raw = [json.loads(ln) for ln in _raw_json(run_cli(
        home, "events", pool(home), "--format", "jsonl", "--raw")).splitlines()]
    written = [json.loads(ln) for ln in
               next(Path(pool(home)).glob("*.jsonlog")).read_text().splitlines()]
    by_line = {r["@line"]: r for r in raw}
    for i, rec in enumerate(written, start=1):
        got = by_line[i]
        assert {k: v for k, v in got.items() if not k.startswith("@")} == rec
    messages = {r["message"] for r in recs}
    assert set(HOSTILE) <= messages
    assert any(r.get(KEY) in HOSTILE for r in recs)
    assert any(r.get("academy.action") == ACTION for r in recs)


@pytest.mark.parametrize("args", [
    ("export", "{pool}", "--format", "jsonl"),
    ("export", "{pool}", "--what", "actions", "--format", "jsonl"),
])
def test_export_jsonl_to_stdout_round_trips_exactly(home: Path, args: tuple[str, ...]) -> None:
    out = _raw_json(run_cli(home, *(a.format(pool=pool(home)) for a in args)))
    recs = [json.loads(ln) for ln in out.splitlines()]
    if "actions" in args:
        assert ACTION in {r["action"] for r in recs}
    else:
        assert set(HOSTILE) <= {r["message"] for r in recs}
        assert any(r.get(KEY) in HOSTILE for r in recs)


@pytest.mark.parametrize("args", [
    ("runs", "--format", "json"),
    ("report", "{pool}", "--format", "json"),
    ("diff", "{pool}", "{pool}", "--format", "json"),
    ("ask", "{pool}", "where did the time go?", "--builtin", "--format", "json"),
    ("steer", "{pool}", "--format", "json"),
])
def test_json_output_is_valid_exact_and_safe(home: Path, args: tuple[str, ...]) -> None:
    out = _raw_json(run_cli(home, *(a.format(pool=pool(home)) for a in args)))
    data = json.loads(out)
    strings = set(_strings(data))
    hostile = {POOL_NAME, ACTION, *HOSTILE}
    # The hostile text itself came through, character for character.
    assert any(h in s for s in strings for h in hostile), sorted(strings)[:20]
    assert "\\u202e" in out or "\\u001b" in out


def _strings(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, dict):
        return [s for k, x in v.items() for s in (k, *_strings(x))]
    if isinstance(v, list):
        return [s for x in v for s in _strings(x)]
    return []


# -- CSV: data into a pipe, visible on a terminal ----------------------------------------


def test_csv_into_a_pipe_is_exact(home: Path) -> None:
    out = run_cli(home, "export", pool(home), "--format", "csv").stdout.decode()
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert set(HOSTILE) <= {r["message"] for r in rows}
    runs = run_cli(home, "runs", "--format", "csv").stdout.decode()
    assert POOL_NAME in {r["pool"] for r in csv.DictReader(io.StringIO(runs, newline=""))}


@pytest.mark.parametrize("args", [
    ("export", "{pool}", "--format", "csv"),
    ("export", "{pool}", "--what", "actions", "--format", "csv"),
    ("runs", "--format", "csv"),
])
def test_csv_on_a_terminal_shows_controls_visibly(home: Path, args: tuple[str, ...]) -> None:
    out = run_in_pty(home, *(a.format(pool=pool(home)) for a in args))
    assert b"\\x1b" in out
    assert not forbidden(shown(out)), forbidden(shown(out))[:5]


# -- in process: the streams come back ---------------------------------------------------


def test_main_restores_the_streams_and_escapes_in_process(home: Path) -> None:
    from tui.cli import main

    before = sys.stdout, sys.stderr
    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        assert main(["--home", str(home), "steer", pool(home)]) == 0
        assert sys.stdout is buf and sys.stderr is err
        assert main(["--home", str(home), "report", "nope\x1b[2J"]) == 2
    assert (sys.stdout, sys.stderr) == before
    assert "\\x1b]0;pwned\\x07" in buf.getvalue() and not forbidden(buf.getvalue().encode())
    assert "nope\\x1b[2J" in err.getvalue() and not forbidden(err.getvalue().encode())


def test_the_writers_escape_split_characters_and_pass_the_rest_through() -> None:
    from tui.cli.out import SafeText, stdout_mode

    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    out = SafeText(text, "json")
    line = json.dumps({"m": "\u202e\x9b\u2028"}, ensure_ascii=False).encode() + b"\n"
    cut = line.index("\u2028".encode()) + 1  # inside the 3 bytes of U+2028
    out.buffer.write(line[:cut])
    out.buffer.write(line[cut:])
    out.finish()
    out.flush()
    got = raw.getvalue()
    assert got == b'{"m": "\\u202e\\u009b\\u2028"}\n' and json.loads(got) == json.loads(line)
    assert out.encoding == "utf-8" and not out.isatty() and out.writable()
    assert stdout_mode("csv", text) == "data" and stdout_mode("text", text) == "text"
    plain = SafeText(io.StringIO(), "text")
    assert plain.write("a\x1b[2J\tb\n") == 8 and plain.getvalue() == "a\\x1b[2J\tb\n"
    with pytest.raises(AttributeError):
        plain.buffer  # noqa: B018 (a StringIO has none, wrapped or not)


def test_values_nested_deeper_than_python_prints_are_read(tmp_path: Path) -> None:
    """A forged pool whose records nest values ~1,000 levels deep (orjson reads up to
    1,024; Python prints ~1,000, orjson writes 255) in an action's arguments and result,
    a workflow key and a tag: every command reads it, shows the records and finds them by
    the key. It had failed the whole read ("internal error: RecursionError", and
    "Recursion limit reached" from interning the tag)."""
    home = tmp_path / "home"
    where = home / "logs" / POOL_NAME
    where.mkdir(parents=True)
    deep = "[" * 1000 + "]" * 1000
    tag = "4f2cae67-976e-408d-8905-cd181007c3e8"

    def rec(i: int, extra: str = "", **kv: str) -> str:
        base = {"created": f"{1795839467 + i}.5", "name": "academy.handle", "levelno": "20",
                "msg": "m", "message": f"step {i}", **kv}
        return json.dumps(base)[:-1] + extra + "}"

    (where / "a.jsonlog").write_text("\n".join([
        rec(0),
        rec(1, f', "academy.action_args": {deep}, "fib.deep": {deep}',
            **{"academy.action": "work", "academy.action_state": "start",
               "academy.action_tag": tag}),
        rec(2, f', "academy.result": {deep}', **{"academy.action": "work",
                                                 "academy.action_state": "success",
                                                 "academy.action_tag": tag}),
        rec(3, f', "academy.message_tag": {deep}'),
    ]) + "\n")
    p = str(where)
    run_cli(home, "report", p, "--no-cache")  # exit 0, no traceback
    lines = run_cli(home, "events", p, "--format", "jsonl", "--no-cache").stdout.splitlines()
    assert [json.loads(x)["message"] for x in lines] == [f"step {i}" for i in range(4)]
    assert json.loads(lines[1])["academy.action_args"] == deep  # as text, as any nested
    found = run_cli(home, "events", p, "--where", "fib.deep!=None", "--no-cache").stdout
    assert b"step 1" in found and b"step 2" not in found
    acts = run_cli(home, "export", p, "--what", "actions", "--format", "jsonl", "--no-cache")
    [act] = [json.loads(x) for x in acts.stdout.splitlines()]
    assert act["status"] == "ok"
