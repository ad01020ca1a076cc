"""Slurm's view of a run's batch jobs as events of the run (``source: slurm``), from
``sacct --json`` or ``squeue --json`` output saved beside it (``--with FILE``).

Why: on a cluster the hours a run loses can be in Slurm's queue, before any process of the
run logs a line. Parsl's SlurmProvider submits each block as one Slurm job and keeps the id
``sbatch`` printed as the block's job id, so these events carry ``parsl.job_id`` (=
``slurm.job_id``) and join onto Parsl's block events (:mod:`features.parsl_db`).

Each job becomes up to four events (``name: slurm.job``) at the times Slurm recorded (epoch
seconds): ``submitted``, ``eligible``, ``started`` (with ``slurm.queued_s``) and ``ended``
(state, exit code; level ERROR for :data:`FAILED` ends, WARNING for :data:`STOPPED` ones);
sacct's steps give ``started``/``ended`` events of their own (``name: slurm.step``). Keys:
``slurm.job_id``, ``slurm.name``, ``slurm.state``, ``slurm.partition``, ``slurm.account``,
``slurm.user``, ``slurm.nodes``, ``slurm.exit_code``, ``slurm.event``, ``parsl.job_id``.
Which fields of which Slurm version mean what: :mod:`features.slurm_json`.

A user may run sacct again over the same file: it is parsed again whenever its size or
modification time changes, and only events not emitted before (job id + event) are written.
Content is untrusted like a pool: values are typed when read, and nothing read names code.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.query import select
from features.slurm_json import (
    FAILED,
    KIND,
    STOPPED,
    fmt_span,
    id_text,
    load,
    looks_like,
    translate,
)
from features.sources import Source, SourceError, register

if TYPE_CHECKING:
    from features.sources import RunView

__all__ = ["FAILED", "STOPPED", "SlurmJSON", "fetch", "fmt_span", "job_line", "slurm_jobs",
           "slurm_queue"]

_JOB_ID = re.compile(r"\d+([_+]\d+)?")
"""A job id sacct's ``-j`` takes: ``123``, an array task ``123_4``, a hetjob part ``123+0``."""
_EVENTS = ("submitted", "eligible", "started", "ended")

