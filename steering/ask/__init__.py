"""Natural-language questions about a run, answered from the data with cited evidence.

>>> from steering.ask import ask
>>> answer = ask(run, "I expected 16 s: where did the time go?")
>>> print(answer.text)                 # verified: citations exist, numbers come from the data
>>> answer.valid_citations[0].rows     # the event rows behind the first citation

Modules: :mod:`~steering.ask.engine` (``ask``, ``Answer``, ``Conversation``),
:mod:`~steering.ask.tools` (the tools a model calls), :mod:`~steering.ask.lookups` (what
they compute), :mod:`~steering.ask.summary` (the run summary a model reads first),
:mod:`~steering.ask.analyst` (the built-in analyst), :mod:`~steering.ask.verify`
(citation and number checks), :mod:`~steering.ask.refs` (evidence ids),
:mod:`~steering.ask.questions` (reading a question), :mod:`~steering.ask.llm_paths`
(the tools and plan modes).
"""

from __future__ import annotations

from steering.ask.engine import NO_LLM, Answer, Conversation, ask, builtin_answer
from steering.ask.llm_paths import AskLimits
from steering.ask.refs import Citation, EvidenceIndex
from steering.ask.summary import summarize
from steering.ask.tools import Toolbox, ToolResult

__all__ = ["NO_LLM", "Answer", "AskLimits", "Citation", "Conversation", "EvidenceIndex",
           "ToolResult", "Toolbox", "ask", "builtin_answer", "summarize"]
