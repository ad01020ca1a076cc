"""Events as JSON Lines (features.jsonl): every record once, in the order asked, each
checked against its own raw line read here with the standard library's json; worker
processes write the same bytes as one process; hostile lines (a record with its own
``@file``, an empty object, trailing blanks, bad UTF-8, a file gone) keep their
meaning."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from features import jsonl as J
from features.jsonl import jsonl, jsonl_to_fd
from features.run import Run
from features.safe import json_escape_bytes
from features.typed import _typed_py as typed  # the rule itself, not a compiled stand-in


def _raw_lines(pool: Path) -> dict[tuple[str, int], bytes]:
    """(file name, line number from 1) -> the line's bytes, for every non-blank line."""
    out = {}
    for f in pool.glob("*.jsonlog"):
        for i, line in enumerate(f.read_bytes().split(b"\n")):
            if line.strip():
                out[(f.name, i + 1)] = line
    return out


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(set(keys)) == len(keys), f"a key written twice: {keys}"
    return dict(pairs)


def _loads(text: bytes) -> dict[str, Any]:
    """A line as JSON, refusing a key written twice (json would keep the last)."""
    return json.loads(text, object_pairs_hook=_pairs)  # type: ignore[no-any-return]


def _out(run: Run, raw: bool = False, **kw: Any) -> bytes:
    return b"".join(jsonl(run.events(), run.select(""), raw=raw, **kw))


@pytest.fixture(scope="module")
def pool_run(samples_home: Path) -> Run:
    run = Run(samples_home / "logs" / "bfb81d0a-658d-4de2-8c6a-f3c39ba09f51", cache=False)
    run.load()
    return run


@pytest.mark.parametrize("raw", [False, True])
def test_every_record_once_as_written_or_typed(pool_run: Run, raw: bool) -> None:
    lines = _raw_lines(pool_run.path)
    out = _out(pool_run, raw).splitlines()
    assert len(out) == len(lines) == pool_run.events().n
    seen = []
    ev = pool_run.events()
    for text in out:
        got = _loads(text)
        where = (got["@file"], got["@line"])
        seen.append(where)
        rec = json.loads(lines[where])
        if raw:
            assert got == {**rec, "@file": where[0], "@line": where[1]}
        else:
            t = got.pop("@t")
            assert got == {**{k: typed(v) for k, v in rec.items()}, "@file": where[0],
                           "@line": where[1]}
            assert t == pytest.approx(float(rec["created"]) - ev.t0, abs=1e-6)
    assert set(seen) == set(lines)
    # In the run's merged order, as asked:
    assert seen == [(ev.file_names[ev.file[r]], int(ev.line[r])) for r in pool_run.select("")]


@pytest.mark.parametrize("raw", [False, True])
def test_workers_write_the_same_bytes_as_one_process(pool_run: Run, raw: bool) -> None:
    one = _out(pool_run, raw, workers=1)
    assert _out(pool_run, raw, workers=2, parallel_min=0, block=37) == one
    rows = np.arange(pool_run.events().n)[::-3]  # any order asked is kept
    ev = pool_run.events()
    picked = b"".join(jsonl(ev, rows, raw=raw, workers=2, parallel_min=0, block=11))
    assert [json.loads(x)["@line"] for x in picked.splitlines()] == \
        [int(ev.line[r]) for r in rows]


