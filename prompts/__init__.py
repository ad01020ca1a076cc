"""Prompt templates, one per ``*.txt`` file in this package, shipped as package data.

Each file is a :class:`string.Template`: ``$name`` (or ``${name}``) is a variable and ``$$`` a
literal dollar. Rendering is strict both ways, as in Simon Willison's ``llm`` templates: a
missing variable and an unexpected one both raise :class:`PromptVariableError`, so a renamed
variable cannot silently leave ``$question`` in the text sent to a model.

Untrusted text (log content) is fenced in the templates by ``<<<NAME`` ... ``NAME>>>`` markers.
:meth:`Prompt.render` defuses ``<<<`` and ``>>>`` inside every value, so data cannot close
its fence early and pass itself off as instructions.

>>> p = load("ask_plan")
>>> sorted(p.variables)
['max_calls', 'question', 'summary', 'tools']
"""

from __future__ import annotations

import hashlib
import logging
import string
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

__all__ = ["Prompt", "PromptVariableError", "UnknownPromptError", "defuse", "load", "names"]

log = logging.getLogger("academy_tui.prompts")
log.addHandler(logging.NullHandler())

_SUFFIX = ".txt"


class PromptVariableError(ValueError):
    """Rendering was given too few or unexpected variables."""

    def __init__(self, prompt: str, missing: set[str] | frozenset[str] = frozenset(),
                 unexpected: set[str] | frozenset[str] = frozenset()) -> None:
        self.prompt = prompt
        """Name of the prompt being rendered."""
        self.missing = tuple(sorted(missing))
        """Variables the template needs that were not given."""
        self.unexpected = tuple(sorted(unexpected))
        """Variables given that the template does not use."""
        parts = []
        if self.missing:
            parts.append("missing variable(s) " + ", ".join(f"${v}" for v in self.missing))
        if self.unexpected:
            parts.append("unexpected variable(s) " + ", ".join(self.unexpected))
        super().__init__(f"prompt {prompt!r}: " + "; ".join(parts))


class UnknownPromptError(LookupError):
    """No prompt file of that name ships with the package."""


def defuse(value: str) -> str:
    """``value`` with the fence markers ``<<<``/``>>>`` made inert (``<<‹``/``›>>``).

    Applied to every variable by :meth:`Prompt.render`; exposed for building other messages
    that quote untrusted text.
    """
    return value.replace("<<<", "<<\u2039").replace(">>>", "\u203a>>")


@dataclass(frozen=True)
class Prompt:
    """One prompt template."""

    name: str
    """File name without ``.txt``, e.g. ``"ask_plan"``."""
    text: str
    """The template text exactly as shipped."""
    _template: string.Template = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        template = string.Template(self.text)
        # A stray "$" (say "$5") would otherwise only fail when rendered, far from the file.
        if not template.is_valid():
            raise ValueError(f"prompt {self.name!r}: invalid $ placeholder (write $$ for a "
                             "literal dollar)")
        object.__setattr__(self, "_template", template)

    @property
    def hash(self) -> str:
        """First 12 hex digits of the sha256 of the template text: which version was sent."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]

    @property
    def variables(self) -> frozenset[str]:
        """Names of the ``$variables`` the template uses."""
        return frozenset(self._template.get_identifiers())

    def render(self, **variables: object) -> str:
        """The template with every variable substituted (``str()`` of each value, defused).

        Raises :class:`PromptVariableError` when a variable is missing or not used by the
        template.
        """
        given = set(variables)
        missing = self.variables - given
        unexpected = given - self.variables
        if missing or unexpected:
            raise PromptVariableError(self.name, missing, unexpected)
        text = self._template.substitute({k: defuse(str(v)) for k, v in variables.items()})
        # Only sizes and hashes: the values may be log content the user would not want copied.
        log.debug("rendered prompt %s (%s): %d chars, sha256 %s", self.name, self.hash,
                  len(text), hashlib.sha256(text.encode()).hexdigest()[:12])
        return text


def names() -> list[str]:
    """Names of all shipped prompts, sorted."""
    root = resources.files(__name__)
    return sorted(p.name[: -len(_SUFFIX)] for p in root.iterdir()
                  if p.name.endswith(_SUFFIX) and p.is_file())


@cache
def load(name: str) -> Prompt:
    """The prompt called ``name`` (``"ask_plan"``; a ``.txt`` suffix is accepted too)."""
    stem = name.removesuffix(_SUFFIX)
    if stem not in names():
        raise UnknownPromptError(f"no prompt named {stem!r}; known: {', '.join(names())}")
    text = (resources.files(__name__) / (stem + _SUFFIX)).read_text(encoding="utf-8")
    return Prompt(stem, text)
