"""Things: rows of events related by their keys, not by a span hierarchy.

An action is every record carrying one ``academy.action_tag`` (caller side in one file,
agent side in another); an agent is every record naming one ``academy.agent_id``; a
process is a file; a message is one ``(academy.message_tag, src, dest)``. All joins are
vectorised over the event columns, so they stay fast on a million events.

Times are absolute seconds since the epoch (``created``); durations are seconds.

A module a kind: :mod:`~features.things.actions`, :mod:`~features.things.agents`,
:mod:`~features.things.processes`, :mod:`~features.things.groups` (things of any keys,
messages, loops), on :mod:`~features.things.common` (Academy's message templates, the
folded index). This package is their one door.
"""

from features.things.actions import ActionIndex, actions
from features.things.agents import agents, launch_claims, mark_process_ends
from features.things.common import (
    AGENT_STATES,
    CALLER_STATES,
    CLEAN_END_MSGS,
    LOOP_EXITS,
    LOOP_STARTS,
    MSG_AGENT_EXC,
    MSG_CLOSED_CLIENT,
    MSG_CLOSED_MANAGER,
    MSG_LAUNCHED,
    MSG_RECEIVED,
    MSG_RUNNING,
    MSG_SENT,
    MSG_SHUTDOWN,
    MSG_SHUTTING,
    MSG_STARTING,
    MSG_WORKER_FAIL,
    FoldedIndex,
    class_name,
    msg_rows,
)
from features.things.groups import group, loops, messages, things
from features.things.processes import ProcessIndex, processes

__all__ = [
    "AGENT_STATES", "CALLER_STATES", "CLEAN_END_MSGS", "LOOP_EXITS", "LOOP_STARTS",
    "MSG_AGENT_EXC", "MSG_CLOSED_CLIENT", "MSG_CLOSED_MANAGER", "MSG_LAUNCHED", "MSG_RECEIVED",
    "MSG_RUNNING", "MSG_SENT", "MSG_SHUTDOWN", "MSG_SHUTTING", "MSG_STARTING",
    "MSG_WORKER_FAIL", "ActionIndex", "FoldedIndex", "ProcessIndex", "actions", "agents",
    "class_name", "group", "launch_claims", "loops", "mark_process_ends", "messages",
    "msg_rows", "processes", "things",
]
