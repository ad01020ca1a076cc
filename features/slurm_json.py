"""Slurm's job JSON, read: the shapes ``sacct --json`` and ``squeue --json`` write, and
the events they hold (:mod:`features.slurm` is the source that writes them into a run).

Why a module of its own: Slurm changed these shapes in every data_parser version, and the
knowledge of which field means what belongs in one place, checked against Slurm's own
parsers (SchedMD/slurm ``src/plugins/data_parser/v0.0.39..v0.0.41/parsers.c``) and
against real output of Slurm 22.05.8 (Debian's ``slurm-wlm``, whose older OpenAPI
plugin v0.0.38 writes the plain forms).

A top-level object with a ``jobs`` list. sacct's jobs have ``job_id``, ``name``,
``partition``, ``account``, ``user``, ``nodes``, ``state.current`` (a string; a list of
flags from v0.0.40), ``time.submission|eligible|start|end`` (integers; 0 or null for "not
yet"), ``exit_code`` (``{"status", "return_code"}``, the code a number or, from v0.0.40,
``{"set", "infinite", "number"}``) and ``steps`` (``step.id``, ``time.start|end``,
``state``, ``exit_code``, ``nodes.range``; times wrapped from v0.0.41). squeue's jobs have
``job_state``, ``user_name``, ``submit_time``, ``eligible_time``, ``start_time``,
``end_time`` (wrapped as ``{"set", "infinite", "number"}`` from v0.0.40) and ``exit_code``
(the raw wait status before v0.0.41), and from v0.0.40 ``last_update`` at the top. Both
forms of every number are read.

Only what happened becomes an event: squeue's start of a pending job and end of a running
one are what Slurm expects, as is anything after ``last_update`` and an eligible time (a
``--begin``) the job had not reached when it ended or when the file was written.
Caveat: in the v0.0.39 parser read, sacct's ``time/start`` is filled from the job's
eligible time, so with that plugin ``started`` is when the job became eligible.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from features.fmt import fmt_dur
from features.sources import SourceError, event

__all__ = ["ENDED", "FAILED", "STOPPED", "epoch", "exit_code", "fmt_span", "id_text", "load",
           "looks_like", "number", "state", "translate"]

KIND = "slurm"
SNIFF_BYTES = 1 << 20
MAX_BYTES = 1 << 30
"""sacct over a year of a busy account is tens of MB; a file past this is refused."""
UNSET = 0xFFFFFFFE
"""Slurm's NO_VAL (and INFINITE just above): "no time" in the plain 32-bit forms."""
FAILED = frozenset({"FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"})
"""End states that are errors (level ERROR)."""
STOPPED = frozenset({"CANCELLED", "PREEMPTED", "DEADLINE", "REVOKED"})
"""End states that stopped a job from outside (level WARNING)."""
ENDED = FAILED | STOPPED | {"COMPLETED"}
EXPECTED = {"RUNNING", "PENDING", "SUSPENDED", "REQUEUED", "RESIZING", "COMPLETING",
            "CONFIGURING", "SIGNALING", "STAGE_OUT"}
_ENDED = "Slurm job %s ended %s (exit code %s) after running %s"


def number(v: Any) -> float | None:
    """A Slurm number, plain or ``{"set", "infinite", "number"}`` (unset, infinite or
    not a number: None)."""
    if isinstance(v, dict):
        if not v.get("set", True) or v.get("infinite"):
            return None
        v = v.get("number")
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        return None
    try:
        f = float(v)
    except ValueError:
        return None
    return f if math.isfinite(f) else None


def epoch(v: Any) -> float | None:
    """A Slurm time: epoch seconds, or None for 0 ("not yet") and NO_VAL/INFINITE."""
    t = number(v)
    return t if t is not None and 0 < t < UNSET else None


def state(v: Any) -> str | None:
    """The base state of a state field: ``"COMPLETED"``, ``["CANCELLED", ...]`` (v0.0.40+
    flags), sacct's ``{"current": ...}``; the first word (text sacct wrote ``CANCELLED by
    0``)."""
    if isinstance(v, dict):
        v = v.get("current")
    items = [v] if isinstance(v, str) else [x for x in v if isinstance(x, str)] \
        if isinstance(v, list) else []
    words = [x.split()[0] for x in items if x.split()]
    base = [w for w in words if w in ENDED or w in EXPECTED]
    return (base or words)[0] if words else None