def _sig(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


class SlurmJSON(Source):
    """One file of ``sacct --json`` or ``squeue --json`` output (checked when opened:
    a file that is no such JSON is a :class:`SourceError`)."""

    kind = KIND

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.emitted: set[tuple[str, ...]] = set()
        """Keys (job id, [step,] event) of the events written already."""
        self.read_sig: tuple[int, int] | None = None
        """(size, mtime) of the file as last translated: unchanged, nothing to do."""
        self.failed_sig: tuple[int, int] | None = None
        """The version of the file that failed to read, said once (a rewrite in
        progress is read again when it changes)."""
        sig = _sig(path)
        self._doc: tuple[tuple[int, int], dict[str, Any]] | None = (sig, load(path))

    def new_events(self, run: RunView | None) -> Iterator[dict[str, Any]]:
        try:
            sig = _sig(self.path)
        except OSError:
            return  # replaced or removed for a moment: read it when it is back
        if sig == self.read_sig:
            return
        cached: tuple[tuple[int, int], dict[str, Any]] | None = self._doc
        self._doc = None
        try:
            doc = cached[1] if cached is not None and cached[0] == sig else load(self.path)
        except SourceError:
            if sig == self.failed_sig:
                return
            self.failed_sig = sig
            raise
        self.read_sig = sig
        new = []
        for key, ev in translate(doc, sig[1] / 1e9):
            if key not in self.emitted:
                self.emitted.add(key)
                new.append(ev)
        new.sort(key=lambda e: e["created"])
        yield from new


def fetch(job_ids: Iterable[str | int], timeout_s: float = 60.0) -> str | None:
    """``sacct --json -j IDS`` where Slurm's ``sacct`` is on the PATH: its output, to save
    beside the run and attach with ``--with``. None without sacct, or when it fails or
    takes longer than ``timeout_s`` (a cluster's accounting is never required)."""
    ids = [str(j).strip() for j in job_ids]
    bad = [i for i in ids if not _JOB_ID.fullmatch(i)]
    if bad:
        raise ValueError(f"not a Slurm job id: {bad[0]!r}")
    exe = shutil.which("sacct")
    if exe is None or not ids:
        return None
    try:
        done = subprocess.run([exe, "--json", "-j", ",".join(ids)], capture_output=True,
                              text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 and done.stdout.strip() else None


def slurm_jobs(run: RunView) -> list[dict[str, Any]]:
    """The Slurm jobs joined onto the run, in order of submission: ``job_id``, the times
    (``submitted``, ``eligible``, ``started``, ``ended``: epoch seconds or None),
    ``state``, ``exit_code``, ``nodes``, ``block`` (the Parsl block whose job it was, by
    ``parsl.job_id``) and ``rows`` (event -> row, the evidence)."""
    ev = run.events()
    shapes = ev.store.key_shapes
    if "slurm.job_id" not in shapes:
        return []

    def col(k: str, rows: Any) -> list[Any]:
        return list(ev.column(k)[rows]) if k in shapes else [None] * len(rows)

    rows = select(ev, "source=slurm and name=slurm.job")
    jobs: dict[str, dict[str, Any]] = {}
    for r, jid, what, st, code, nodes in zip(
            rows.tolist(), col("slurm.job_id", rows), col("slurm.event", rows),
            col("slurm.state", rows), col("slurm.exit_code", rows), col("slurm.nodes", rows),
            strict=True):
        jid = id_text(jid)
        if jid is None or what not in _EVENTS:
            continue
        j = jobs.setdefault(jid, {"job_id": jid, "submitted": None, "eligible": None,
                                  "started": None, "ended": None, "state": None,
                                  "exit_code": None, "nodes": None, "block": None,
                                  "rows": {}})
        if j[what] is None:  # the first of two files that both hold the job
            j[what], j["rows"][what] = float(ev.created[r]), int(r)
        if _EVENTS.index(what) >= max((_EVENTS.index(k) for k in j["rows"]), default=0):
            j["state"] = st  # as of the job's latest event
        if what == "ended":
            j["exit_code"] = int(code) if code is not None else None
        j["nodes"] = nodes if nodes is not None else j["nodes"]
    if "parsl.block" in shapes:
        prow = select(ev, "source=parsl and name=parsl.monitoring.block")
        for jid, block in zip(col("parsl.job_id", prow), col("parsl.block", prow),
                              strict=True):
            jb = jobs.get(id_text(jid) or "")
            if jb is not None and jb["block"] is None:
                jb["block"] = id_text(block)
    return sorted(jobs.values(), key=lambda j: (j["submitted"] or math.inf, j["job_id"]))


def slurm_queue(run: RunView) -> dict[str, tuple[float, float]]:
    """Slurm job id -> (submitted, started), epoch seconds, of the jobs joined onto the
    run that started (the time a job spent in Slurm's queue is the difference)."""
    return {j["job_id"]: (j["submitted"], j["started"]) for j in slurm_jobs(run)
            if j["submitted"] is not None and j["started"] is not None}


def job_line(j: dict[str, Any]) -> str:
    """``job 123456 (parsl.block 0): queued in Slurm for 11 h 59 min, ran 2 h 3 min,
    COMPLETED``: one job of :func:`slurm_jobs`, in words."""
    head = f"job {j['job_id']}" + (f" (parsl.block {j['block']})" if j["block"] else "")
    sub, start, end = j["submitted"], j["started"], j["ended"]
    if start is None:
        return f"{head}: in Slurm's queue, not started ({j['state'] or 'PENDING'})"
    parts = [f"queued in Slurm for {fmt_span(start - sub)}" if sub is not None
             else "submitted at a time the file does not give"]
    if end is None:
        parts.append("running")
    else:
        code = j["exit_code"]
        parts += [f"ran {fmt_span(end - start)}", str(j["state"]) + (
            f" (exit code {id_text(code)})" if code not in (None, 0) else "")]
    return f"{head}: " + ", ".join(parts)


# After Parsl's kinds: a directory given as a whole opens Parsl's records first.
register(looks_like, SlurmJSON, rank=20)
