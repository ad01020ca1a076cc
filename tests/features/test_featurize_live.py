"""The live featurizer's calls, poll by poll, against a pass over the run as read so far.

Real sample pools are written back a few lines at a time, each file cut at its own
places (so a call's start arrives before its end, an agent's side before its caller's),
and after each poll what the featurizer hands out must equal
:func:`features.featurize.action_features` over the whole run at those calls: every
feature (the context ones, counted from the other calls, included), the identity columns
and the completion order.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pytest

from features.featurize import Features, action_features
from features.featurize_live import ActionFeaturizer, _Pairs
from features.run import Run

SAMPLES = ("pairs", "thread", "exception", "http", "redis", "fork", "agent_driver")
IDENTITY = ("tag", "action", "agent_class", "agent_id", "caller", "agent_file", "status",
            "row_start", "row_exec", "row_end")


def _grow(src: Path, dst: Path, pieces: int) -> list[dict[str, list[bytes]]]:
    """Per poll, the lines each file of ``src`` gets: file ``i`` is cut at its own
    places (shifted by its index), so the files run ahead of each other."""
    files = sorted(src.glob("*.jsonlog"))
    lines = {f.name: f.read_bytes().splitlines(keepends=True) for f in files}
    rng = np.random.default_rng(len(files))
    plan: list[dict[str, list[bytes]]] = [{} for _ in range(pieces)]
    for name, ls in lines.items():
        cuts = np.sort(rng.integers(0, len(ls) + 1, pieces - 1)).tolist()
        edges = [0, *cuts, len(ls)]
        for k in range(pieces):
            plan[k][name] = ls[edges[k]:edges[k + 1]]
    dst.mkdir()
    return plan


def _same(got_col: np.ndarray, want_col: np.ndarray) -> bool:
    if got_col.dtype.kind == "f" or want_col.dtype.kind == "f":
        return np.array_equal(np.asarray(got_col, dtype=np.float64),
                              np.asarray(want_col, dtype=np.float64), equal_nan=True)
    return got_col.tolist() == want_col.tolist()


def _check(run: Run, got_tags: list[str], got: object) -> None:
    full = action_features(run)
    pos = {t: i for i, t in enumerate(full.table["tag"].tolist())}
    rows = [pos[t] for t in got_tags]
    table = got.table  # type: ignore[attr-defined]
    for name in got.names:  # type: ignore[attr-defined]
        if name.endswith("_code"):  # codes follow first appearance in each
            continue
        assert _same(table[name], full.table[name][rows]), name
    for name in full.names:  # an extra key none of the new calls has: NaN for them
        if name not in got.names:  # type: ignore[attr-defined]
            assert np.isnan(full.table[name][rows]).all(), name
    for name in IDENTITY:
        assert _same(table[name], full.table[name][rows]), name
    # Completion order, ties in start order.
    done = full.table["t_done"][rows]
    assert (np.diff(done) >= 0).all()
    ranks = np.array(rows)
    ties = np.flatnonzero(np.diff(done) == 0)
    assert (ranks[ties] < ranks[ties + 1]).all()


def _polls(run: Run, fz: ActionFeaturizer, plan: list[dict[str, list[bytes]]]
           ) -> list[Features]:
    """Each piece of ``plan`` written, read and featurised; each poll checked."""
    out = []
    for k, piece in enumerate(plan):
        for fname, ls in piece.items():
            with open(run.path / fname, "ab") as fh:
                fh.writelines(ls)
        if k == 0:
            run.load()
        else:
            run.refresh()
        got = fz.update(run)
        _check(run, got.table["tag"].tolist(), got)
        out.append(got)
    return out


@pytest.mark.parametrize("name", SAMPLES)
def test_each_poll_equals_a_pass_over_the_run(sample: Callable[[str], Path], tmp_path: Path,
                                               name: str) -> None:
    dst = tmp_path / "pool"
    plan = _grow(sample(name), dst, pieces=9)
    fz = ActionFeaturizer()
    run = Run(dst)
    handed: list[str] = []
    for got in _polls(run, fz, plan):
        handed += got.table["tag"].tolist()
    assert fz._ctx is not None  # the later polls took the incremental path
    # Over: the files' times put back an hour, the run is no longer live, and the calls
    # that were in flight and are now orphaned with an end are handed out once.
    old = os.stat(dst).st_mtime - 3600
    for f in dst.glob("*.jsonlog"):
        os.utime(f, (old, old))
    run.refresh()
    assert not run.live
    got = fz.update(run)
    _check(run, got.table["tag"].tolist(), got)
    handed += got.table["tag"].tolist()
    assert len(handed) == len(set(handed))
    full = action_features(run).table
    done = np.isin(full["status"], ("ok", "exception", "cancelled", "orphaned")) & \
        np.isfinite(full["t_done"])
    assert sorted(handed) == sorted(full["tag"][done].tolist())


def test_pairs_count_what_comes_before() -> None:
    """The ordered pairs against a plain sort, through inserts (a few: in place; many: one
    merge), removals and ties."""
    rng = np.random.default_rng(3)
    held: dict[int, float] = {}
    pairs = _Pairs()
    for step in range(80):
        rem = [(held.pop(c), c) for c in list(held)[: int(rng.integers(0, 4))]] \
            if step % 3 else []
        add = []
        for _ in range(int(rng.integers(0, 300 if step % 10 == 0 else 8))):
            c = int(rng.integers(0, 100_000))
            if c not in held:
                held[c] = float(rng.integers(0, 20))  # many equal values
                add.append((held[c], c))
        pairs.update(np.array([v for v, _ in rem]), np.array([c for _, c in rem], dtype=int),
                     np.array([v for v, _ in add]), np.array([c for _, c in add], dtype=int))
        want = sorted((v, c) for c, v in held.items())
        assert list(zip(pairs.v.tolist(), pairs.c.tolist(), strict=True)) == want
        for v, c in [(float(rng.integers(0, 20)), int(rng.integers(0, 100_000)))
                     for _ in range(5)]:
            assert pairs.rank(v, c) == sum(1 for p in want if p < (v, c))


def _clone(recs: list[dict[str, object]], old: str, new: str, times: list[float]
           ) -> list[bytes]:
    """``recs`` as lines of another call (tag ``new``) at ``times``."""
    out = []
    for rec, t in zip(recs, times, strict=True):
        line = orjson.dumps({**rec, "created": repr(t)}).replace(old.encode(), new.encode())
        out.append(line + b"\n")
    return out


def test_skewed_clocks_and_windows_opened_at_once(sample: Callable[[str], Path],
                                                  tmp_path: Path) -> None:
    """Calls the sample's clocks never make: one whose agent side is logged after
    everything else (its execution starts at the run's last event, while another
    execution is still open), and two calls on one agent whose executions open at the
    same instant, with an untagged record of the agent inside both windows (it is the
    call's that comes last in start order, not the one first read). Each is featurised
    as a pass over the run does."""
    src = sample("pairs")
    dst = tmp_path / "pool"
    plan = _grow(src, dst, pieces=3)
    by_file = {n: [orjson.loads(x) for x in b"".join(ls for p in plan for ls in p[n]
                                                    ).splitlines()] for n in plan[0]}
    tag = next(r["academy.action_tag"] for rs in by_file.values() for r in rs
               if r.get("academy.action_state") == "execute_start")
    mine = {n: [r for r in rs if tag in orjson.dumps(r).decode()] for n, rs in by_file.items()}
    cf = next(n for n, rs in mine.items() if any(r.get("academy.action_state") == "start"
                                                 for r in rs))
    af = next(n for n, rs in mine.items() if any(r.get("academy.action_state") ==
                                                 "execute_start" for r in rs))
    aid = next(r["academy.agent_id"] for r in mine[cf] if r.get("academy.agent_id"))
    free = next(r for r in by_file[af] if r.get("academy.agent_id") == aid and
                "academy.action_tag" not in r and "academy.message_tag" not in r)
    t = max(float(r["created"]) for rs in by_file.values() for r in rs) + 10
    caller, agent = mine[cf], mine[af]
    upto = next(i for i, r in enumerate(agent) if r.get("academy.action_state") ==
                "execute_start") + 1
    wait = next(i for i, r in enumerate(caller) if r.get("academy.action_state") == "waiting")
    extra: dict[str, list[bytes]] = {cf: [], af: []}

    def call(new: str, c0: float, a_times: list[float], open_: bool = False) -> None:
        cr = caller[:wait] if open_ else caller
        extra[cf] += _clone(cr, tag, new, [c0 + 0.01 * i for i in range(len(cr))])
        extra[af] += _clone(agent[:upto] if open_ else agent, tag, new, a_times)
        assert len(a_times) == (upto if open_ else len(agent))

    call("0000000a-0000-4000-8000-00000000000a", t + 1, [t + 30] * len(agent))  # skewed
    call("0000000b-0000-4000-8000-00000000000b", t + 4, [t + 5] * upto, open_=True)  # still open
    # Z1 read first, Z2 started first: the record at t+7.5 is Z1's (the later start).
    z_times = [t + 7] * upto + [t + 8] * (len(agent) - upto)
    call("0000000c-0000-4000-8000-00000000000c", t + 6.5, z_times)
    call("0000000d-0000-4000-8000-00000000000d", t + 6.0,
         [t + 7] * upto + [t + 9] * (len(agent) - upto))
    extra[af] += _clone([{**free, "fib.delay_s": 123.0}], tag, tag, [t + 7.5])
    fz = ActionFeaturizer()
    run = Run(dst)
    *_, got = _polls(run, fz, [*plan, extra])
    tags = got.table["tag"].tolist()
    assert {"0000000a-0000-4000-8000-00000000000a", "0000000c-0000-4000-8000-00000000000c",
            "0000000d-0000-4000-8000-00000000000d"} <= set(tags)
    # At the run's last event the open execution counts as over, as the pass says.
    assert fz._ctx is not None and fz._ctx.n_open >= 1
    assert run.events().t1 == got.table["t_exec_start"][
        tags.index("0000000a-0000-4000-8000-00000000000a")]
    z1 = tags.index("0000000c-0000-4000-8000-00000000000c")
    assert got.table["extra.fib.delay_s"][z1] == 123.0


def test_context_kept_up_to_date_equals_one_built_at_once() -> None:
    """Calls registered again and again with changing fields (an end learnt, a start
    corrected, a caller or agent learnt later, values going missing) leave the context as
    registering their last fields at once does."""
    from features.featurize_live import _Context

    rng = np.random.default_rng(11)

    def fields(codes: np.ndarray) -> dict[str, np.ndarray]:
        n = len(codes)

        def t() -> np.ndarray:
            v = rng.integers(0, 30, n).astype(np.float64)  # many ties
            v[rng.random(n) < 0.3] = np.nan
            return v

        key = t()
        return {"key": np.where(np.isnan(key), np.inf, key), "xs": t(), "xe": t(),
                "end": t(), "caller": rng.integers(-1, 4, n), "group": rng.integers(0, 5, n),
                "aid": rng.integers(-1, 3, n), "file": rng.integers(-1, 3, n)}

    ctx = _Context()
    last: dict[int, dict[str, float]] = {}
    for _ in range(80):
        codes = np.unique(rng.integers(0, 60, int(rng.integers(1, 12))))
        new = fields(codes)
        ctx.register(codes, new)
        for i, c in enumerate(codes.tolist()):
            last[c] = {f: new[f][i] for f in new}
    ref = _Context()
    codes = np.array(sorted(last), dtype=np.int64)
    ref.register(codes, {f: np.array([last[c][f] for c in codes.tolist()])
                         for f in last[int(codes[0])]})

    def pairs(p: object) -> list[tuple[float, int]]:
        return list(zip(p.v.tolist(), p.c.tolist(), strict=True))  # type: ignore[attr-defined]

    assert ctx.n_open == ref.n_open
    assert pairs(ctx.starts) == pairs(ref.starts) and pairs(ctx.xends) == pairs(ref.xends)
    for mine, theirs in ((ctx.ends, ref.ends), (ctx.by_group, ref.by_group)):
        assert {k: pairs(v) for k, v in mine.items() if len(v.v)} == \
            {k: pairs(v) for k, v in theirs.items() if len(v.v)}
