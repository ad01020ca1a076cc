"""The reader: tail safety, replacement, locations, bad input, parallel first load."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest

from features.events import Events
from features.loader import load
from features.reader import PoolReader


def rec(i: int, **extra: object) -> dict[str, object]:
    """A record shaped like Academy's JSON pool writes it (every value a string)."""
    d: dict[str, object] = {
        "formatted": f"message {i}", "name": "test", "msg": "message %s", "args": f"({i},)",
        "levelname": "INFO", "levelno": "20", "pathname": "/x.py", "filename": "x.py",
        "module": "x", "exc_info": "None", "exc_text": "None", "stack_info": "None",
        "lineno": "1", "funcName": "f", "created": str(1700000000.0 + i * 0.001),
        "msecs": "0.0", "relativeCreated": "0.0", "thread": "1", "threadName": "MainThread",
        "processName": "MainProcess", "process": "42",
    }
    d.update({k: str(v) for k, v in extra.items()})
    d["message"] = f"message {i}"
    return d


def line(i: int, **extra: object) -> bytes:
    return json.dumps(rec(i, **extra)).encode() + b"\n"


def messages(reader: PoolReader) -> list[str]:
    ev = Events(reader.store)
    return [ev.message[r] for r in ev.order]


def test_partial_line_is_held_until_complete(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonlog"
    full = line(0) + line(1)
    second = line(2)
    f.write_bytes(full + second[:37])
    r = PoolReader(str(tmp_path))
    res = r.poll()
    assert res.records == 2
    assert r.pending_bytes() == 37
    assert r.poll().records == 0  # nothing new: the half record is still held
    with f.open("ab") as fh:
        fh.write(second[37:])
    assert r.poll().records == 1
    assert messages(r) == ["message 0", "message 1", "message 2"]
    assert r.store.stats.bad_lines == 0


def test_byte_by_byte_writer_loses_and_doubles_nothing(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonlog"
    data = b"".join(line(i) for i in range(20))
    r = PoolReader(str(tmp_path))
    with f.open("wb") as fh:
        for k in range(0, len(data), 97):
            fh.write(data[k:k + 97])
            fh.flush()
            r.poll()
    r.poll()
    assert messages(r) == [f"message {i}" for i in range(20)]


def test_files_appearing_later_are_picked_up_and_merged_in_time(tmp_path: Path) -> None:
    (tmp_path / "a.jsonlog").write_bytes(line(0) + line(2) + line(4))
    r = PoolReader(str(tmp_path))
    r.poll()
    (tmp_path / "b.jsonlog").write_bytes(line(1) + line(3))
    res = r.poll()
    assert res.new_files == ["b.jsonlog"]
    assert messages(r) == [f"message {i}" for i in range(5)]


def test_every_event_knows_its_file_line_and_offset(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonlog"
    f.write_bytes(line(0) + b"garbage\n" + line(1) + b"\n" + line(2))
    r = PoolReader(str(tmp_path))
    r.poll()
    ev = Events(r.store)
    raw = f.read_bytes()
    assert [int(x) for x in ev.line[ev.order]] == [1, 3, 5]
    for row in ev.order:
        off, n = int(ev.offset[row]), int(ev.length[row])
        assert orjson.loads(raw[off:off + n]) == ev.record(int(row))
    assert r.store.bad[0].line == 2 and r.store.bad[0].reason == "not JSON"
    assert r.store.stats.blank_lines == 1


def test_replaced_file_with_same_prefix_is_not_doubled(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonlog"
    f.write_bytes(line(0) + line(1))
    r = PoolReader(str(tmp_path))
    r.poll()
    tmp = tmp_path / "a.tmp"
    tmp.write_bytes(line(0) + line(1) + line(2))
    os.replace(tmp, f)  # a new inode, as rsync or an editor would leave it
    res = r.poll()
    assert any("replaced" in n for n in res.notes)
    assert messages(r) == ["message 0", "message 1", "message 2"]


def test_a_replaced_file_read_on_keeps_its_new_records_workflow_keys(tmp_path: Path) -> None:
    """The records after a replaced file's known head keep the workflow's own keys: a
    filter on them finds every record (they were dropped with the head, and the new
    records read as if they had none)."""
    f = tmp_path / "a.jsonlog"
    f.write_bytes(b"".join(line(i, **{"fib.iteration": i}) for i in range(3)))
    r = PoolReader(str(tmp_path))
    r.poll()
    tmp = tmp_path / "a.tmp"
    tmp.write_bytes(b"".join(line(i, **{"fib.iteration": i}) for i in range(7)))
    os.replace(tmp, f)
    res = r.poll()
    assert any("replaced" in n for n in res.notes)
    ev = Events(r.store)
    assert messages(r) == [f"message {i}" for i in range(7)]
    assert [ev.column("fib.iteration")[row] for row in ev.order] == list(range(7))


def test_truncated_and_rewritten_file_keeps_what_was_read(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonlog"
    f.write_bytes(line(0) + line(1) + line(2))
    r = PoolReader(str(tmp_path))
    r.poll()
    f.write_bytes(line(0) + line(9))  # shorter, and different after the first record
    res = r.poll()
    assert any("truncated" in n for n in res.notes)
    assert sorted(messages(r)) == sorted(["message 0", "message 1", "message 2", "message 9"])


def test_deleted_file_keeps_its_records(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonlog"
    f.write_bytes(line(0))
    (tmp_path / "b.jsonlog").write_bytes(line(1))
    r = PoolReader(str(tmp_path))
    r.poll()
    f.unlink()
    res = r.poll()
    assert any("deleted" in n for n in res.notes)
    assert len(messages(r)) == 2
    assert r.store.files[0].status == "deleted"


def test_bad_lines_are_counted_kept_and_the_rest_is_read(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonlog"
    bad_utf8 = json.dumps(rec(5)).encode().replace(b"message 5", b"message \xff5")
    content = (line(0) + b"not json at all\n" + b"[1, 2, 3]\n" + b'"a string"\n'
               + b"\x00\x01\x02\xfe\xff binary junk\n" + bad_utf8 + b"\n" + line(1)
               + b'{"truncated": \n' + line(2))
    f.write_bytes(content)
    r = PoolReader(str(tmp_path))
    r.poll()
    reasons = [b.reason for b in r.store.bad]
    assert reasons == ["not JSON", "not a JSON object", "not a JSON object",
                       "not JSON (invalid UTF-8)", "invalid UTF-8", "truncated or corrupt JSON"]
    assert [b.line for b in r.store.bad] == [2, 3, 4, 5, 6, 8]
    msgs = messages(r)
    assert msgs[:2] == ["message 0", "message 1"] or "message 0" in msgs
    assert {"message 0", "message 1", "message 2"} <= set(msgs)
    # The bad UTF-8 record is recovered with a replacement character, and flagged.
    assert any(m.startswith("message \ufffd") for m in msgs)
    ev = Events(r.store)
    assert int(ev.column("@repaired").sum()) == 1


def test_interleaved_fork_writes_are_recovered_from_the_sample(sample) -> None:  # type: ignore[no-untyped-def]
    pool = sample("fork")
    lines = (pool / "ada82589-cde4-4909-a683-6c501280a65b.jsonlog").read_bytes().splitlines()
    good = 0
    for raw in lines:
        try:
            json.loads(raw)
            good += 1
        except ValueError:
            pass
    r = PoolReader(str(pool))
    r.poll()
    assert r.store.stats.bad_lines == len(lines) - good == 10
    # Each torn pair holds two records: the embedded one and the one torn around it.
    assert len(r.store) == good + 10
    ev = Events(r.store)
    tags = ev.strings("academy.action_tag")
    assert len({t for t in tags if t}) > 0
    for row in np.flatnonzero(ev.column("@repaired")):
        assert ev.record(int(row)) is not None


def test_empty_files_and_other_entries(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonlog").write_bytes(b"")
    (tmp_path / "a.jsonlog").write_bytes(line(0))
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    r = PoolReader(str(tmp_path))
    r.poll()
    assert len(r.store) == 1
    assert r.store.stats.other_files == 2
    assert sorted(f.name for f in r.store.files) == ["a.jsonlog", "empty.jsonlog"]


def test_ten_megabyte_line(tmp_path: Path) -> None:
    big = rec(0, **{"academy.result": "x" * 10_000_000})
    big["message"] = "y" * 5_000_000
    (tmp_path / "a.jsonlog").write_bytes(json.dumps(big).encode() + b"\n" + line(1)
                                         + b"z" * 10_000_000 + b"\n" + line(2))
    r = PoolReader(str(tmp_path))
    r.poll()
    ev = Events(r.store)
    assert len(ev) == 3
    assert [b.reason for b in r.store.bad] == ["not JSON"]
    row0 = int(ev.order[0])
    assert ev.message_cut(row0)  # held in memory capped, the record has it whole
    rec0 = ev.record(row0)
    assert rec0 is not None and len(rec0["academy.result"]) == 10_000_000
    assert len(r.store.bad[0].preview) <= 200


def test_ten_thousand_files(tmp_path: Path) -> None:
    for i in range(10_000):
        (tmp_path / f"{i:05d}.jsonlog").write_bytes(line(i))
    r = PoolReader(str(tmp_path))
    load(r)
    assert len(r.store) == 10_000
    assert r.poll().records == 0
    # The file column widened past a byte as files came; every row still says its own.
    ev = Events(r.store)
    assert ev.file.dtype == np.int16
    assert sorted(ev.file_names[f] for f in ev.file.tolist()) == \
        sorted(f"{i:05d}.jsonlog" for i in range(10_000))


def test_typed_dialect_normalises_to_the_same_model(tmp_path: Path) -> None:
    strings = rec(1, **{"academy.action_tag": "2F1C7E4A-0000-4000-8000-00000000ABCD",
                        "academy.agent_id": "AgentId<5B2ACFF4>", "fib.iteration": 7})
    typed = dict(rec(2))
    typed.update({"created": 1700000000.002, "levelno": 30, "process": 42, "thread": 1,
                  "exc_text": None, "academy.action_tag": "2f1c7e4a-0000-4000-8000-00000000abcd",
                  "academy.agent_id": "AgentId<5b2acff4>", "fib.iteration": 8})
    (tmp_path / "a.jsonlog").write_bytes(json.dumps(strings).encode() + b"\n")
    (tmp_path / "b.jsonlog").write_bytes(json.dumps(typed).encode() + b"\n")
    r = PoolReader(str(tmp_path))
    r.poll()
    ev = Events(r.store)
    assert ev.created.dtype == np.float64 and abs(ev.created.max() - 1700000000.002) < 1e-6
    assert sorted(ev.ints["levelno"].tolist()) == [20, 30]
    tags = ev.strings("academy.action_tag")
    assert tags[0] == tags[1] == "2f1c7e4a-0000-4000-8000-00000000abcd"
    assert set(ev.strings("academy.agent_id")) == {"AgentId<5b2acff4>"}
    assert sorted(ev.numeric("fib.iteration").tolist()) == [7.0, 8.0]
    assert not ev.has_exc().any()


def test_parallel_first_load_equals_serial(tmp_path: Path, sample) -> None:  # type: ignore[no-untyped-def]
    src = sample("pairs")
    for p in src.iterdir():
        shutil.copy(p, tmp_path / p.name)
    serial = PoolReader(str(tmp_path))
    load(serial, workers=1)
    par = PoolReader(str(tmp_path))
    load(par, workers=2, chunk=64 * 1024, parallel_min=0)
    a, b = Events(serial.store), Events(par.store)
    assert len(a) == len(b) == 10_943
    key = lambda ev: sorted(zip(ev.file_names and [ev.file_names[i] for i in ev.file],  # noqa: E731
                                ev.line.tolist(), ev.message, strict=True))
    assert key(a) == key(b)
    assert par.poll().records == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX permissions")
def test_unreadable_file_is_reported_and_the_rest_read(tmp_path: Path) -> None:
    import tempfile

    pool = Path(tempfile.mkdtemp(prefix="acad-unreadable-"))
    try:
        os.chmod(pool, 0o755)
        (pool / "a.jsonlog").write_bytes(line(0))
        os.chmod(pool / "a.jsonlog", 0o644)
        secret = pool / "b.jsonlog"
        secret.write_bytes(line(1))
        os.chmod(secret, 0o000)
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover (child)
            try:
                if os.geteuid() == 0:  # root reads anything: become nobody to check
                    os.setgid(65534)
                    os.setuid(65534)
                r = PoolReader(str(pool))
                res = r.poll()
                out = {"n": len(r.store), "unreadable": r.store.stats.unreadable,
                       "notes": res.notes}
                os.write(wfd, json.dumps(out).encode())
            finally:
                os._exit(0)
        os.close(wfd)
        data = b""
        while chunk := os.read(rfd, 65536):
            data += chunk
        os.waitpid(pid, 0)
        out = json.loads(data)
        assert out["n"] == 1 and out["unreadable"] == 1
        assert "b.jsonlog: cannot read (Permission denied)" in out["notes"]
    finally:
        shutil.rmtree(pool, ignore_errors=True)


def test_lazy_values_cut_from_lines_equal_a_full_parse(tmp_path: Path, sample) -> None:  # type: ignore[no-untyped-def]
    """A lazy key's values are cut out of the lines when that is unambiguous and parsed
    otherwise; either way they equal ``scalar(json.loads(line)[key])`` for every key, on
    the samples and on hostile lines: typed values, nested objects, escapes, a key twice,
    a non-ASCII key, keys inside string values, no spaces after colons."""
    from features.normalize import scalar
    from features.run import Run

    base = {"created": "1700000000.0", "msg": "m", "levelno": "20", "name": "x"}
    lines = [
        json.dumps({**base, "k": "12", "s": "plain"}),
        json.dumps({**base, "k": 12.5, "s": 'has "quotes" and \\ slash'}),
        json.dumps({**base, "k": None, "s": "ünïcode"}),
        json.dumps({**base, "k": True, "s": {"k": "nested", "inner": 1}}),
        json.dumps({**base, "k": [1, 2], "s": "x"}),
        json.dumps({**base, "s": '"k": 99 inside a string', "k": "None"}),
        json.dumps({**base, "k": "-3", "ключ": "значение", "s": "{not an object}"}),
        json.dumps({**base, "k": "7"}, separators=(",", ":")),
        '{"created": "1700000000.0", "msg": "m", "k": "1", "k": "2"}',
        json.dumps({**base, "k": -0.0, "s": "a\nb"}),
    ]
    pool = tmp_path / "pool"
    pool.mkdir()
    (pool / "a.jsonlog").write_text("\n".join(lines) + "\n")
    for p in (pool, sample("pairs"), sample("fork")):
        run = Run(p)
        run.load()
        ev = run.events()
        for key in list(ev.store.key_shapes):
            if not ev.is_lazy(key):
                continue
            got = ev.lazy(key)
            rows = ev.store.rows_with_key(key, ev.n)
            for r, rec in zip(rows.tolist(), ev.records(rows), strict=True):
                want = scalar(rec.get(key)) if rec is not None else None
                assert type(got[r]) is type(want) and got[r] == want, (p.name, key, r)


@pytest.mark.parametrize("part", [1, 3, 1 << 16])
def test_numeric_at_types_a_key_part_by_part_as_the_whole_column(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: int) -> None:
    """``numeric_at`` types a kept user key a few values at a time: the same values and
    the same decision (numeric or not) as the whole column, wherever in the run the
    text, the null or the big integer falls."""
    import features.events as events_mod

    monkeypatch.setattr(events_mod, "NUMERIC_PART", part)
    values = {
        "x.num": ["1", "2.5", "None", "4", "None", "None", "7", "8"],
        "x.late": ["1", "2", "3", "4", "5", "6", "7", "abc"],  # text only at the end
        "x.big": ["1", "99999999999999999999", "3", "None", "5", "6", "7", "8"],
        "x.nulls": ["None"] * 8,
        "x.bool": ["1", "2", "3", "4", "5", "6", "7", "true"],
    }
    lines = [line(i, **{k: v[i] for k, v in values.items() if i % 3 or k != "x.num"})
             for i in range(8)]
    (tmp_path / "a.jsonlog").write_bytes(b"".join(lines))
    r = PoolReader(str(tmp_path))
    r.poll()
    ev = Events(r.store)
    rows = np.array([7, 0, 3, 3, 5, 1], dtype=np.int64)
    for key in values:
        assert r.store.user_value_parts(key, 0, ev.n) is not None, key  # kept at ingest
        whole = ev.numeric(key)
        got = ev.numeric_at(key, rows)
        if whole is None:
            assert got is None, key
        else:
            assert got is not None and np.array_equal(got, whole[rows], equal_nan=True), key
    assert ev.numeric_at("x.late", rows) is None and ev.numeric_at("x.num", rows) is not None


def test_integer_keys_widen_as_their_values_come(tmp_path: Path) -> None:
    """Log levels and process ids are held in the narrowest integer type their values
    allow, widened as bigger (or more negative) ones arrive in later polls: every
    value reads back as written, and a snapshot taken before keeps its own."""
    f = tmp_path / "a.jsonlog"
    f.write_bytes(line(0, levelno=20, process=42))
    r = PoolReader(str(tmp_path))
    r.poll()
    before = Events(r.store)
    assert before.ints["levelno"].dtype == before.ints["process"].dtype == np.int8
    with open(f, "ab") as out:
        out.write(line(1, levelno=300, process=4_000_000) + line(2, levelno=-200, process=7))
    r.poll()
    ev = Events(r.store)
    assert ev.ints["levelno"].tolist() == [20, 300, -200]
    assert ev.ints["process"].tolist() == [42, 4_000_000, 7]
    assert ev.ints["levelno"].dtype == np.int16 and ev.ints["process"].dtype == np.int32
    assert before.ints["levelno"].tolist() == [20] and before.ints["process"].tolist() == [42]
