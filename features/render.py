"""Report sections rendered: as text for a terminal or a pipe, as Markdown, as JSON.

A :class:`Section` is a title with lines, a table or data; :mod:`features.report` builds
them (the run's story), this module only renders them.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any

from features.table import Table


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)
    table: Table | None = None
    data: Any = None


def render_text(secs: list[Section], width: int | None = 40) -> str:
    """The report as plain text: table cells longer than ``width`` are cut with ``…``
    (for a terminal); ``width=None`` prints every value whole (for a pipe or a file,
    where a cut value is lost for good)."""
    out = []
    for s in secs:
        out.append(s.title)
        out.append("=" * len(s.title))
        out.extend(s.lines)
        if s.table is not None:
            out.append(s.table.format(max_rows=60, max_width=width or sys.maxsize))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def render_markdown(secs: list[Section]) -> str:
    """The report as Markdown: aligned lines (indented, key-value, ``+ t`` records) in
    fenced code blocks, prose as paragraphs, tables as tables. Text that Markdown would
    read as HTML (``UserId<b3edba02>``) sits in code spans, so the raw text reads as it
    will render, without entities."""
    out = []
    for s in secs:
        out.append(f"## {s.title}\n")
        for kind, lines in _md_blocks(s.lines):
            if kind == "code":
                fence = "`" * max(3, _longest_backticks("\n".join(lines)) + 1)
                out.append("\n".join([fence + "text", *lines, fence]))
            else:
                out.append(("\n" if kind == "list" else "\n\n").join(
                    _md_text(ln) for ln in lines))
            out.append("")
        if s.table is not None:
            t = s.table
            out.append("| " + " | ".join(t.columns) + " |")
            out.append("|" + "---|" * len(t.columns))
            for r in t.records():
                out.append("| " + " | ".join(_md(r[c]) for c in t.columns) + " |")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


_ALIGNED = ("  ", "+ ", "pool ", "path ", "status ", "records ", "note", "ignored ")
"""Starts of the lines that are columns or key-value pairs, kept as they are."""


def _md_blocks(lines: list[str]) -> list[tuple[str, list[str]]]:
    """Consecutive lines grouped as ``code`` (aligned), ``list`` (``- ...``) or ``prose``;
    an empty line ends a group."""
    blocks: list[tuple[str, list[str]]] = []
    last = ""
    for ln in lines:
        if not ln.strip():
            last = ""
            continue
        kind = "code" if ln.startswith(_ALIGNED) else "list" if ln.startswith("- ") \
            else "prose"
        if kind == last:
            blocks[-1][1].append(ln)
        else:
            blocks.append((kind, [ln]))
        last = kind
    return blocks


_HTMLISH = re.compile(r"<[^\s<]|&#?\w+;|`")
"""What Markdown may read as a tag, an entity or a code span (``Id<0a>`` is no tag, but
``Id<f8>`` is: both are spans, so like values look alike)."""
_EDGE = "([{\"'"
_TAIL = ".,;:!?)]}\"'"


def _longest_backticks(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)


def _code_span(text: str) -> str:
    ticks = "`" * (_longest_backticks(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _md_text(text: str) -> str:
    """Prose for Markdown: a word holding ``<tag``, ``&name;`` or a backtick becomes a
    code span (``UserId<b3edba02>`` would otherwise be read as an HTML tag and vanish);
    punctuation around it stays outside."""
    def word(m: re.Match[str]) -> str:
        w = m.group(0)
        if not _HTMLISH.search(w):
            return w
        core = w.lstrip(_EDGE)
        head = w[: len(w) - len(core)]
        body = core.rstrip(_TAIL)
        tail = core[len(body):]
        if not body or not _HTMLISH.search(body):
            body, head, tail = w, "", ""
        return head + _code_span(body) + tail
    return re.sub(r"\S+", word, text)


def _md(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return _md_text(str(v).replace("\n", " ")).replace("|", "\\|")


def to_json(secs: list[Section]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in secs:
        key = s.title.lower().replace(" ", "_")
        ent: dict[str, Any] = {}
        if s.data is not None:
            ent["data"] = s.data
        if s.lines:
            ent["text"] = [ln for ln in s.lines if ln]
        if s.table is not None:
            ent["rows"] = s.table.records()
        out[key] = ent
    return out


__all__ = ["Section", "render_markdown", "render_text", "to_json"]
