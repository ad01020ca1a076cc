"""The one sanitizer: what each function makes of every kind of dangerous character, in
one table, and JSON escaping that loses nothing."""

from __future__ import annotations

import json
import random

import orjson
import pytest

from features.normalize import _flat_json, text_of
from features.safe import DANGEROUS, clean, clean_block, json_escape, json_escape_bytes, visible

CASES: list[tuple[str, str, str]] = [
    # (input, clean(input), visible(input))
    ("\x1b[2J", "\\x1b[2J", "\\x1b[2J"),  # clear screen
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07", "\\x1b]0;title\\x07"),  # window title
    ("\x1b]8;;http://x\x1b\\", "\\x1b]8;;http://x\\x1b\\", "\\x1b]8;;http://x\\x1b\\"),  # link
    ("\x1b[6n", "\\x1b[6n", "\\x1b[6n"),  # the terminal answers on stdin
    ("a\x00b", "a\\x00b", "a\\x00b"),
    ("bell\x07", "bell\\x07", "bell\\x07"),
    ("del\x7f", "del\\x7f", "del\\x7f"),
    ("\x9b31m", "\\x9b31m", "\\x9b31m"),  # C1 CSI
    ("\x85next", "\\x85next", "\\x85next"),  # C1 NEL
    ("abc\u202edcba", "abc\\u202edcba", "abc\\u202edcba"),  # right-to-left override
    ("\u202a\u202b\u202c\u202d", "\\u202a\\u202b\\u202c\\u202d", "\\u202a\\u202b\\u202c\\u202d"),
    ("\u2066x\u2067y\u2068z\u2069", "\\u2066x\\u2067y\\u2068z\\u2069",
     "\\u2066x\\u2067y\\u2068z\\u2069"),  # isolates
    ("\u200e\u200f\u061c", "\\u200e\\u200f\\u061c", "\\u200e\\u200f\\u061c"),  # marks
    ("ad\u200bmin", "ad\\u200bmin", "ad\\u200bmin"),  # zero-width space
    ("\u200c\u200d\u2060", "\\u200c\\u200d\\u2060", "\\u200c\\u200d\\u2060"),
    ("\ufeffkey", "\\ufeffkey", "\\ufeffkey"),  # byte order mark
    ("one\u2028two", "one\\u2028two", "one\\u2028two"),  # line separator
    ("one\u2029two", "one\\u2029two", "one\\u2029two"),  # paragraph separator
    ("over\rwrite", "over\\rwrite", "over\\rwrite"),
    ("two\nlines", "two⏎lines", "two\nlines"),
    ("a\tb", "a b", "a\tb"),
    ("\x1b[31mred\x1b[0m\r\n", "\\x1b[31mred\\x1b[0m\\r⏎", "\\x1b[31mred\\x1b[0m\\r\n"),
    ("é ü 日本 😀 [bold]x[/]", "é ü 日本 😀 [bold]x[/]", "é ü 日本 😀 [bold]x[/]"),
    ("", "", ""),
]


@pytest.mark.parametrize("raw,want_clean,want_visible", CASES)
def test_clean_and_visible(raw: str, want_clean: str, want_visible: str) -> None:
    assert clean(raw) == want_clean
    assert visible(raw) == want_visible
    # clean_block keeps the lines and cleans each one as clean does.
    assert clean_block(raw) == "\n".join(clean(ln) for ln in raw.split("\n"))
    for out in (clean(raw), clean_block(raw), visible(raw)):
        assert not any(ord(c) in DANGEROUS for c in out if c not in "\n\t")
    assert visible(visible(raw)) == visible(raw)  # a second pass changes nothing


def test_every_dangerous_code_point_is_escaped() -> None:
    for c in sorted(DANGEROUS):
        ch = chr(c)
        assert ch not in clean(ch)
        if ch not in "\n\t":
            assert ch not in clean_block(f"x{ch}y")
            assert ch not in visible(ch) and ch not in json_escape(ch)


def test_clean_caps_length_and_handles_non_strings() -> None:
    assert clean(None) == "" and clean_block(None) == ""
    assert clean(42) == "42"
    assert clean("x" * 10, limit=4) == "xxxx… (+6 chars)"
    assert clean_block("ab\x1b", limit=2).startswith("ab\n… (+1 chars not shown")


