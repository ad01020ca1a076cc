"""Events as JSON Lines (features.jsonl): every record once, in the order asked, each
checked against its own raw line read here with the standard library's json; worker
processes write the same bytes as one process; hostile lines (a record with its own
``@file``, an empty object, trailing blanks, bad UTF-8, a file gone) keep their
meaning."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from features.jsonl import jsonl
from features.run import Run
from features.typed import typed


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