def exit_code(v: Any, wait_status: bool = False) -> tuple[int | None, str | None]:
    """(return code, signal name or number) of an exit code: the ``{"status",
    "return_code", "signal"}`` object of sacct (every version) and of squeue from v0.0.41,
    or a number: squeue's before v0.0.41 is the raw wait status (``768``: exit code 3)."""
    if not isinstance(v, dict):
        rc = number(v)
        if rc is None or not wait_status:
            return (int(rc) if rc is not None else None), None
        raw = int(rc)
        return (raw >> 8) & 0xFF, (str(raw & 0x7F) if raw & 0x7F else None)
    rc = number(v.get("return_code"))
    sig = v.get("signal")
    name: Any = None
    if isinstance(sig, dict):  # v0.0.39: {"signal_id", "name"}; later {"id", "name"}
        name = sig.get("name") or number(sig.get("id", sig.get("signal_id")))
    if isinstance(name, float):
        name = str(int(name))
    return (int(rc) if rc is not None else None), (str(name) if name else None)


def fmt_span(s: float | None) -> str:
    """A long duration, readable: 11 h 59 min, 3 min 4 s, 1.25 s."""
    if s is None or not math.isfinite(s) or abs(s) < 3600:
        return fmt_dur(s)
    h, m = divmod(round(abs(s) / 60), 60)
    return f"{'-' if s < 0 else ''}{h} h {m} min"


def _text(v: Any) -> str | None:
    if isinstance(v, dict):  # v0.0.41 steps: "nodes": {"range": ..., "count": ...}
        v = v.get("range") or v.get("list")
    if not isinstance(v, str | int) or isinstance(v, bool):
        return None
    s = str(v).strip()
    return s if s and s != "None assigned" else None


def _level(st: str | None) -> int:
    return 40 if st in FAILED else 30 if st in STOPPED else 20


def _code(code: int | None, sig: str | None) -> str:
    return f"signal {sig}" if sig is not None else "unknown" if code is None else str(code)


def _obj(d: dict[str, Any], key: str) -> dict[str, Any]:
    v = d.get(key)
    return v if isinstance(v, dict) else {}


def _step_id(job_id: str, v: Any) -> str | None:
    """``32312.batch`` from the step's id: text (v0.0.41), a number or a
    ``{"job_id", "step_id"}`` object (older)."""
    if isinstance(v, dict):
        v = v.get("step_id", v.get("id"))
    s = _text(v)
    if s is None:
        return None
    return s if "." in s else f"{job_id}.{s}"


def looks_like(path: Path) -> bool:
    """Slurm's job JSON, from the first MB of ``path``: an object with ``jobs`` and a
    Slurm key (a cut-off file passes, for :func:`load` to say what is wrong with it)."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    return head.lstrip()[:1] == b"{" and b'"jobs"' in head and any(
        k in head for k in (b'"job_id"', b'"data_parser"', b'"slurm"', b'"Slurm"'))


def load(path: Path) -> dict[str, Any]:
    """The document at ``path``, checked to be Slurm's; :class:`SourceError` (one line:
    which file, what is wrong) for anything else."""
    where = f"--with {path}"
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SourceError(f"{where}: {size / 1e9:.1f} GB is more Slurm JSON than read "
                              f"({MAX_BYTES / 1e9:.1f} GB at most)")
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        why = " ".join(str(exc).split())[:160]
        raise SourceError(f"{where}: not complete JSON ({why}); expected the output of "
                          "`sacct --json` or `squeue --json`") from None
    except OSError as exc:
        raise SourceError(f"{where}: {exc.strerror or exc}") from None
    jobs = doc.get("jobs") if isinstance(doc, dict) else None
    if not isinstance(jobs, list):
        raise SourceError(f"{where}: JSON without a `jobs` list: not the output of "
                          "`sacct --json` or `squeue --json`")
    if any(not isinstance(j, dict) or "job_id" not in j for j in jobs):
        raise SourceError(f"{where}: a job without a `job_id`: not Slurm's job JSON")
    errs = doc.get("errors")
    if not jobs and isinstance(errs, list) and errs:
        first = errs[0].get("description") if isinstance(errs[0], dict) else errs[0]
        raise SourceError(f"{where}: Slurm reported an error and no jobs: {first}"[:300])
    return doc


def id_text(v: Any) -> str | None:
    """A job id as text, whether a column typed it as a number or not."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v).strip() or None
    return str(int(f)) if math.isfinite(f) and f.is_integer() else str(v)


def translate(doc: dict[str, Any], mtime: float | None = None
              ) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """(key, event) of every event the document holds; the key names it across re-reads.
    ``mtime``: when the file was written, for documents that do not say (all but squeue
    from v0.0.40, whose ``last_update`` does)."""
    asof = epoch(doc.get("last_update"))
    out: list[tuple[tuple[str, ...], dict[str, Any]]] = []
    for j in doc["jobs"]:
        raw = j.get("job_id")
        job_id = id_text(raw if isinstance(raw, str) else number(raw))
        if job_id is not None:
            out.extend(_job(j, job_id, asof, asof or mtime))
    return out