def test_hostile_lines_keep_their_meaning(tmp_path: Path) -> None:
    pool = tmp_path / "logs" / str(uuid.uuid4())
    pool.mkdir(parents=True)
    base = {"created": "1795839467.5", "name": "x", "levelno": "20", "msg": "m"}
    lines = [
        json.dumps({**base, "message": "own location", "@file": "forged", "@line": -1}),
        json.dumps({**base, "message": "trailing blanks"}) + "  \r",
        json.dumps({**base, "message": "nested", "extra": {"a": [1, 2]}}),
        "{}",
        json.dumps({**base, "message": "after an empty one", "created": "1795839468"}),
    ]
    (pool / "a.jsonlog").write_text("\n".join(lines) + "\n")
    bad = json.dumps({**base, "message": "bad byte:XX", "created": "1795839469"}).encode()
    (pool / "b.jsonlog").write_bytes(bad.replace(b"XX", b"\xff\xfe") + b"\n")
    (pool / "c.jsonlog").write_text(json.dumps({**base, "message": "file gone",
                                                "created": "1795839470"}) + "\n")
    run = Run(pool, cache=False)
    run.load()
    os.remove(pool / "c.jsonlog")
    for raw in (False, True):
        one = _out(run, raw, workers=1)
        assert _out(run, raw, workers=2, parallel_min=0, block=2) == one
        got = [_loads(x) for x in one.splitlines()]
        by_msg = {g.get("message"): g for g in got}
        forged = by_msg["own location"]
        assert (forged["@file"], forged["@line"]) == ("a.jsonlog", 1)
        assert by_msg["trailing blanks"]["@line"] == 2
        assert by_msg["nested"]["extra"] == ({"a": [1, 2]} if raw else "{'a': [1, 2]}")
        empty = [g for g in got if "message" not in g]
        assert [(g["@file"], g["@line"]) for g in empty] == [("a.jsonlog", 4)]
        assert set(empty[0]) == ({"@file", "@line"} if raw else {"@file", "@line", "@t"})
        repaired = next(g for g in got if str(g.get("message", "")).startswith("bad byte"))
        assert repaired["@file"] == "b.jsonlog"
        gone = by_msg["file gone"]
        assert gone["@unreadable"] is True and gone["@file"] == "c.jsonlog"
        assert len(got) == 7
        assert _through_fd(tmp_path, "file", lambda fd, raw=raw: jsonl_to_fd(  # type: ignore[misc]
            fd, run.events(), run.select(""), raw=raw, workers=2, parallel_min=0, block=2,
            escape=True)) == json_escape_bytes(one)
        if raw:  # lines of files unchanged since read are spliced without a parse
            as_read = run.files_as_read()
            names = {run.store.files[f].name for f in as_read}
            assert names == {"a.jsonlog", "b.jsonlog"}  # c is gone
            assert _out(run, True, workers=1, as_read=as_read) == one
            assert _out(run, True, workers=2, parallel_min=0, block=2, as_read=as_read) == one


def test_raw_lines_of_a_changed_file_are_parsed_again(tmp_path: Path) -> None:
    """A file rewritten after it was read (same length, one record now garbage) is no
    longer taken as read: its lines are parsed again, the garbage said unreadable, never
    written out as if it were a record."""
    pool = tmp_path / "logs" / str(uuid.uuid4())
    pool.mkdir(parents=True)
    recs = [json.dumps({"created": f"179583946{i}.5", "name": "x", "msg": "m",
                        "message": f"record {i}"}) for i in range(3)]
    f = pool / "a.jsonlog"
    f.write_text("\n".join(recs) + "\n")
    run = Run(pool, cache=False)
    run.load()
    assert run.files_as_read() == {0}
    text = f.read_bytes()
    f.write_bytes(text.replace(b'{"created": "1795839461.5"', b'["created", "1795839461.5"'))
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a write changes mtime
    assert run.files_as_read() == set()
    got = [_loads(x) for x in _out(run, True, workers=1,
                                   as_read=run.files_as_read()).splitlines()]
    assert [g.get("@unreadable", False) for g in got] == [False, True, False]
    assert got[1]["message"] == "record 1" and got[1]["@line"] == 2



HOSTILE = ["clear\x1b[2J", "bidi \u202egnp.exe\u202c", "c1 \x9b31m nel\x85", "del\x7f",
           "zero\u200bwidth\ufeff", "line\u2028sep", "accents é 日本 🙂", "nul\x00 bel\x07"]
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069"
                       "\u200b-\u200f\u2028\u2029\ufeff\u061c]")


@pytest.fixture
def hostile_run(tmp_path: Path) -> Run:
    """Three files of 40 records whose messages, a key and its values hold terminal
    controls, bidi and zero-width characters, separators and plain accents."""
    pool = tmp_path / "logs" / str(uuid.uuid4())
    pool.mkdir(parents=True)
    for f in range(3):
        recs = [{"created": f"{1795839467 + i * 0.01 + f * 0.003:.3f}", "name": "x",
                 "levelno": "20", "msg": "m", "message": HOSTILE[(i + f) % len(HOSTILE)],
                 "evil\x1b[6n.key": HOSTILE[i % len(HOSTILE)], "n": str(i)}
                for i in range(40)]
        (pool / f"{uuid.uuid4()}.jsonlog").write_text(
            "".join(json.dumps(r, ensure_ascii=f == 0) + "\n" for r in recs))
    run = Run(pool, cache=False)
    run.load()
    return run


def _through_fd(tmp_path: Path, sink: str, write: Callable[[int], None]) -> bytes:
    """What ``write`` puts on a file descriptor: a new file, a file opened to append to
    (``sendfile`` refuses one on some kernels), or a pipe read by a thread."""
    if sink == "pipe":
        r, w = os.pipe()
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(_read_all(r)))
        reader.start()
        try:
            write(w)
        finally:
            os.close(w)
            reader.join()
            os.close(r)
        return got[0]
    out = tmp_path / f"out-{uuid.uuid4().hex}"
    before = b"before\n" if sink == "append" else b""
    out.write_bytes(before)
    with open(out, "ab" if sink == "append" else "wb") as f:
        write(f.fileno())
    data = out.read_bytes()
    assert data.startswith(before)
    return data[len(before):]


