"""Log text is data: the one sanitizer for everything shown from a pool (SECURITY.md R7).

Any value of a record may hold terminal control sequences (``ESC[2J``, ``ESC]0;title BEL``,
``ESC[6n``, which makes a terminal type into the shell), C1 controls (``U+009B`` is CSI on
its own), bidi overrides that show text in another order than it is (``U+202E``),
zero-width characters and Unicode line separators. Whatever paints or prints record text
passes it through one of these, so such characters appear as visible escapes (``\\x1b``,
``\\u202e``) and trigger nothing:

- :func:`clean`: one terminal cell or line (newline shown as ``⏎``, tab as a space);
- :func:`clean_block`: multi-line text (tracebacks), newlines kept;
- :func:`visible`: a whole text output (a report, a table): newlines and tabs kept;
- :func:`json_escape`: JSON text: the characters JSON encoders leave raw become ``\\uXXXX``,
  losslessly (:func:`json_escape_bytes`: the same of UTF-8 bytes).

Markup (``[bold]``) is not touched here: the app renders text as plain ``Text``/``Segment``.
"""

from __future__ import annotations

from features.normalize import text_of

C0 = range(0x00, 0x20)
"""ASCII control characters (tab and newline are treated apart by each function)."""
C1 = range(0x80, 0xA0)
"""The 8-bit controls; ``U+009B`` alone starts a control sequence on some terminals."""
BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
"""Bidi marks, embeddings, overrides and isolates: they reorder what is shown."""
INVISIBLE = (0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF)
"""Zero-width characters: text that looks equal is not."""
LINE_SEPARATORS = (0x2028, 0x2029)
"""Unicode line and paragraph separators: some terminals and editors break lines there."""

DANGEROUS: frozenset[int] = frozenset((*C0, 0x7F, *C1, *BIDI, *INVISIBLE, *LINE_SEPARATORS))
"""Every code point no output of ours writes raw (except tab and newline, where allowed)."""


def _escape(c: int) -> str:
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


_VISIBLE_MAP = {c: _escape(c) for c in DANGEROUS if c not in (0x09, 0x0A)}
_VISIBLE_MAP[0x0D] = "\\r"
_VISIBLE = str.maketrans({chr(c): v for c, v in _VISIBLE_MAP.items()})
_CELL = str.maketrans({**{chr(c): v for c, v in _VISIBLE_MAP.items()},
                       "\t": " ",  # a tab is spacing, not an escape
                       "\n": "⏎"})
_JSON = str.maketrans({chr(c): f"\\u{c:04x}" for c in DANGEROUS if c not in (0x09, 0x0A)})

CELL_LIMIT = 4000
"""Characters of one value rendered on a line; the detail view shows more, in pieces."""


def clean(value: object, limit: int = CELL_LIMIT) -> str:
    """A one-line, control-free, length-capped string for a terminal cell."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else text_of(value)
    if len(s) > limit:
        s = s[:limit] + f"… (+{len(s) - limit} chars)"
    return s.translate(_CELL)


def clean_block(value: object, limit: int = 200_000) -> str:
    """Multi-line text (tracebacks): newlines kept, other controls made visible."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else text_of(value)
    if len(s) > limit:
        s = s[:limit] + f"\n… (+{len(s) - limit} chars not shown; export the record to see all)"
    return "\n".join(line.translate(_CELL) for line in s.split("\n"))


def visible(text: str) -> str:
    """A whole text output made safe for a terminal: every dangerous character shown as an
    escape, except newlines and tabs, so a multi-line report keeps its lines and columns."""
    return text.translate(_VISIBLE)


def json_escape(text: str) -> str:
    """JSON text with every dangerous character JSON encoders leave raw (DEL, C1, bidi,
    zero-width, U+2028/2029; and any raw C0 but tab and newline) written as ``\\uXXXX``.

    Lossless for valid JSON: such characters can only stand inside strings, where the
    escape decodes to the same character, so ``json.loads`` gives the same value."""
    return text.translate(_JSON)


_ASCII_SAFE = bytes(b for b in range(0x80) if b not in DANGEROUS or b in (0x09, 0x0A)) + \
    bytes(range(0x80, 0x100))
"""Every byte but the ASCII ones :func:`json_escape` escapes (deleting these leaves only
those)."""
_WIDE_PREFIXES = tuple(sorted({chr(c).encode()[:-1] for c in DANGEROUS if c >= 0x80}))
"""The UTF-8 bytes every dangerous non-ASCII character starts with (all but its last):
text without any of them holds no such character."""


def json_escape_bytes(data: bytes) -> bytes:
    """:func:`json_escape` of UTF-8 JSON text, as UTF-8 bytes (bytes that are not UTF-8
    decoded with U+FFFD, as a text stream decodes them). Text that needs no escape (all of
    a run's output, usually) comes back as it is without being decoded: a C-level scan
    at ~1.5 GB/s where decoding, escaping and encoding it again ran at ~0.3 GB/s."""
    if data.translate(None, _ASCII_SAFE):  # a control character but tab and newline, DEL
        return _escape_bytes(data)
    if data.isascii():
        return data
    if any(p in data for p in _WIDE_PREFIXES):
        return _escape_bytes(data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return _escape_bytes(data)
    return data


def _escape_bytes(data: bytes) -> bytes:
    return json_escape(data.decode("utf-8", "replace")).encode("utf-8")
