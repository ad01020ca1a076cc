"""How a line of a Parsl log reads: the record formats Parsl has used, and the records that
mark a step of a run (a block launched, a manager registered, a task received...).

Apart from :mod:`features.parsl_logs`, which reads files as they grow and joins them to the
pool, because these patterns change with Parsl's releases while the reading does not: a new
format or step is one entry here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

__all__ = ["FORMATS", "LEVELS", "RULES", "match_step", "parse_line", "wall_clock"]

LEVELS = {"DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40, "CRITICAL": 50,
          "FATAL": 50}
"""Level names as the logs write them -> ``levelno``."""
_D = r"(?P<date>\d{4}-\d\d-\d\d) (?P<time>\d\d:\d\d:\d\d)"
FORMATS = (
    # parsl.log_utils.DEFAULT_FORMAT: "%(created)f %(asctime)s %(processName)s-%(process)d
    # %(threadName)s-%(thread)d %(name)s:%(lineno)d %(funcName)s %(levelname)s: %(message)s"
    re.compile(r"(?P<created>\d{9,11}\.\d+) " + _D + r"(?:[.,]\d+)? (?P<proc>\S.*?)-"
               r"(?P<pid>\d+) (?P<thread>\S.*?)-\d+ (?P<name>[\w.\-]+):(?P<lineno>\d+) "
               r"(?P<func>\S+) (?P<level>[A-Z]+): ?(?P<msg>.*)"),
    # Interchange and worker pool before 2023: "%(asctime)s.%(msecs)03d %(name)s:%(lineno)d
    # %(processName)s(%(process)d) %(threadName)s %(funcName)s [%(levelname)s]  %(message)s"
    re.compile(_D + r"(?:[.,](?P<ms>\d{3}))? (?P<name>[\w.\-]+):(?P<lineno>\d+) "
               r"(?P<proc>\S.*?)\((?P<pid>\d+)\) (?P<thread>\S.*?) (?P<func>\S+) "
               r"\[(?P<level>[A-Z]+)\] *(?P<msg>.*)"),
    # database_manager.log ("... [%(levelname)s] [%(threadName)s %(thread)d] %(message)s")
    # and set_stream_logger's "%(asctime)s %(name)s:%(lineno)d [%(levelname)s]  %(message)s"
    re.compile(_D + r"(?:[.,](?P<ms>\d{3}))? (?P<name>[\w.\-]+):(?P<lineno>\d+) "
               r"\[(?P<level>[A-Z]+)\] (?:\[(?P<thread>.*?) \d+\] )? *(?P<msg>.*)"),
)
_EX = r"(?:\[Scaling executor (?P<executor>[^\]]+)\] )?"
_M = r"(?:b')?(?P<manager>[0-9a-f]+)'?"
RULES: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (e, k, re.compile(p)) for e, k, p in (
        ("began", "Run id", r"^Run id is: (?P<run_id>\S+)"),
        ("rundir", "rundir", r"^Parsl run initializing in rundir: (?P<rundir>.+)"),
        ("submitted", "submitted", r"^Task (?P<task>\d+) submitted for App (?P<func>[^,\s]+)"),
        ("status", "state", r"^Task (?P<task>\d+) (?:initializing state to|changing state "
                            r"from \w+ to) (?P<status>\w+)"),
        ("launched", "launched on", r"^Parsl task (?P<task>\d+) try (?P<try>\d+) launched on "
                                    r"executor (?P<executor>\S+) with executor id "
                                    r"(?P<executor_task>\d+)"),
        ("block allocated", "Allocated", _EX + r"Allocated block ID (?P<block>\S+)"),
        ("block launched", "Launched block", _EX + r"Launched block (?P<block>\S+) with job "
                                                   r"ID (?P<job_id>\S+)"),
        ("block status", "Marking", r"Marking block (?P<block>\S+) as (?P<status>\w+)"),
        ("hold", "hold", r"^(?:Sending hold for|Sent hold request to) manager: "
                         r"(?P<manager>\w+)"),
        ("hold", "HOLD", r"^Received HOLD_MANAGER for " + _M),
        ("cancel", "Terminating", r"^Terminating job/process ID: (?P<job_id>\S+)"),
        ("registered", "Registered", r"^Registered manager " + _M),
        ("registration info", "Registration", r"^Registration info for manager " + _M +
                                              r".*?'block_id': '(?P<block>[^']*)'"),
        ("spawning workers", "spawn", r"^Manager will spawn (?P<workers>\d+) workers"),
        ("worker started", "started", r"^Worker (?P<worker>\d+) started"),
        ("received", "Received", r"^Received executor task (?P<executor_task>\d+)"),
        ("completed", "Completed", r"^Completed executor task (?P<executor_task>\d+)"),
        ("finished", "finished", r"^All processing finished for executor task "
                                 r"(?P<executor_task>\d+)"),
    ))
"""(``parsl.event``, a word its line must hold, the pattern): the records that mark a step;
the named groups become ``parsl.<name>`` keys."""
_INTS = frozenset({"task", "try", "executor_task", "workers", "worker"})


def parse_line(line: str, fmts: tuple[re.Pattern[str], ...] = FORMATS
               ) -> tuple[int, re.Match[str]] | None:
    """Which of :data:`FORMATS` a line starts a record in, and the match."""
    for i, f in enumerate(fmts):
        m = f.match(line)
        if m is not None:
            return i, m
    return None


def wall_clock(m: re.Match[str]) -> float:
    """The line's wall-clock text read as UTC, epoch seconds."""
    dt = datetime.fromisoformat(f"{m['date']} {m['time']}").replace(tzinfo=UTC)
    ms = m.groupdict().get("ms")
    return dt.timestamp() + (int(ms) / 1000 if ms else 0.0)


def match_step(text: str, keys: dict[str, Any]) -> tuple[str, str] | None:
    """The step a record's text marks (the first of :data:`RULES` it matches) and its
    message with ``%s`` for the values, so records of one step group; the values go into
    ``keys`` as ``parsl.<name>``. None when it marks no step."""
    for name, word, rx in RULES:
        if word not in text or (r := rx.search(text)) is None:
            continue
        parts, last = [], 0
        for k, v in r.groupdict().items():
            if v is None:
                continue
            keys[f"parsl.{k}"] = int(v) if k in _INTS else v
            parts.append(text[last:r.start(k)] + "%s")
            last = r.end(k)
        return name, "".join(parts) + text[last:]
    return None