RECORDS = [
    {"message": raw, raw or "empty": [raw, {"k": raw}], "n": 1.5} for raw, _, _ in CASES
] + [{"all": "".join(chr(c) for c in sorted(DANGEROUS)), "del\x7fkey": "\u2028"}]


@pytest.mark.parametrize("rec", RECORDS)
@pytest.mark.parametrize("encoder", ["orjson", "json", "json-ascii", "orjson-indent"])
def test_json_escape_is_lossless_and_terminal_safe(rec: dict[str, object],
                                                   encoder: str) -> None:
    text = {
        "orjson": lambda: orjson.dumps(rec).decode(),
        "orjson-indent": lambda: orjson.dumps(rec, option=orjson.OPT_INDENT_2).decode(),
        "json": lambda: json.dumps(rec, ensure_ascii=False),
        "json-ascii": lambda: json.dumps(rec),
    }[encoder]()
    out = json_escape(text)
    assert json.loads(out) == json.loads(text) == rec
    assert orjson.loads(out) == rec
    assert not any(ord(c) in DANGEROUS for c in out if c not in "\n\t")


def test_json_escape_leaves_clean_json_alone() -> None:
    text = orjson.dumps({"a": "é 日本 \\u202e", "b": [1, 2.5, None]},
                        option=orjson.OPT_INDENT_2).decode()
    assert json_escape(text) == text
    assert json_escape('"\u202e"') == '"\\u202e"' and json_escape('"\x9b"') == '"\\u009b"'


def _escaped(data: bytes) -> bytes:
    """What the command line's guard made of JSON bytes before: decoded (U+FFFD for bytes
    that are not UTF-8), escaped, encoded."""
    return json_escape(data.decode("utf-8", "replace")).encode("utf-8")


def test_json_escape_bytes_is_json_escape_of_the_text() -> None:
    """Every dangerous character alone and among others, the safe characters that share
    their first bytes (U+00A0-U+00FF, U+2010-U+2027, U+FE00-U+FFFD), bytes that are not
    UTF-8 (a stray byte, a character cut short) and 3,000 random mixes of them: the same
    bytes as escaping the decoded text. Text that needs no escape is the same object."""
    near = [0xA0, 0xE9, 0xFF, 0x0600, 0x061B, 0x061D, 0x2010, 0x2013, 0x2027, 0x2030,
            0x2061, 0x206A, 0xFE0F, 0xFEFE, 0xFFFD, 0x1F642, 0x65E5]
    pieces = [chr(c).encode() for c in sorted(DANGEROUS)] + [chr(c).encode() for c in near] + [
        b"\xff", b"\xfe", b"\xe2\x80", b"\xc2", b"\xef\xbb", b"\xed\xa0\x80",
        b'{"a":"x"}', b"\n", b"\t", b" ", b"plain", b"\\u001b"]
    for p in pieces:
        assert json_escape_bytes(p) == _escaped(p), p
        assert json_escape_bytes(b"ok " + p + b" ok") == _escaped(b"ok " + p + b" ok"), p
    rng = random.Random(7)
    for _ in range(3000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert json_escape_bytes(data) == _escaped(data), data
    clean_text = orjson.dumps({"a": "é 日本 \\u202e 🙂", "b": [1, None]}) + b"\n"
    assert json_escape_bytes(clean_text) is clean_text
    assert json_escape_bytes(b"ascii\tonly\n") == b"ascii\tonly\n"


def test_values_nested_too_deep_to_print_are_written_as_json() -> None:
    """A JSON line may nest 1,024 levels (orjson reads that many); Python prints ~1,000.
    ``text_of`` is ``str`` where that works, and JSON text, built without recursion,
    where it does not (any depth, keys and values of every kind)."""
    shallow = {"a": [1, "x", None, True, 2.5, {"b": []}], "c": {}}
    assert text_of(shallow) == str(shallow)
    for depth in (1000, 1023):
        deep = orjson.loads(b"[" * depth + b"]" * depth)
        got = text_of(deep)
        assert got == "[" * depth + "]" * depth
        assert clean(deep, limit=10).startswith("[" * 10)
    text = '{"k": ' + '[{"x": "y\\"", "n": 1.5, "t": null}, ' * 1000 + "0" + "]" * 1000 + "}"
    assert text_of(orjson.loads(text)) == text  # the same JSON, as json.dumps spaces it
    assert _flat_json(shallow) == json.dumps(shallow)
