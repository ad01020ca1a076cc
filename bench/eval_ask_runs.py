"""Evaluate answers to the questions people ask, over runs made here (issue 14).

    .venv/bin/python bench/eval_ask_runs.py [--runs DIR] [--gguf FILE] [-v]

Makes twelve real academy-py runs (``bench/ask_runs.py``: clean, slowdown, level shift,
drift, speed-up, hung call, shutdown hang, failed call, crashed worker process, steered,
Parsl start-up, process pool) unless ``--runs`` holds them already, then asks each its
questions. Every question has expected facts read from the raw ``.jsonlog`` lines with
``json`` (ids, counts, seconds) or the plain word a person needs ("crashed", "level
shift"), and words that must not appear ("Nothing looks hung" for a hung run).

Grades: **correct** (every fact, nothing forbidden), **partly** (some facts, nothing
forbidden), **wrong** (no fact, or a forbidden one), **refused** (the answer says it cannot
tell). Numbers that trace to no fact are counted per mode (the verifier's unsupported ones
and the ``[?]`` marks).

Modes: the built-in analyst (always; exit status 1 unless >= 90% correct and no refusal);
with a local model (``--gguf FILE`` or ``$ACADEMY_TUI_EVAL_GGUF``: served by xllamacpp on
127.0.0.1) the ``kinds`` mode as shipped (the model routes only what the analyst cannot
read), ``kinds`` with the model routing every question, and ``kinds`` with phrasing; each
printed beside the built-in per question, with seconds per question.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ask_runs import RUNS, make_runs  # noqa: E402
from eval_ask import Fact, N, S, T, Truth  # noqa: E402

from features.run import Run  # noqa: E402
from steering.ask import Answer, ask  # noqa: E402
from steering.ask.kinds_mode import MARK  # noqa: E402

REFUSALS = ("I cannot tell what kind of question", "Which run should I compare",
            "Tell me a time", "Tell me an agent")


# -- truths read from the raw lines --------------------------------------------------------

def launched(t: Truth) -> int:
    return len(t.lifecycle("Launched agent (%s; %s)"))


def outcome_count(t: Truth, state: str) -> int:
    return sum(1 for c in t.calls.values() if state in c["states"])


def median_total(t: Truth, action: str) -> float:
    return statistics.median(c["total"] for c in t.calls.values()
                             if c["action"] == action and c["total"] is not None)


def raised(t: Truth) -> list[dict]:
    return [c for c in t.calls.values() if c["raised"]]


def cancelled(t: Truth) -> list[dict]:
    return [c for c in t.calls.values() if "cancelled" in c["states"]]


def files(t: Truth) -> int:
    return len(list(t.pool.glob("*.jsonlog")))


def steering_records(t: Truth, kind: str) -> list[dict]:
    return [r for r in t.records if r.get("name") == "academy_tui.steering"
            and r.get("steering.kind") == kind]


def killed_agent(t: Truth) -> str:
    """The generator whose process stopped writing mid-call (its log ends first)."""
    gen = [r for r in t.records if r.get("msg", "").startswith("Running agent")
           and "GeneratorAgent" in r.get("message", "")]
    return str(gen[0]["academy.agent_id"])


def stuck_agent(t: Truth) -> str:
    """The agent whose shutdown took longest (from 'Shutting down' to 'Shutdown')."""
    start: dict[str, float] = {}
    for r in t.records:
        if r.get("msg", "").startswith("Shutting down agent") and r.get("academy.agent_id"):
            start[r["academy.agent_id"]] = float(r["created"])
    done: dict[str, float] = {}
    for r in t.records:
        if r.get("msg", "").startswith("Shutdown agent") and r.get("academy.agent_id"):
            done[r["academy.agent_id"]] = float(r["created"])
    return max((a for a in start if a in done), key=lambda a: done[a] - start[a])


def slowest_start(t: Truth) -> tuple[str, float]:
    up, la = t.lifecycle("Running agent (%s; %s)"), t.lifecycle("Launched agent (%s; %s)")
    delays = {a: up[a] - la[a] for a in up if a in la}
    a = max(delays, key=lambda k: delays[k])
    return a, delays[a]


# -- the cases ------------------------------------------------------------------------------

@dataclass
class Case:
    run: str
    question: str
    facts: Callable[[Truth], list[Fact]]
    forbid: tuple[str, ...] = ()


def tags(cs: list[dict]) -> list[Fact]:
    return [T(c["tag"][:8]) for c in cs]


CASES: list[Case] = [
    # clean
    Case("clean", "How many agents were launched?", lambda t: [N(launched(t)), T("launched")]),
    Case("clean", "What happened to this run?",
         lambda t: [T("finished"), N(outcome_count(t, "success"))],
         ("crashed", "hung", "failed")),
    Case("clean", "Was anything abnormal?", lambda t: [T("Nothing abnormal")]),
    Case("clean", "How long does next_item usually take?",
         lambda t: [S(median_total(t, "next_item"))]),
    Case("clean", "How many calls succeeded?",
         lambda t: [N(outcome_count(t, "success")), T("succeeded")]),
    Case("clean", "Tell me about this run", lambda t: [T("finished")], ("crashed", "hung")),
    # slowdown
    Case("slow", "Were there any slowdowns?",
         lambda t: [T("slowdown"), T(t.slowest("next_item")["tag"][:8])]),
    Case("slow", "Which call was the slowest?",
         lambda t: [T(t.slowest()["tag"][:8]), S(t.slowest()["total"])]),
    Case("slow", "Was anything abnormal?",
         lambda t: [T("Yes"), T(t.slowest("next_item")["tag"][:8])], ("Nothing abnormal",)),
    Case("slow", "Why did the run take so long?",
         lambda t: [S(t.wall), T(t.slowest()["tag"][:8])]),
    Case("slow", "Does the run look healthy?", lambda t: [T("slow")], ("Nothing abnormal",)),
    # level shift
    Case("shift", "What changed in how long next_item takes?", lambda t: [T("level shift")]),
    Case("shift", "Why are the later next_item calls slower than the first ones?",
         lambda t: [T("level shift"), T("call 20")]),
    Case("shift", "Did next_item get slower?", lambda t: [T("level shift")]),
    Case("shift", "Was anything abnormal?", lambda t: [T("level shift")],
         ("Nothing abnormal",)),
    Case("shift", "What happened to this run?", lambda t: [T("level shift")]),
    # drift
    Case("drift", "Is there a drift?", lambda t: [T("drifting")]),
    Case("drift", "Did the calls get slower over time?", lambda t: [T("drifting")]),
    Case("drift", "Anything unusual?", lambda t: [T("drifting")], ("Nothing abnormal",)),
    Case("drift", "How long does next_item take?",
         lambda t: [S(median_total(t, "next_item")), T("p95")]),
    # speed-up
    Case("speedup", "Why are the first next_item calls slower than the later ones?",
         lambda t: [T("faster")]),
    Case("speedup", "Did the calls speed up?", lambda t: [T("faster")]),
    Case("speedup", "What changed?", lambda t: [T("set_sleep")]),
    # hung call
    Case("hung_call", "Did anything hang?",
         lambda t: [T("hung"), *tags(cancelled(t))], ("Nothing looks hung",)),
    Case("hung_call", "Is anything stuck?", lambda t: [T("hung"), *tags(cancelled(t))],
         ("Nothing looks hung",)),
    Case("hung_call", "What happened to this run?", lambda t: [T("hung")]),
    Case("hung_call", "How many calls were cancelled?",
         lambda t: [N(len(cancelled(t))), T("cancelled")]),
    # shutdown hang
    Case("shutdown", "Did anything hang?",
         lambda t: [T("hung in shutdown"), T(stuck_agent(t))], ("Nothing looks hung",)),
    Case("shutdown", "Was anything abnormal?", lambda t: [T("hung in shutdown")],
         ("Nothing abnormal",)),
    Case("shutdown", "What happened to this run?", lambda t: [T("shutdown")]),
    Case("shutdown", "Were there exceptions?", lambda t: [T("TimeoutError")]),
    # failed call
    Case("failed", "Why did this run fail?",
         lambda t: [*tags(raised(t)),
                    S(min(c["states"]["exception"] for c in raised(t)) - t.t0)]),
    Case("failed", "Which action raised an exception?",
         lambda t: [*tags(raised(t)), T("next_item")]),
    Case("failed", "How many actions failed?", lambda t: [N(len(raised(t))), T("raised")]),
    Case("failed", "What happened to this run?", lambda t: [T("failed")]),
    Case("failed", "What went wrong?", lambda t: tags(raised(t))),
    # crashed worker process
    Case("crash", "Which agent crashed and when?", lambda t: [T(killed_agent(t)),
                                                            T("crashed at +")]),
    Case("crash", "What happened to this run?", lambda t: [T("crashed")]),
    Case("crash", "Did anything hang?", lambda t: [T(killed_agent(t))],
         ("Nothing looks hung",)),
    Case("crash", "How many processes were there?", lambda t: [N(files(t)), T("process")]),
    Case("crash", "Was anything abnormal?", lambda t: [T("crashed")], ("Nothing abnormal",)),
    # steered
    Case("steered", "What did the steering agent change, and when?",
         lambda t: [T(str(steering_records(t, "apply")[0]["steering.id"])),
                    T("applied at +")]),
    Case("steered", "Which suggestions did steering make?",
         lambda t: [N(len(steering_records(t, "suggestion"))), T("suggestion")]),
    Case("steered", "What happened to this run?", lambda t: [T("steering agent made")]),
    Case("steered", "Was anything approved or applied?", lambda t: [T("applied at +")]),
    # Parsl start-up
    Case("parsl", "Where did the time go?", lambda t: [S(t.wall), T("to start")]),
    Case("parsl", "Which agent was slowest to start up?",
         lambda t: [T(slowest_start(t)[0]), S(slowest_start(t)[1])]),
    Case("parsl", "What happened to this run?", lambda t: [T("to start")]),
    Case("parsl", "How many agents were launched?", lambda t: [N(launched(t))]),
    Case("parsl", "Why did the first call take so long?", lambda t: [T("to start")]),
    # process pool
    Case("processes", "How many actions ran at once?", lambda t: [N(t.max_executing())]),
    Case("processes", "How many processes wrote to the pool?", lambda t: [N(files(t))]),
    Case("processes", "What were the slowest actions?",
         lambda t: [T(t.slowest()["tag"][:8]), S(t.slowest()["total"])]),
    Case("processes", "I expected 1 s; where did the time go?",
         lambda t: [S(t.wall), S(t.wall - 1.0)]),
    Case("processes", "Any errors?", lambda t: [T("No errors")]),
]

# Paraphrases the built-in analyst's reading may miss: where a model's routing can help.
ROUTING: list[Case] = [
    Case("failed", "Which thing blew up?", lambda t: tags(raised(t))),
    Case("clean", "headcount of agents?", lambda t: [N(launched(t))]),
    Case("crash", "did a worker die on us?", lambda t: [T(killed_agent(t))]),
    Case("drift", "is next_item creeping up?", lambda t: [T("drifting")]),
    Case("slow", "which invocation dragged?", lambda t: [T(t.slowest()["tag"][:8])]),
    Case("steered", "what knobs got turned?",
         lambda t: [T(str(steering_records(t, "apply")[0]["steering.id"]))]),
]


# -- grading --------------------------------------------------------------------------------

@dataclass
class Graded:
    case: Case
    answer: Answer
    grade: str
    missing: list[Fact] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)
    untraced: int = 0
    seconds: float = 0.0


def grade(case: Case, truth: Truth, a: Answer, seconds: float) -> Graded:
    facts = case.facts(truth)
    text = a.text
    untraced = sum(not n.supported for n in a.numbers) + text.count(MARK)
    if a.kind == "unknown" or any(text.startswith(r) for r in REFUSALS):
        return Graded(case, a, "refused", facts, [], untraced, seconds)
    missing = [f for f in facts if not f.found(text)]
    bad = [w for w in case.forbid if w.lower() in text.lower()]
    g = ("correct" if not missing and not bad else
         "partly" if len(missing) < len(facts) and not bad else "wrong")
    return Graded(case, a, g, missing, bad, untraced, seconds)


Asker = Callable[[Run, str], Answer]


def evaluate(runs: dict[str, Path], cases: list[Case], asker: Asker) -> list[Graded]:
    loaded: dict[str, Run] = {}
    truths: dict[str, Truth] = {}
    out = []
    for c in cases:
        if c.run not in runs:
            continue
        if c.run not in loaded:
            loaded[c.run] = Run(runs[c.run])
            loaded[c.run].load()
            truths[c.run] = Truth(runs[c.run])
        started = time.perf_counter()
        a = asker(loaded[c.run], c.question)
        out.append(grade(c, truths[c.run], a, time.perf_counter() - started))
    return out


def counts(gs: list[Graded]) -> dict[str, int]:
    return {k: sum(g.grade == k for g in gs) for k in ("correct", "partly", "wrong",
                                                         "refused")}


def summary_line(name: str, gs: list[Graded]) -> str:
    c = counts(gs)
    n = max(len(gs), 1)
    secs = sorted(g.seconds for g in gs)
    med = secs[len(secs) // 2] if secs else 0.0
    return (f"{name:<34} correct {c['correct']:>2} ({c['correct'] / n:.0%})  partly "
            f"{c['partly']:>2}  wrong {c['wrong']:>2}  refused {c['refused']:>2}  "
            f"untraced numbers {sum(g.untraced for g in gs):>2}  median {med:5.2f} s  "
            f"max {secs[-1] if secs else 0:5.2f} s")


def show(name: str, gs: list[Graded], verbose: bool) -> None:
    print(f"\n{name}")
    for g in gs:
        print(f"  {g.grade:<8} {g.case.run:<10} {(g.answer.kind or '-'):<11} "
              f"{g.seconds:5.2f}s  {g.case.question}")
        if g.missing:
            print(f"{'':12}missing: {', '.join(str(f) for f in g.missing)}")
        if g.forbidden:
            print(f"{'':12}says what it must not: {g.forbidden}")
        if verbose or g.grade != "correct":
            for line in g.answer.text.splitlines()[:6]:
                print(f"{'':12}| {line[:160]}")


def _gguf(arg: Path | None) -> Path | None:
    path = arg or (Path(os.environ["ACADEMY_TUI_EVAL_GGUF"])
                   if os.environ.get("ACADEMY_TUI_EVAL_GGUF") else None)
    return path if path and path.is_file() else None


def _model_modes(base_url: str, model: str) -> dict[str, Asker]:
    from steering.ask.engine import kinds_answer
    from steering.llm import LLMClient, LLMConfig

    cfg = LLMConfig(base_url=base_url, model=model, timeout_s=300, max_retries=0,
                    max_tokens=300, token_budget=60000, log_calls=False)
    client = LLMClient(cfg)

    def shipped(run: Run, q: str) -> Answer:
        return ask(run, q, cfg, client=client)

    def route_all(run: Run, q: str) -> Answer:
        return kinds_answer(run, q, client, cfg, others=(), home=None, expected_s=None,
                            report=lambda k, t: None, route_all=True)

    def phrased(run: Run, q: str) -> Answer:
        return ask(run, q, cfg.replace(phrase=True), client=client)

    return {f"{model}, kinds (shipped default)": shipped,
            f"{model}, kinds, model routes all": route_all,
            f"{model}, kinds + phrasing": phrased}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, help="make the runs here, or reuse the ones there")
    p.add_argument("--gguf", type=Path, help="a local model to score too (xllamacpp)")
    p.add_argument("--model", default="qwen2.5-coder-0.5b", help="its name in the output")
    p.add_argument("-v", "--verbose", action="store_true", help="print every answer")
    args = p.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="eval-ask-runs-") as tmp:
        root = args.runs or Path(tmp)
        runs = {}
        for label in RUNS:
            pools = sorted((root / label / "logs").glob("*")) if (root / label).exists() \
                else []
            if pools:
                runs[label] = pools[-1]
        todo = set(RUNS) - set(runs)
        if todo:
            t = time.perf_counter()
            runs.update(make_runs(root, todo, progress=lambda s: print(s, flush=True)))
            print(f"made {len(todo)} runs in {time.perf_counter() - t:.0f} s")
        builtin = evaluate(runs, CASES, lambda r, q: ask(r, q, builtin=True))
        show("built-in analyst", builtin, args.verbose)
        routing = evaluate(runs, ROUTING, lambda r, q: ask(r, q, builtin=True))
        show("built-in analyst, paraphrases it may not read", routing, args.verbose)
        lines = [summary_line("built-in analyst", builtin),
                 summary_line("  paraphrases", routing)]
        gguf = _gguf(args.gguf)
        if gguf is not None:
            sys.path.insert(0, str(ROOT / "tests" / "steering"))
            from local_llm import LocalLLM

            with LocalLLM(n_ctx=4096, gguf=gguf, threads=2, start_timeout_s=120) as llm:
                for name, asker in _model_modes(llm.base_url, args.model).items():
                    gs = evaluate(runs, CASES, asker)
                    rs = evaluate(runs, ROUTING, asker)
                    show(name, gs + rs, args.verbose)
                    worse = [g.case.question for g, b in zip(gs, builtin, strict=True)
                             if _rank(g.grade) < _rank(b.grade)]
                    lines += [summary_line(name, gs), summary_line("  paraphrases", rs)]
                    lines.append(f"{'':34} below the built-in on {len(worse)} question(s)"
                                 + (f": {'; '.join(worse[:4])}" if worse else ""))
        else:
            lines.append("(no local model: pass --gguf or set ACADEMY_TUI_EVAL_GGUF to score "
                         "one; see shared/LLM.md for Qwen2.5-Coder-0.5B)")
        print(f"\n{len(CASES)} questions over {len(runs)} runs, {len(ROUTING)} paraphrases")
        print("\n".join(lines))
    c = counts(builtin)
    ok = c["correct"] >= 0.9 * len(builtin) and c["refused"] == 0
    return 0 if ok else 1


def _rank(g: str) -> int:
    return {"correct": 3, "partly": 2, "refused": 1, "wrong": 0}[g]


if __name__ == "__main__":
    sys.exit(main())
