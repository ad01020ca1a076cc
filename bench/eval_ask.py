"""Evaluate answers to natural-language questions about runs (``academy-tui ask``).

    .venv/bin/python bench/eval_ask.py [--home ACADEMY_HOME] [--keep DIR] [-v]

Asks 26 questions about the eight sample pools (``tests/data/samples.tar.xz``, unpacked
into a temporary directory unless ``--home`` names an Academy home holding them) and a
fibonacci demo run made here on real academy-py with one iteration slowed tenfold. Each
question has facts the answer must contain: ids and names (found as text, any case) and
numbers (found as a number in the answer, in s or ms, within 0.6 ms or 0.6%). The facts
come from the raw ``.jsonlog`` lines, read with ``json`` here, never from our reader.

The built-in analyst is always scored and must get every fact (the exit status is 1
otherwise). When ``OPENAI_BASE_URL`` (or ``OPENAI_API_KEY``) is set, the configured LLM
answers the same questions and its score is printed beside it (not a pass/fail target:
models vary), with how many of its citations were valid and numbers unsupported.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.run import Run  # noqa: E402
from steering.ask import Answer, ask  # noqa: E402
from steering.ask.verify import number_tokens  # noqa: E402
from steering.llm_config import LLMConfig  # noqa: E402

SAMPLES = ROOT / "tests" / "data" / "samples.tar.xz"
POOLS = {
    "thread": "08a98d9a-187e-463f-8012-cdac8e694d8f",
    "redis": "bfb81d0a-658d-4de2-8c6a-f3c39ba09f51",
    "exception": "2ecb7d3e-da4b-40f9-9d11-3c78d4b53842",
    "agent_driver": "5cb68564-3349-43fb-831c-2738a28aaa58",
    "http": "ebe7713b-28de-443e-86fd-1a7e6f450409",
    "pairs": "f56a2ad5-c530-4226-ae69-12187b3ca52a",
    "big_records": "f8680ad0-c4ed-44ac-9f63-3237d9ec68e2",
    "fork": "ab995d49-a2a6-474b-b8f7-97c0c842c6a6",
}
ENDS = ("success", "exception", "cancelled")
EXEC_ENDS = ("execute_success", "execute_exception", "execute_cancelled")


# -- the truth, from the raw lines ---------------------------------------------------------

class Truth:
    """One pool read with ``json``: records, calls, agents."""

    def __init__(self, pool: Path) -> None:
        self.pool = pool
        self.records: list[dict[str, Any]] = []
        for f in sorted(pool.glob("*.jsonlog")):
            for i, line in enumerate(f.read_bytes().splitlines(), start=1):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # bad lines (the fork sample has some) are not facts
                if isinstance(rec, dict) and "created" in rec:
                    rec["@file"], rec["@line"] = f.name, i
                    self.records.append(rec)
        times = [float(r["created"]) for r in self.records]
        self.t0, self.t1 = min(times), max(times)
        self.calls = self._calls()

    @property
    def wall(self) -> float:
        return self.t1 - self.t0

    def _calls(self) -> dict[str, dict[str, Any]]:
        calls: dict[str, dict[str, Any]] = {}
        for r in self.records:
            tag, state = r.get("academy.action_tag"), r.get("academy.action_state")
            if not tag or not state:
                continue
            c = calls.setdefault(tag, {"tag": tag, "states": {}, "action": None,
                                       "agent": None})
            c["action"] = r.get("academy.action") or c["action"]
            t = float(r["created"])
            c["states"][state] = min(t, c["states"].get(state, t))
            if state == "start":
                c["agent"] = r.get("academy.agent_id")
        for c in calls.values():
            st = c["states"]
            ends = [st[s] for s in ENDS if s in st]
            xends = [st[s] for s in EXEC_ENDS if s in st]
            c["total"] = min(ends) - st["start"] if ends and "start" in st else None
            c["exec"] = (st.get("execute_start"), min(xends) if xends else None)
            c["raised"] = "exception" in st or "execute_exception" in st
        return calls

    def slowest(self, action: str | None = None) -> dict[str, Any]:
        timed = [c for c in self.calls.values() if c["total"] is not None
                 and (action is None or c["action"] == action)]
        return max(timed, key=lambda c: c["total"])

    def executing(self, agent: str, at_s: float) -> dict[str, Any] | None:
        """The call ``agent`` was executing ``at_s`` seconds in (``None``: none)."""
        t = self.t0 + at_s
        hits = [c for c in self.calls.values() if c["agent"] == agent
                and c["exec"][0] is not None and c["exec"][0] <= t
                and (c["exec"][1] is None or c["exec"][1] >= t)]
        assert len(hits) <= 1, f"{len(hits)} calls of {agent} at {at_s}"
        return hits[0] if hits else None

    def previous(self, agent: str, at_s: float) -> dict[str, Any]:
        """The last call ``agent`` finished executing before ``at_s``."""
        t = self.t0 + at_s
        done = [c for c in self.calls.values() if c["agent"] == agent
                and c["exec"][1] is not None and c["exec"][1] < t]
        return max(done, key=lambda c: c["exec"][1])

    def max_executing(self) -> int:
        edges = sorted([(c["exec"][0], 1) for c in self.calls.values() if c["exec"][0]]
                       + [(c["exec"][1], -1) for c in self.calls.values()
                          if c["exec"][0] and c["exec"][1]],
                       key=lambda e: (e[0], e[1]))
        now = best = 0
        for _, d in edges:
            now += d
            best = max(best, now)
        return best

    def lifecycle(self, template: str) -> dict[str, float]:
        """Agent id -> time of its first record with this ``msg`` template."""
        out: dict[str, float] = {}
        for r in self.records:
            if r.get("msg") == template and r.get("academy.agent_id"):
                a, t = r["academy.agent_id"], float(r["created"])
                out[a] = min(t, out.get(a, t))
        return out

    def agents_alive_max(self) -> int:
        up = self.lifecycle("Running agent (%s; %s)")
        down: dict[str, float] = {}
        for r in self.records:
            if r.get("msg") == "Shutdown agent (%s; %s)" and r.get("academy.agent_id"):
                a, t = r["academy.agent_id"], float(r["created"])
                down[a] = max(t, down.get(a, t))
        edges = sorted([(t, 1) for t in up.values()] + [(t, -1) for t in down.values()],
                       key=lambda e: (e[0], e[1]))
        now = best = 0
        for _, d in edges:
            now += d
            best = max(best, now)
        return best

    def errors(self) -> list[dict[str, Any]]:
        return [r for r in self.records if int(r.get("levelno", 0)) >= 40]


# -- facts ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fact:
    """Something the answer must contain: ``text`` (any case) or ``seconds``/``count``."""

    text: str | None = None
    seconds: float | None = None
    count: int | None = None

    def __str__(self) -> str:
        if self.text is not None:
            return repr(self.text)
        return f"{self.seconds:.4f} s" if self.seconds is not None else f"count {self.count}"

    def found(self, answer: str) -> bool:
        if self.text is not None:
            return self.text.lower() in answer.lower()
        nums = number_tokens(answer)
        if self.count is not None:
            return any(n.value == self.count and n.unit in ("", "x") for n in nums)
        assert self.seconds is not None
        scale = {"ms": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3, "min": 60.0}
        tol = max(0.0006, 0.006 * self.seconds)
        return any(abs(n.value * scale.get(n.unit, 1.0) - self.seconds) <= tol
                   for n in nums if n.unit not in ("%", "x"))


def T(text: str) -> Fact:
    return Fact(text=text)


def S(seconds: float) -> Fact:
    return Fact(seconds=seconds)


def N(count: int) -> Fact:
    return Fact(count=count)


@dataclass
class Case:
    """One question about one run, with the facts its answer must hold."""

    run: str
    question: str
    facts: Callable[[Truth], list[Fact]]
    compare: str | None = None
    """Another run (a key of POOLS): passed as ``--compare`` would pass it."""


def _slowest(action: str | None = None) -> Callable[[Truth], list[Fact]]:
    def facts(t: Truth) -> list[Fact]:
        c = t.slowest(action)
        return [T(c["tag"][:8]), S(c["total"])]
    return facts


def _agent_at(agent: str, at_s: float) -> Callable[[Truth], list[Fact]]:
    def facts(t: Truth) -> list[Fact]:
        c = t.executing(agent, at_s)
        if c is None:  # between calls: say so, and name the call before
            return [T("not executing"), T(t.previous(agent, at_s)["tag"][:8])]
        return [T(c["tag"][:8]), T(c["action"])]
    return facts


def _expected(expected: float) -> Callable[[Truth], list[Fact]]:
    return lambda t: [S(t.wall), S(t.wall - expected)]


def _errors(t: Truth) -> list[Fact]:
    raised = [c for c in t.calls.values() if c["raised"]]
    facts = [T(c["tag"][:8]) for c in raised]
    for r in t.errors():
        facts += [T(f"{r['@file'][:8]}:{r['@line']}"), T(r["message"][:40])]
    return facts or [T("no errors")]


def _slowest_start(t: Truth) -> list[Fact]:
    up, launched = t.lifecycle("Running agent (%s; %s)"), t.lifecycle("Launched agent (%s; %s)")
    delays = {a: up[a] - launched[a] for a in up if a in launched}
    a = max(delays, key=lambda k: delays[k])
    return [T(a), S(delays[a])]


def _compare(t: Truth, other: Truth) -> list[Fact]:
    return [S(t.wall), S(other.wall)]


CASES: list[Case] = [
    Case("thread", "What were the slowest actions?", _slowest()),
    Case("thread", "I expected 2 s; where did the time go?", _expected(2.0)),
    Case("thread", "Any errors?", _errors),
    Case("thread", "What was AgentId<2c1ec60a> doing at 1.5 s?",
         _agent_at("AgentId<2c1ec60a>", 1.5)),
    Case("thread", "How many actions ran at once?", lambda t: [N(t.max_executing())]),
    Case("thread", "How does this run compare with bfb81d0a?",
         lambda t: _compare(t, Truth(t.pool.parent / POOLS["redis"]))),
    Case("exception", "What failed?", _errors),
    Case("exception", "Which action raised an exception?",
         lambda t: [T(c["tag"][:8]) for c in t.calls.values() if c["raised"]]
         + [T("next_item")]),
    Case("exception", "What was AgentId<25664cb3> doing at 1.0 s?",
         _agent_at("AgentId<25664cb3>", 1.0)),
    Case("exception", "What was the generator doing at +1.15 s?",
         _agent_at("AgentId<25664cb3>", 1.15)),
    Case("exception", "Is anything hung?", lambda t: [T("nothing looks hung")]),
    Case("pairs", "How many actions were executing at once?",
         lambda t: [N(t.max_executing())]),
    Case("pairs", "What were the slowest calls?", _slowest()),
    Case("pairs", "Why did the run take so long?",
         lambda t: [S(t.wall), T(t.slowest()["tag"][:8]), S(t.slowest()["total"])]),
    Case("http", "Where did the time go? I expected 4 s.", _expected(4.0)),
    Case("http", "Which agent was slowest to start up?", _slowest_start),
    Case("redis", "What were the slowest actions?", _slowest()),
    Case("redis", "Were there any errors?", _errors),
    Case("agent_driver", "Which action took the longest?", _slowest()),
    Case("agent_driver", "What was the FibonacciLauncher doing at 2 s?",
         _agent_at("AgentId<a47a98aa>", 2.0)),
    Case("fork", "How many agents were alive at once?", lambda t: [N(t.agents_alive_max())]),
    Case("big_records", "What was the slowest next_item call?", _slowest("next_item")),
    Case("demo", "Were there any slowdowns?",
         lambda t: [T("slowdown"), T(t.slowest("next_item")["tag"][:8])]),
    Case("demo", "I expected 1 s; where did the time go?", _expected(1.0)),
    Case("demo", "Is anything hung?", lambda t: [T("nothing looks hung")]),
    Case("redis", "Is this run slower than the thread one?",
         lambda t: _compare(t, Truth(t.pool.parent / POOLS["thread"])), compare="thread"),
]


# -- running -------------------------------------------------------------------------------

@dataclass
class Scored:
    """One case answered by one backend."""

    case: Case
    answer: Answer
    facts: list[Fact]
    missing: list[Fact] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def right(self) -> bool:
        return not self.missing


@dataclass
class Report:
    """All cases for one backend."""

    backend: str
    scored: list[Scored]

    @property
    def score(self) -> float:
        """Share of questions whose answer holds every fact."""
        return sum(s.right for s in self.scored) / max(len(self.scored), 1)

    @property
    def fact_score(self) -> float:
        total = sum(len(s.facts) for s in self.scored)
        return sum(len(s.facts) - len(s.missing) for s in self.scored) / max(total, 1)


def make_demo(home: Path) -> Path:
    """A demo run with iteration 12 of 20 slowed tenfold; its pool directory."""
    from steering.demo import DemoOptions, run_demo

    res = run_demo(DemoOptions(academy_home=home, iterations=20, sleep=0.02, slow_at=12,
                               slow_factor=10.0, label="eval-ask"))
    if not res.ok:
        raise RuntimeError(f"the demo run failed: {res.error}")
    return Path(res.pool_dir)


def evaluate(samples_home: Path, demo_pool: Path | None, config: LLMConfig | None = None,
             builtin: bool = True) -> Report:
    """Ask every case (the demo ones only with ``demo_pool``) and score the answers."""
    pools = {k: samples_home / "logs" / v for k, v in POOLS.items()}
    if demo_pool is not None:
        pools["demo"] = demo_pool
    runs: dict[str, Run] = {}
    truths: dict[str, Truth] = {}

    def run_of(key: str) -> Run:
        if key not in runs:
            runs[key] = Run(pools[key])
            runs[key].load()
        return runs[key]

    scored = []
    for case in CASES:
        if case.run not in pools:
            continue
        truth = truths.setdefault(case.run, Truth(pools[case.run]))
        facts = case.facts(truth)
        others = [run_of(case.compare)] if case.compare else []
        started = time.perf_counter()
        answer = ask(run_of(case.run), case.question, config, others=others,
                     home=samples_home, builtin=builtin)
        took = time.perf_counter() - started
        missing = [f for f in facts if not f.found(answer.text)]
        scored.append(Scored(case, answer, facts, missing, took))
    name = "built-in analyst" if builtin else f"LLM {config.model if config else '?'}"
    return Report(name, scored)


def show(report: Report, verbose: bool = False) -> None:
    print(f"\n{report.backend}")
    print(f"{'run':<13}{'kind':<12}{'facts':>6}  {'s':>5}  question")
    for s in report.scored:
        mark = "ok" if s.right else "MISS"
        got = f"{len(s.facts) - len(s.missing)}/{len(s.facts)}"
        print(f"{s.case.run:<13}{(s.answer.kind or '-'):<12}{got:>6}  {s.seconds:5.2f}  "
              f"{s.case.question}  [{mark}]")
        if s.missing:
            print(f"{'':31}missing: {', '.join(str(f) for f in s.missing)}")
        if verbose or s.missing:
            for line in s.answer.text.splitlines():
                print(f"{'':31}| {line}")
    cites = [c for s in report.scored for c in s.answer.citations]
    unsupported = sum(not n.supported for s in report.scored for n in s.answer.numbers)
    fallbacks = sum(s.answer.backend == "builtin" for s in report.scored)
    print(f"questions fully right: {sum(s.right for s in report.scored)}/{len(report.scored)}"
          f" ({report.score:.0%}); facts found: {report.fact_score:.0%}; citations valid: "
          f"{sum(c.valid for c in cites)}/{len(cites)}; unsupported numbers: {unsupported}"
          + (f"; answered by the built-in analyst after a fallback: {fallbacks}"
             if not report.backend.startswith("built-in") else ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, help="an Academy home holding the sample pools")
    p.add_argument("--keep", type=Path, help="write the demo run here (default: a temp dir)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every answer")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eval-ask-") as tmp:
        home = args.home
        if home is None:
            with tarfile.open(SAMPLES) as tar:
                tar.extractall(tmp, filter="data")
            home = Path(tmp) / "academy_home"
        demo = make_demo(args.keep or Path(tmp) / "demo")
        builtin = evaluate(home, demo)
        show(builtin, args.verbose)
        config = LLMConfig.load()
        if config.configured:
            llm = evaluate(home, demo, config, builtin=False)
            show(llm, args.verbose)
            print(f"\nscores: built-in analyst {builtin.score:.0%}, {llm.backend} "
                  f"{llm.score:.0%} ({config.resolved_mode} mode)")
        else:
            print(f"\nscore: built-in analyst {builtin.score:.0%} (set OPENAI_BASE_URL or "
                  "OPENAI_API_KEY to score an LLM too)")
    return 0 if builtin.score == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
