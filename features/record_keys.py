"""What a pool record's keys mean to the store: which are held as columns, which are
identifiers, which are the workflow's own, and the flags and bounds a record is read
against. One place for the schema the parser, the store and the query share (no schema
is enforced on the records: these name what the columns hold)."""

from __future__ import annotations

COMBO_KEYS: tuple[str, ...] = (
    "name",
    "msg",
    "levelno",
    "process",
    "academy.action_state",
    "academy.action",
    "academy.message_type",
    "academy.agent_id",
    "academy.agent",
    "academy.src",
    "academy.dest",
)
"""Low-cardinality keys interned together, one tuple per record. (``processName`` and the
thread keys are read on demand: they are constant per process and cost ingest time.)"""

TAG_KEYS: tuple[str, ...] = ("academy.action_tag", "academy.message_tag", "academy.message_label")
"""High-cardinality join keys (uuids), each interned on its own."""

MESSAGE_CAP = 4096
"""Characters of ``message`` kept in memory; the full value stays readable from the file."""

MAX_LINE = 256 * 1024 * 1024
"""A line longer than this is recorded as bad instead of being parsed."""

FLAG_EXC = 1
"""The record carries a traceback (``exc_text`` is not null)."""
FLAG_REPAIRED = 2
"""The record was recovered from a bad line (interleaved write or invalid UTF-8)."""
FLAG_MSG_CUT = 4
"""``message`` was longer than :data:`MESSAGE_CAP`; read the record for the full text."""
FLAG_RAW_INT = 8
"""An integer column (:data:`INT_KEYS`) could not hold the record's value (out of the
column's range, or not an integer): the column says -1 (missing) and the value stays
as written in the record (see :meth:`features.run.Run.events_table`)."""

TIME_MIN = -62135510400.0
"""``created`` below this (0001-01-02) or at or above :data:`TIME_MAX` (9999-12-31) is not
a usable time: no date can show it (``datetime`` raises). Such a value (``1e999``,
``-inf``, ``NaN``, a huge number) is read as a missing time (NaN) and counted."""
TIME_MAX = 253402214400.0
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
"""The range of the integer columns (:data:`INT_KEYS`)."""

RECORD_KEYS = frozenset({
    "args", "created", "exc_info", "exc_text", "filename", "funcName", "levelname",
    "levelno", "lineno", "module", "msecs", "msg", "name", "pathname", "process",
    "processName", "relativeCreated", "stack_info", "thread", "threadName", "taskName",
    "message", "formatted", "asctime",
})
"""Keys of Python's LogRecord and of Academy's JSON pool records: not user keys."""

USER_CAP = 64
"""A user key's string values up to this long are kept in memory at ingest (see
:func:`is_user_key`); one longer value, or a nested one, leaves the key to be read from
the files on use."""

def is_user_key(key: str) -> bool:
    """A key the workflow added (``fib.iteration``), not Python's or Academy's: its short
    values are kept at ingest, so the first filter on it does not read the files."""
    return key not in RECORD_KEYS and not key.startswith("academy.")

PAYLOAD_ARGS = ("academy.action_args", "academy.action_kwargs")
"""An action's arguments, on its start record: their lengths are its ``args_len``."""
PAYLOAD_RESULT = ("academy.result",)
"""An action's result, on its success record: its length is its ``result_len``."""

INT_KEYS = ("levelno", "process")
"""Low-cardinality keys stored as integer columns (-1 when missing)."""

ID_KEYS = frozenset({"academy.agent_id", "academy.src", "academy.dest", *TAG_KEYS})
"""Keys whose values are identifiers: canonicalised (uuids lower-cased)."""


__all__ = ["COMBO_KEYS", "FLAG_EXC", "FLAG_MSG_CUT", "FLAG_RAW_INT", "FLAG_REPAIRED", "ID_KEYS",
           "INT32_MAX", "INT32_MIN", "INT_KEYS", "MAX_LINE", "MESSAGE_CAP", "PAYLOAD_ARGS",
           "PAYLOAD_RESULT", "RECORD_KEYS",
           "TAG_KEYS", "TIME_MAX", "TIME_MIN", "USER_CAP", "is_user_key"]