def _read_all(fd: int) -> bytes:
    parts = []
    while chunk := os.read(fd, 1 << 16):
        parts.append(chunk)
    return b"".join(parts)


@pytest.mark.parametrize("raw", [False, True])
@pytest.mark.parametrize("sink", ["file", "append", "pipe"])
def test_workers_escape_and_hand_their_blocks_over_in_files(
        hostile_run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw: bool,
        sink: str) -> None:
    """The workers escape their blocks as the command line's guard did (json_escape of
    the whole text) and leave them in files of a private directory that this process
    has the kernel copy on: the same bytes, in order, every file and the directory gone."""
    ev, rows = hostile_run.events(), hostile_run.select("")
    plain = b"".join(jsonl(ev, rows, raw=raw, workers=1))
    want = json_escape_bytes(plain)
    assert want != plain and not FORBIDDEN.search(want.decode())
    assert [json.loads(x) for x in want.splitlines()] == \
        [json.loads(x) for x in plain.splitlines()]  # lossless
    assert b"".join(jsonl(ev, rows, raw=raw, workers=2, parallel_min=0, block=7,
                          escape=True)) == want
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(J, "SPILL_ROOTS", (str(spill),))
    monkeypatch.setattr(J, "SPILL_ROOM", 0)
    sent: list[str] = []
    real_send = J._send

    def send(fd: int, path: str, size: int) -> None:  # the real one, counted
        sent.append(path)
        real_send(fd, path, size)
        assert not os.path.exists(path)  # gone once sent: the output never piles up

    monkeypatch.setattr(J, "_send", send)
    got = _through_fd(tmp_path, sink, lambda fd: jsonl_to_fd(
        fd, ev, rows, raw=raw, workers=2, parallel_min=0, block=7, escape=True))
    assert got == want
    assert len(sent) == -(-len(rows) // 7)  # every block came as a file
    assert all(os.path.dirname(p) != str(spill) for p in sent)  # in a directory of its own
    assert list(spill.iterdir()) == []  # every file removed, and the directory


def test_a_block_that_cannot_be_left_in_a_file_comes_back_through_the_pipe(
        hostile_run: Run, tmp_path: Path) -> None:
    ev, rows = hostile_run.events(), hostile_run.select("")[:10]
    want = json_escape_bytes(b"".join(jsonl(ev, rows, workers=1)))
    done = J._work(J._block(ev, rows, False, None, True, str(tmp_path / "gone")))
    assert done.path is None and done.text == want
    there = tmp_path / "there"
    there.mkdir()
    done = J._work(J._block(ev, rows, False, None, True, str(there)))
    assert done.path is not None and Path(done.path).read_bytes() == want
    assert done.size == len(want)


def test_spill_directories_of_processes_gone_are_removed(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed before it removed its spill directory (kill -9, the OOM killer) leaves
    its blocks in memory (/dev/shm); the next one removes them. Only this user's
    directories named for a process that is gone: not a running process's, not a
    symbolic link (nor what it points to), not another user's, not another name."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = int(done.stdout)  # exited: its id names no process (until reused)
    root = tmp_path / "shm"
    root.mkdir()
    stale = root / f"{J.SPILL_PREFIX}{dead}-abc"
    stale.mkdir()
    (stale / "block").write_bytes(b"x" * 1000)
    mine = root / f"{J.SPILL_PREFIX}{os.getpid()}-def"
    mine.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("keep")
    link = root / f"{J.SPILL_PREFIX}{dead}-link"
    link.symlink_to(elsewhere)
    odd = [root / f"{J.SPILL_PREFIX}notapid-x", root / f"other-{dead}-x"]
    for d in odd:
        d.mkdir()
    plain_file = root / f"{J.SPILL_PREFIX}{dead}-file"
    plain_file.write_text("a file")
    kept = [mine, link, *odd, plain_file]
    if os.getuid() == 0:  # a directory another user owns (only root can make one here)
        theirs = root / f"{J.SPILL_PREFIX}{dead}-theirs"
        theirs.mkdir()
        os.chown(theirs, 4242, 4242)
        kept.append(theirs)
    monkeypatch.setattr(J, "SPILL_ROOTS", (str(root),))
    monkeypatch.setattr(J, "SPILL_ROOM", 0)
    new = J._spill_dir()
    assert new is not None and Path(new).name.startswith(f"{J.SPILL_PREFIX}{os.getpid()}-")
    assert not stale.exists()
    assert all(os.path.lexists(k) for k in kept)
    assert (elsewhere / "keep").read_text() == "keep"
