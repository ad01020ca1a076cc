"""Fitting values and columns to a width (tui/fit.py): a cut value ends in …, ids and
dotted names abbreviate first, and columns shrink, hide and grow in rank order."""

from __future__ import annotations

from rich.cells import cell_len

from tui.fit import WIDE, Col, abbreviate_dotted, abbreviate_id, ellipsize, fit, is_uuid, short_id


def test_a_cut_value_ends_in_an_ellipsis_and_keeps_its_width() -> None:
    assert ellipsize("execute_exception", 17) == "execute_exception"
    assert ellipsize("execute_exception", 10) == "execute_e…"
    assert ellipsize("abc", 0) == ""
    cut = ellipsize("日本語のロガー", 6)  # wide characters: cells, not characters
    assert cut.endswith("…") and cell_len(cut) <= 6


def test_ids_abbreviate_to_their_uuid_prefix() -> None:
    assert short_id("AgentId<90d151e9>") == "90d151e9"
    assert short_id("ebe7713b-28de-443e-86fd-1a7e6f450409") == "ebe7713b"
    assert short_id("9dc4f7c9-a57c-40cf-82b3-2ccf17a88b9d.jsonlog") == "9dc4f7c9"
    assert short_id("Agent<GeneratorAgent>") == "GeneratorAgent"
    assert short_id("fib_workflow") == "fib_workflow"
    assert abbreviate_id("AgentId<90d151e9>", 17) == "AgentId<90d151e9>"
    assert abbreviate_id("AgentId<90d151e9>", 8) == "90d151e9"
    assert abbreviate_id("[red]AgentId<evil>[/red]", 8) == "[red]Ag…"
    assert is_uuid("ebe7713b-28de-443e-86fd-1a7e6f450409")
    assert not is_uuid("ebe7713b-28de-443e-86fd-1a7e6f450409-copy")


def test_dotted_names_keep_their_last_part_apart() -> None:
    assert abbreviate_dotted("academy.exchange.client", 23) == "academy.exchange.client"
    assert abbreviate_dotted("academy.exchange.client", 18) == "a.exchange.client"
    assert abbreviate_dotted("academy.exchange.client", 12) == "a.e.client"
    assert abbreviate_dotted("academy.exchange.redis", 12) == "a.e.redis"
    assert abbreviate_dotted("academy.exchange.client", 8) == "a.e.cli…"


COLS = [Col("time", 6, 6, 6, 100, hide=False), Col("proc", 14, 8, 14, 10, lossless=True),
        Col("level", 5, 5, 5, 90, hide=False), Col("logger", 18, 10, 30, 30, lossless=True),
        Col("agent", 17, 8, 21, 50, lossless=True), Col("action", 11, 8, 11, 40),
        Col("state", 17, 17, 17, 20)]


def test_columns_shrink_then_hide_lowest_rank_first() -> None:
    w = fit(COLS, 80, 36)
    assert list(w) == ["time", "level", "agent", "action"]  # proc, state, logger hidden
    assert w["agent"] == 8 and w["action"] == 11  # an id abbreviated, no value cut
    assert sum(x + 1 for x in w.values()) <= 80 - 36
    w = fit(COLS, 100, 44)
    assert list(w) == ["time", "level", "logger", "agent", "action"]
    assert w["logger"] == 10


def test_a_wide_terminal_gives_cut_columns_their_whole_values() -> None:
    w = fit(COLS, 240, 50)  # the message keeps half
    assert w == {"time": 6, "proc": 14, "level": 5, "logger": 30, "agent": 21, "action": 11,
                 "state": 17}
    w = fit(COLS, 200, 50)  # the highest ranks first
    assert w["agent"] == 21 and 18 <= w["logger"] < 30
    w = fit(COLS, WIDE - 1, 50)  # below WIDE: the rest goes to the message
    assert w["logger"] < 30 and w["agent"] < 21


def test_columns_that_may_not_hide_shrink_instead() -> None:
    cols = [Col("a", 20, 5, 20, 1, hide=False), Col("b", 20, 20, 20, 2)]
    assert fit(cols, 30, 10) == {"a": 19}  # shrunk, then given back what hiding b freed
    assert fit(cols, 10, 10) == {"a": 5}  # as small as it goes, even past the budget
