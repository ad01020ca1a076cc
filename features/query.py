"""The filter language: one small language for the CLI (``--where``), the TUI's ``/``
filter and the LLM tool layer (which sends the AST as JSON).

Text syntax
-----------
``levelno>=30``, ``academy.action=next_item``, ``fib.iteration>10``, ``name!=asyncio``,
``@t>2.5``, ``message~"fib step \\d+"``, ``has:exc_text``, ``level>=warning``,
``exc_text!=None``, ``timeout`` (a bare word: case-insensitive substring of ``message``),
combined with ``and``, ``or``, ``not`` and parentheses; juxtaposition means ``and``.
Precedence: ``not`` > ``and`` > ``or``. Keywords are case-insensitive.

* Operators ``= != < <= > >= ~ !~`` (``~`` is a Python regex search, ``!~`` its negation;
  ``==`` and ``=~`` are accepted as ``=`` and ``~``). Spaces around operators are fine.
* Values are bare (``next_item``, ``30``, ``1.5e3``, ``AgentId<5b2acff4>``; a bare value
  runs to the next space or unbalanced ``)``) or quoted (``"time out"``, ``'x'``). A bare
  numeric literal is a number, a quoted one a string. A bare ``None``/``null`` is the null
  literal: ``key=None`` is true when the key is missing or null, ``key!=None`` when it has
  a value. In quoted strings ``\\\\``, ``\\"`` and ``\\'`` are escapes; any other
  backslash is kept as written, so regexes read naturally: ``"fib \\d+"``.
* ``level`` is an alias of ``levelno``; ``level``, ``levelno`` and ``levelname`` accept
  level names (``level>=warning``, ``levelname=error``).
* A comparison on a record lacking the key (or whose value is null) is false; ``!=`` and
  ``!~`` are ``not (=)`` and ``not (~)``, so they are true for it.
* Pseudo keys: ``@file @line @offset @row @t @repaired`` (``@t``: seconds since run start).
* Ids compare case-insensitively (``academy.action_tag=2F1C...``), and regexes on id keys
  ignore case. Numbers compare numerically when every value of the key is a number (the
  JSON pool's ``"12"`` counts), else as canonical strings; ordering a numeric key against
  text is an error. See :mod:`features.query_eval` for the exact rules.

JSON AST (:func:`to_json` / :func:`from_json`, schema :data:`AST_SCHEMA`)
--------------------------------------------------------------------------
::

    {"op": "and", "args": [NODE, ...]}            # one or more; one arg means the arg
    {"op": "or",  "args": [NODE, ...]}
    {"op": "not", "arg": NODE}
    {"op": "cmp", "key": K, "cmp": "=|!=|<|<=|>|>=", "value": NUMBER|STRING|null}
    {"op": "match", "key": K, "pattern": REGEX, "negate": BOOL}
    {"op": "has", "key": K}
    {"op": "text", "value": STRING}              # case-insensitive substring of message

``value: null`` is the null literal (only with ``=`` and ``!=``). :func:`from_json` is
strict: unknown ops, missing or extra fields, wrong types, invalid regexes, nesting deeper
than 50 or more than 200 nodes raise :class:`QueryError` naming the JSON path.

This module is the façade: the syntax tree lives in :mod:`features.query_syntax`, the text
form in :mod:`features.query_text`, the JSON form in :mod:`features.query_json` and
evaluation in :mod:`features.query_eval` (:func:`evaluate`, :func:`select` and
:func:`explain` here are its functions). Each imports only the ones before it.
"""

from __future__ import annotations

from features.query_eval import evaluate, explain, select
from features.query_json import AST_SCHEMA, from_json, to_json
from features.query_syntax import (
    CMP_OPS,
    LEVEL_KEYS,
    LEVELS,
    MAX_DEPTH,
    MAX_KEY,
    MAX_NODES,
    MAX_STRING,
    ORDER_OPS,
    And,
    Cmp,
    Has,
    Match,
    Node,
    Not,
    Or,
    QueryError,
    Text,
    Where,
    check_cmp,
    level_value,
    number_literal,
    regex_error,
)
from features.query_text import parse, to_text

__all__ = [
    "AST_SCHEMA", "CMP_OPS", "LEVELS", "LEVEL_KEYS", "MAX_DEPTH", "MAX_KEY", "MAX_NODES",
    "MAX_STRING", "ORDER_OPS", "And", "Cmp", "Has", "Match", "Node", "Not", "Or",
    "QueryError", "Text", "Where", "check_cmp", "evaluate", "explain", "from_json",
    "level_value", "number_literal", "parse", "regex_error", "select", "to_json", "to_text",
]