def _job(j: dict[str, Any], jid: str, asof: float | None, written: float | None
         ) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    squeue = "job_state" in j or "submit_time" in j
    st, times = _job_times(j, squeue, asof, written)
    nodes = _text(j.get("nodes"))
    if st in STOPPED and nodes is None and times["start"] == times["end"]:
        times["start"] = None  # cancelled while pending: Slurm sets start to the end
    code, sig = exit_code(j.get("exit_code"), wait_status=squeue)
    common = {"slurm.job_id": jid, "parsl.job_id": jid, "slurm.name": _text(j.get("name")),
              "slurm.partition": _text(j.get("partition")),
              "slurm.account": _text(j.get("account")),
              "slurm.user": _text(j.get("user_name" if squeue else "user")),
              "slurm.command": "squeue" if squeue else "sacct"}
    sub, start, end = times["submit"], times["start"], times["end"]
    queued = start - sub if start is not None and sub is not None else None
    ran = end - start if end is not None and start is not None else None
    name = "slurm.job"
    if sub is not None:
        yield (jid, "submitted"), event(
            sub, KIND, name, "Slurm job %s submitted to partition %s (%s)",
            (jid, common["slurm.partition"], common["slurm.name"]),
            keys={**common, "slurm.event": "submitted", "slurm.state": "PENDING"})
    if times["eligible"] is not None:
        yield (jid, "eligible"), event(
            times["eligible"], KIND, name, "Slurm job %s eligible to start", (jid,),
            keys={**common, "slurm.event": "eligible", "slurm.state": "PENDING"})
    if start is not None:
        yield (jid, "started"), event(
            start, KIND, name, "Slurm job %s started on %s after %s in the queue",
            (jid, nodes, fmt_span(queued)), keys={
                **common, "slurm.event": "started", "slurm.state": "RUNNING",
                "slurm.nodes": nodes,
                "slurm.queued_s": round(queued, 3) if queued is not None else None})
    if end is not None and st in ENDED:
        msg, args = (_ENDED, (jid, st, _code(code, sig), fmt_span(ran))) if ran is not None \
            else ("Slurm job %s ended %s (exit code %s) before it started",
                  (jid, st, _code(code, sig)))
        yield (jid, "ended"), event(end, KIND, name, msg, args, _level(st), {
            **common, "slurm.event": "ended", "slurm.state": st, "slurm.nodes": nodes,
            "slurm.exit_code": code, "slurm.signal": sig,
            "slurm.run_s": round(ran, 3) if ran is not None else None})
    for s in j.get("steps") or ():
        if isinstance(s, dict):
            yield from _step(s, jid, common)


def _job_times(j: dict[str, Any], squeue: bool, asof: float | None, written: float | None
               ) -> tuple[str | None, dict[str, float | None]]:
    """The job's state and the times of what happened to it: submit, eligible, start and
    end, each None when it has not happened (or is only what Slurm expects)."""
    if squeue:
        st = state(j.get("job_state"))
        times = {k: epoch(j.get(f"{k}_time")) for k in ("submit", "eligible", "start", "end")}
        if asof is not None:  # later than the snapshot: what Slurm expects, not events
            times = {k: v if v is None or v <= asof else None for k, v in times.items()}
        if st == "PENDING":  # the start Slurm expects
            times["start"] = None
        if st not in ENDED:  # the end of the time limit
            times["end"] = None
    else:
        t = _obj(j, "time")
        st = state(j.get("state"))
        times = {"submit": epoch(t.get("submission")), "eligible": epoch(t.get("eligible")),
                 "start": epoch(t.get("start")), "end": epoch(t.get("end"))}
    el, end = times["eligible"], times["end"]
    never = el is not None and end is not None and el > end
    not_yet = st == "PENDING" and el is not None and written is not None and el > written
    if never or not_yet:  # a --begin time the job did not reach (it ended, or not yet)
        times["eligible"] = None
    return st, times


def _step(s: dict[str, Any], jid: str, common: dict[str, Any]
          ) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    info = _obj(s, "step")
    sid = _step_id(jid, info.get("id"))
    if sid is None:
        return
    t = _obj(s, "time")
    st = state(s.get("state"))
    nodes = _text(s.get("nodes"))
    keys = {**common, "slurm.step": sid, "slurm.step_name": _text(info.get("name")),
            "slurm.nodes": nodes}
    start, end = epoch(t.get("start")), epoch(t.get("end"))
    if start is not None:
        yield (jid, sid, "started"), event(
            start, KIND, "slurm.step", "Slurm step %s started on %s", (sid, nodes),
            keys={**keys, "slurm.event": "started", "slurm.state": "RUNNING"})
    if end is not None and st in ENDED:
        code, sig = exit_code(s.get("exit_code"))
        yield (jid, sid, "ended"), event(
            end, KIND, "slurm.step", "Slurm step %s ended %s (exit code %s)",
            (sid, st, _code(code, sig)), _level(st),
            {**keys, "slurm.event": "ended", "slurm.state": st, "slurm.exit_code": code,
             "slurm.signal": sig})
